# target-proxy: the gateway (and, when no upstream is configured, the emulator beside it).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TARGET_PROXY_HOST=0.0.0.0 \
    TARGET_PROXY_PORT=8080 \
    TARGET_PROXY_NOTIFICATION_STORE=/var/lib/target-proxy/notifications

WORKDIR /app
COPY pyproject.toml README.md ./
COPY proxy ./proxy
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --no-create-home proxy \
    && mkdir -p /var/lib/target-proxy && chown proxy /var/lib/target-proxy

USER proxy
# The notification log: keep it on a volume so nothing is lost across restarts.
VOLUME ["/var/lib/target-proxy"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('TARGET_PROXY_PORT', '8080'), timeout=2)"]
# Every setting comes from TARGET_PROXY_* variables (see proxy/config.example.toml), e.g.
#   docker run -e TARGET_PROXY_UPSTREAM_DIRECT=true -e TARGET_PROXY_CLIENT=mycompany ... target-proxy
ENTRYPOINT ["target-proxy"]
CMD ["serve"]
