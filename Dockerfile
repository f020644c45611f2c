FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    TARGET_PROXY_HOST=0.0.0.0 TARGET_PROXY_PORT=8080

WORKDIR /app
COPY pyproject.toml README.md ./
COPY proxy ./proxy
RUN pip install --no-cache-dir . && useradd --system --uid 10001 --home /app proxy && chown -R proxy /app
USER proxy

EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"
ENTRYPOINT ["target-proxy"]
CMD ["serve"]
