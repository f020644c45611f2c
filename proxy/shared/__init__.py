"""Several gateways acting as one, sharing their state on Redis (when ``redis_url`` is set).

What is shared, each beside its in-memory counterpart: sessions and edge affinity
(``proxy.content.redis_sessions``), prefetched content and its purges (``proxy.content.redis_cache``),
notifications (``proxy.notifications.stream``: a stream with a consumer group, and its flusher), the Admin
API call budget and the client keys' rate (``proxy.management.redis_ratelimit``) and the one-job-per-audience
guard (``proxy.management.redis_activation``). Each keeps the in-memory part of a single gateway in front of
or beside Redis, and falls back to it while Redis is down (``connection`` tells which);
``proxy.redis_parts`` builds them together for the composition root.
"""
