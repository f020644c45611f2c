"""Adobe IMS, OAuth server-to-server: ``POST /ims/token/v3`` and the bearer tokens it hands out.

Tokens are opaque random strings remembered with their expiry on the emulator's clock. They outlive
``/_emulator/reset`` (IMS is not part of Target's state, and a gateway keeps its token across tests);
``POST /_emulator/ims/revoke`` forgets them all, so the next call answers 401.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from proxy.emulator.shaped import ShapedError, json_answer

MAX_FORM_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class IssuedToken:
    client_id: str
    expires_at: float


class TokenStore:
    def __init__(self, clock: Callable[[], float], capacity: int = 10_000) -> None:
        self._clock = clock
        self.capacity = capacity
        self._tokens: dict[str, IssuedToken] = {}

    def issue(self, client_id: str, ttl_seconds: float) -> str:
        now = self._clock()
        if len(self._tokens) >= self.capacity:
            self._tokens = {t: issued for t, issued in self._tokens.items() if issued.expires_at > now}
            while len(self._tokens) >= self.capacity:
                del self._tokens[next(iter(self._tokens))]
        token = secrets.token_urlsafe(32)
        self._tokens[token] = IssuedToken(client_id, now + ttl_seconds)
        return token

    def valid(self, token: str) -> IssuedToken | None:
        issued = self._tokens.get(token)
        return issued if issued is not None and self._clock() < issued.expires_at else None

    def revoke_all(self) -> int:
        count = len(self._tokens)
        self._tokens.clear()
        return count


class AuthFailure(enum.Enum):
    TOKEN_MISSING = "token missing"
    TOKEN_INVALID = "token invalid or expired"
    KEY_MISSING = "x-api-key missing"
    KEY_INVALID = "x-api-key invalid"


# What Adobe's API gateway answers for each failure: HTTP status, its error_code, its message
GATEWAY_ERRORS: dict[AuthFailure, tuple[int, str, str]] = {
    AuthFailure.TOKEN_MISSING: (401, "403010", "Oauth token is missing."),
    AuthFailure.TOKEN_INVALID: (401, "401013", "Oauth token is not valid"),
    AuthFailure.KEY_MISSING: (403, "403000", "Api Key is required"),
    AuthFailure.KEY_INVALID: (403, "403003", "Api Key is invalid"),
}


def check_credentials(headers: Mapping[str, str], tokens: TokenStore, client_id: str) -> AuthFailure | None:
    """The checks Adobe's API gateway makes before any service sees a call: bearer token, then API key."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return AuthFailure.TOKEN_MISSING
    issued = tokens.valid(token.strip())
    if issued is None:
        return AuthFailure.TOKEN_INVALID
    api_key = headers.get("x-api-key")
    if not api_key:
        return AuthFailure.KEY_MISSING
    if api_key != client_id or api_key != issued.client_id:
        return AuthFailure.KEY_INVALID
    return None


def _oauth_error(error: str, description: str, status: int = 400) -> ShapedError:
    return ShapedError(status, {"error": error, "error_description": description})


async def _parameters(request: Request) -> dict[str, str]:
    """Query parameters overlaid by a form body (IMS reads both; the form is the documented way)."""
    params = dict(request.query_params)
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_FORM_BYTES:
        raise _oauth_error("invalid_request", "request body too large")
    raw = await request.body()
    if raw:
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type not in ("", "application/x-www-form-urlencoded"):
            raise _oauth_error("invalid_request", "content type must be application/x-www-form-urlencoded")
        if len(raw) > MAX_FORM_BYTES:
            raise _oauth_error("invalid_request", "request body too large")
        try:
            params.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise _oauth_error("invalid_request", "request body must be UTF-8") from None
    return params


async def token_endpoint(request: Request) -> Response:
    emulator = request.app.state.emulator
    settings = emulator.settings
    params = await _parameters(request)
    grant_type = params.get("grant_type")
    if not grant_type:
        raise _oauth_error("invalid_request", "missing grant_type parameter")
    if grant_type != "client_credentials":
        raise _oauth_error("unsupported_grant_type", f"unsupported grant_type {grant_type}")
    client_id = params.get("client_id")
    if not client_id:
        raise _oauth_error("invalid_request", "missing client_id parameter")
    if client_id != settings.ims_client_id:
        raise _oauth_error("invalid_client", "invalid client_id parameter")
    secret = params.get("client_secret") or ""
    if not secrets.compare_digest(secret.encode(), settings.ims_client_secret.encode()):
        raise _oauth_error("invalid_client", "invalid client_secret parameter")
    if not params.get("scope", "").strip():
        raise _oauth_error("invalid_scope", "missing scope parameter")
    ttl = settings.token_ttl_seconds
    token = request.app.state.ims.issue(client_id, ttl)
    emulator.edge.stats.tokens_issued += 1
    return json_answer({"access_token": token, "token_type": "bearer", "expires_in": ttl})
