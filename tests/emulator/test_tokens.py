"""Event tokens: round trip, tamper evidence, and the tokens the emulator hands out."""

from __future__ import annotations

import base64

import httpx
import pytest

from proxy.emulator.settings import EmulatorSettings
from proxy.emulator.tokens import EventToken, TokenCodec, TokenError
from tests.emulator.support import delivery

CODEC = TokenCodec("secret")
TOKEN = EventToken("display", 200001, 1, "123-456", "home-hero")


def test_a_token_round_trips() -> None:
    assert CODEC.decode(CODEC.encode(TOKEN)) == TOKEN


def flip(token: str, position: int) -> str:
    raw = bytearray(base64.b64decode(token))
    raw[position] ^= 0x20
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    "text",
    [
        "not base64!",
        "",
        base64.b64encode(b"short").decode(),
        flip(CODEC.encode(TOKEN), 3),
        flip(CODEC.encode(TOKEN), -1),
        TokenCodec("other secret").encode(TOKEN),
    ],
    ids=["not-base64", "empty", "too-short", "payload-changed", "signature-changed", "other-secret"],
)
def test_a_bad_token_is_refused(text: str) -> None:
    with pytest.raises(TokenError):
        CODEC.decode(text)


def test_handed_out_tokens_name_activity_experience_visitor_and_mbox(emulator: httpx.Client) -> None:
    answer = delivery(
        emulator,
        {"id": {"tntId": "token-visitor"}, "prefetch": {"mboxes": [{"index": 0, "name": "home-hero"}]}},
    )
    (mbox,) = answer["prefetch"]["mboxes"]
    codec = TokenCodec(EmulatorSettings().token_secret)

    shown = codec.decode(mbox["options"][0]["eventToken"])
    clicked = codec.decode(mbox["metrics"][0]["eventToken"])

    experience = int(mbox["options"][0]["responseTokens"]["experience.id"])
    assert shown == EventToken("display", 200001, experience, "token-visitor", "home-hero")
    assert clicked == EventToken("click", 200001, experience, "token-visitor", "home-hero")
