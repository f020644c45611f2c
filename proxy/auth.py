"""Client keys of the gateway and their scopes.

Clients present ``Authorization: Bearer <key>``. Routes that write profiles, reach the admin or
activation APIs, or operate the gateway need a key with the matching scope: 401 without a known key
(also when no keys are configured at all), 403 with a key that lacks the scope.
"""

from __future__ import annotations

import hashlib

from starlette.requests import Request

from proxy.errors import ApiError

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="target-proxy"'}


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ClientKeys:
    def __init__(self, keys: dict[str, list[str]]) -> None:
        # Looked up by digest, so the comparison time says nothing about the stored keys.
        self._scopes = {_digest(key): frozenset(scopes) for key, scopes in keys.items()}

    def require(self, request: Request, scope: str) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, "a client key is required (Authorization: Bearer <key>)", "Authorization", CHALLENGE)
        scopes = self._scopes.get(_digest(key.strip()))
        if scopes is None:
            raise ApiError(401, "unknown client key", "Authorization", CHALLENGE)
        if scope not in scopes:
            raise ApiError(403, f"this client key lacks the '{scope}' scope", "Authorization")
