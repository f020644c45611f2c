"""Display and click notifications: written durably before the client is answered, flushed upstream
in batches per visitor, retried until the edge acknowledges them, never dropped silently."""
