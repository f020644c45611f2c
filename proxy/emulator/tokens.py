"""Event tokens: opaque to clients, decodable and tamper-evident for the emulator.

A token is base64 of a compact JSON payload followed by a truncated HMAC-SHA256 over it, so the
emulator can tell a forged or corrupted token (which invalidates the whole request, as upstream does)
from a real one and trace it back to activity, experience, visitor and mbox.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

import orjson

SIGNATURE_BYTES = 12


@dataclass(frozen=True, slots=True)
class EventToken:
    kind: str  # "display" or "click"
    activity_id: int
    experience_id: int
    visitor: str
    mbox: str


class TokenError(ValueError):
    pass


class TokenCodec:
    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:SIGNATURE_BYTES]

    def encode(self, token: EventToken) -> str:
        payload = orjson.dumps([token.kind, token.activity_id, token.experience_id, token.visitor, token.mbox])
        return base64.b64encode(payload + self._sign(payload)).decode()

    def decode(self, text: str) -> EventToken:
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise TokenError("token is not base64") from None
        payload, signature = raw[:-SIGNATURE_BYTES], raw[-SIGNATURE_BYTES:]
        if len(raw) <= SIGNATURE_BYTES or not hmac.compare_digest(signature, self._sign(payload)):
            raise TokenError("token signature does not match")
        kind, activity_id, experience_id, visitor, mbox = orjson.loads(payload)
        return EventToken(kind, activity_id, experience_id, visitor, mbox)
