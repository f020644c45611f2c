"""The gateway's own credentials for the management APIs: an IMS access token from OAuth
server-to-server client credentials, kept until shortly before it expires and fetched once for all
concurrent callers; the API key, IMS org and sandbox headers that go with it.

The client secret and the token stay here: they are sent only to IMS and upstream, never answered
to a client nor written to a log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

import orjson

from proxy.http.errors import ApiError
from proxy.settings import ImsSettings
from proxy.upstream import Upstream

# Refresh this long before IMS says the token expires (or a tenth of its life, if that is shorter).
REFRESH_MARGIN_S = 300.0


class CredentialsError(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(502, message)


class TokenProvider:
    def __init__(self, settings: ImsSettings, upstream: Upstream, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.upstream = upstream
        self.clock = clock
        parts = urlsplit(settings.url)
        self._host = parts.netloc
        self._path = parts.path or "/ims/token/v3"
        self._token: str | None = None
        self._refresh_at = 0.0
        self._expires_at = 0.0
        self._refreshing: asyncio.Future[str] | None = None
        self.fetched = 0

    @property
    def configured(self) -> bool:
        return bool(self.settings.client_id and self.settings.client_secret)

    @property
    def available(self) -> bool:
        """A token is held and not expired (for readiness)."""
        return self._token is not None and self.clock() < self._expires_at

    async def token(self) -> str:
        if self._token is not None and self.clock() < self._refresh_at:
            return self._token
        if self._refreshing is None or self._refreshing.done():
            # A fetch left done (its callers gone before it ended) is not reused: its token is the old one.
            self._refreshing = asyncio.ensure_future(self._fetch())
        refreshing = self._refreshing
        try:
            return await asyncio.shield(refreshing)
        finally:
            if refreshing.done() and self._refreshing is refreshing:
                self._refreshing = None

    def invalidate(self, token: str) -> None:
        """Upstream refused ``token``: the next caller fetches a new one (once, for everyone)."""
        if self._token == token:
            self._token = None

    async def _fetch(self) -> str:
        if not self.configured:
            raise ApiError(503, "the gateway has no IMS credentials configured (ims_client_id, ims_client_secret)")
        settings = self.settings
        form = urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": settings.client_id,
                "client_secret": settings.client_secret.get_secret_value() if settings.client_secret else "",
                "scope": settings.scopes,
            }
        ).encode()
        response = await self.upstream.request(
            "POST",
            self._host,
            self._path,
            body=form,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        if response.status != 200:
            # IMS explains itself in "error"/"error_description"; nothing of the request is repeated.
            try:
                error = orjson.loads(response.body).get("error", "unknown error")
            except (orjson.JSONDecodeError, AttributeError):
                error = "unreadable answer"
            raise CredentialsError(f"IMS refused the gateway's credentials ({response.status}: {error})")
        try:
            document = orjson.loads(response.body)
            token, lifetime = str(document["access_token"]), float(document["expires_in"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise CredentialsError("IMS answered without an access token") from None
        now = self.clock()
        self._token = token
        self._expires_at = now + lifetime
        self._refresh_at = now + max(0.0, lifetime - min(REFRESH_MARGIN_S, lifetime / 10))
        self.fetched += 1
        return token

    async def headers(self, *, platform: bool) -> dict[str, str]:
        """Authorization and the headers that go with it, for the Target Admin API or AEP."""
        headers = {"authorization": f"Bearer {await self.token()}", "x-api-key": self.settings.client_id or ""}
        if platform:
            if self.settings.org_id:
                headers["x-gw-ims-org-id"] = self.settings.org_id
            if self.settings.sandbox_name:
                headers["x-sandbox-name"] = self.settings.sandbox_name
        return headers
