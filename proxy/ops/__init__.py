"""Operating the gateway: health and readiness, metrics, logs, the operations endpoints and status page."""
