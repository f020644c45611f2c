"""The checks of single values outside a body (query and path parameters, a flag already read): the
kinds and schemas the bodies are checked with, each naming its field in the client's 400."""

from __future__ import annotations

from typing import Any

from proxy.api.fields import Flag, MboxName, Text, TntId, fail
from proxy.api.schemas import CLIENT_CODE, SESSION_ID, VISITOR_ID

__all__ = ["boolean_flag", "client_code", "fail", "mbox_name", "session_id", "text", "tnt_id", "visitor_id"]
FLAG = Flag()


def client_code(value: Any, field: str = "client") -> str:
    return CLIENT_CODE.at(value, field)


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
