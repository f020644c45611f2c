# target-proxy: the gateway (and, when no upstream is configured, the emulator beside it).
# Any Debian-based image with python3 (3.11 or newer) and its venv module works as the base:
#   docker build -t target-proxy .
#   podman build --from localhost/my-debian-python -t target-proxy .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/target-proxy/bin:$PATH \
    TARGET_PROXY_DEFAULTS=/etc/target-proxy/image.toml

# Dependencies first, at the versions of constraints.txt: this layer changes only with that file.
COPY constraints.txt /tmp/constraints.txt
RUN python3 -m venv /opt/target-proxy \
    && /opt/target-proxy/bin/pip install --no-cache-dir --disable-pip-version-check -r /tmp/constraints.txt

WORKDIR /app
COPY pyproject.toml README.md ./
COPY proxy ./proxy
RUN /opt/target-proxy/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps . \
    && rm -rf /app/build /app/*.egg-info \
    && groupadd --gid 10001 targetproxy \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/target-proxy \
        --shell /usr/sbin/nologin targetproxy \
    && mkdir -p /var/lib/target-proxy /etc/target-proxy \
    && chown targetproxy:targetproxy /var/lib/target-proxy \
    && printf '%s\n' \
        '# Defaults of the image: the config file (TARGET_PROXY_CONFIG), TARGET_PROXY_* variables and' \
        '# options all win over these.' \
        'host = "0.0.0.0"' \
        'port = 8080' \
        'notification_store = "/var/lib/target-proxy/notifications"' \
        > /etc/target-proxy/image.toml

USER 10001:10001
# The notification log, its dead letters and the log key: keep them on a volume so nothing is lost.
VOLUME ["/var/lib/target-proxy"]
EXPOSE 8080
# Asks /healthz on the address the running gateway wrote beside its notification log, so it follows
# --port, TARGET_PROXY_PORT and the config file alike.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["target-proxy", "healthcheck"]
# Every setting comes from TARGET_PROXY_* variables, a TOML file named by TARGET_PROXY_CONFIG, or
# options after `serve` (see proxy/config.example.toml).
ENTRYPOINT ["target-proxy"]
CMD ["serve"]
