"""The checks of single values outside a body (query and path parameters, a flag already read): the
kinds and schemas the bodies are checked with, each naming its field in the client's 400."""

from __future__ import annotations

from typing import Any

from proxy.api.fields import Flag, MboxName, Text, TntId, fail
from proxy.api.schemas import CLIENT_CODE, SESSION_ID, VISITOR_ID

__all__ = ["boolean_flag", "client_code", "fail", "mbox_name", "session_id", "text", "tnt_id", "visitor_id"]
FLAG = Flag()


# Client codes found valid (a gateway serves a few): every delivery call names one.
_VALID_CLIENTS: set[str] = set()
_MOST_CLIENTS = 256


def client_code(value: Any, field: str = "client") -> str:
    if value.__class__ is str and value in _VALID_CLIENTS:
        return value
    code = CLIENT_CODE.at(value, field)
    if len(_VALID_CLIENTS) < _MOST_CLIENTS:
        _VALID_CLIENTS.add(code)
    return code


def session_id(value: Any, field: str = "sessionId") -> str:
    return SESSION_ID.at(value, field)


def boolean_flag(value: Any, field: str) -> bool:
    return FLAG.at(value, field)


def text(value: Any, field: str, longest: int, *, required: bool = False) -> str | None:
    return Text(longest, required=required).at(value, field)


def tnt_id(value: Any, field: str, longest: int) -> str | None:
    return TntId(longest).at(value, field)


def mbox_name(value: Any, field: str, longest: int) -> str:
    return MboxName(longest).at(value, field)


def visitor_id(value: Any, field: str = "id") -> dict[str, Any]:
    """The batch and Delivery API ``id`` object (or the identities of a query)."""
    return VISITOR_ID.at(value, field) or {}
