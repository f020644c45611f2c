"""The emulator's checks of single request fields, as the edge words its 400s (``<field>: <problem>``),
and rules built from them that the edge's request tables (``proxy.emulator.tables``) are written in.

A rule is a function of (value, field path) that returns the value as the edge reads it (a number sent
for a name is its text) or raises ``EdgeError``. The emulator checks requests on its own: the gateway
validates with its own code, so that each is a check on the other.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from proxy.emulator.errors import EdgeError, refused

Rule = Callable[[Any, str], Any]

CLIENT_CODE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
UNSAFE_IN_NAMES = ("'", '"', "<", ">", "%22", "%27", "%3c", "%3e")

fail = refused


def where(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


# --- single fields -----------------------------------------------------------------------------------


def text(value: Any, field: str, max_len: int, *, required: bool = False, blank_ok: bool = False) -> str | None:
    """A string (numbers are read as their text) of at most ``max_len`` characters."""
    if value is None:
        if required:
            raise fail(field, "may not be null")
        return None
    if type(value) not in (str, int, float):
        raise fail(field, "must be a string")
    read = str(value)
    if not blank_ok and read.strip() == "":
        raise fail(field, "may not be blank")
    if len(read) > max_len:
        raise fail(field, f"size must be at most {max_len}")
    return read


def require_object(value: Any, field: str = "body") -> dict[str, Any]:
    if type(value) is not dict:
        raise fail(field, "must be a JSON object")
    return value


def optional_object(value: Any, field: str) -> dict[str, Any] | None:
    return None if value is None else require_object(value, field)


def optional_array(value: Any, field: str, most: int | None = None) -> list[Any]:
    if value is None:
        return []
    if type(value) is not list:
        raise fail(field, "must be an array")
    if most is not None and len(value) > most:
        raise fail(field, f"size must be between 0 and {most}")
    return value


def is_one_of(value: Any, allowed: Collection[str]) -> bool:
    return type(value) is str and value in allowed


def boolean_flag(value: Any, field: str) -> bool:
    """Empty, true or false: a JSON boolean, or its text in any case."""
    if value in (None, ""):
        return False
    if value is True or value is False:
        return value
    if type(value) is str and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise fail(field, "must be empty, true or false")


def non_negative_index(value: Any, field: str) -> int:
    if value is None:
        raise fail(field, "may not be null")
    if type(value) is not int:
        raise fail(field, "must be an integer")
    if value < 0:
        raise fail(field, "must be greater than or equal to 0")
    return value


def client_code(value: Any, field: str = "client") -> str:
    if not value or type(value) is not str:
        raise fail(field, "is required")
    if CLIENT_CODE.fullmatch(value) is None:
        raise fail(field, "must be a valid client code")
    return value


def session_id(value: Any, field: str = "sessionId") -> str:
    """1-128 printable characters, none of them a space, '?' or '/'."""
    if not value or type(value) is not str:
        raise fail(field, "is required")
    if len(value) > 128:
        raise fail(field, "size must be between 1 and 128")
    if any(char in "?/" or char.isspace() or not char.isprintable() for char in value):
        raise fail(field, "must be printable characters without space, '?' or '/'")
    return value


def mbox_name(value: Any, field: str, max_len: int) -> str:
    name = str(text(value, field, max_len, required=True))
    if any(part in name.lower() for part in UNSAFE_IN_NAMES):
        raise fail(field, "may not contain ', \", <, > or their %-encodings")
    return name


# --- rules -------------------------------------------------------------------------------------------


def string(max_len: int, *, required: bool = False, blank_ok: bool = False) -> Rule:
    def rule(value: Any, field: str) -> Any:
        text(value, field, max_len, required=required, blank_ok=blank_ok)
        return value

    return rule


def name(max_len: int) -> Rule:
    return lambda value, field: mbox_name(value, field, max_len)


def tnt(max_len: int) -> Rule:
    """A tntId: at most one dot, the one before its location hint."""

    def rule(value: Any, field: str) -> Any:
        read = text(value, field, max_len)
        if read is not None and read.count(".") > 1:
            raise fail(field, "may contain a single dot only, before the location hint")
        return value

    return rule


def flag(value: Any, field: str) -> Any:
    boolean_flag(value, field)
    return value


def index(value: Any, field: str) -> Any:
    return non_negative_index(value, field)


def one_of(allowed: Collection[str], problem: str) -> Rule:
    def rule(value: Any, field: str) -> Any:
        if not is_one_of(value, allowed):
            raise fail(field, problem)
        return value

    return rule


def address(max_len: int) -> Rule:
    """An absolute http(s) address."""

    def rule(value: Any, field: str) -> Any:
        read = text(value, field, max_len)
        if read is not None:
            parts = urlsplit(read)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise fail(field, "must be a valid URL")
        return value

    return rule


def ip(value: Any, field: str) -> Any:
    if value not in (None, ""):
        try:
            ipaddress.ip_address(str(value))
        except ValueError:
            raise fail(field, "must be a valid IP address") from None
    return value


def decimal(minimum: float) -> Rule:
    def rule(value: Any, field: str) -> Any:
        if value in (None, ""):
            return value
        try:
            number = float(value) if type(value) is not bool else float("nan")
        except (TypeError, ValueError):
            number = float("nan")
        if number != number:
            raise fail(field, "must be a valid decimal")
        if number < minimum:
            raise fail(field, f"must be greater than or equal to {minimum:g}")
        return value

    return rule


def millis(value: Any, field: str) -> Any:
    """A positive time in milliseconds (seconds on the batch API) that fits in 64 bits."""
    if type(value) not in (int, float) or not 0 < value < 2**63:
        raise fail(field, "must be a positive number of milliseconds")
    return value


def obj(*, required: str | None = None, **rules: Rule) -> Rule:
    return shape(rules, required)


def shape(rules: Mapping[str, Rule], required: str | None = None) -> Rule:
    """An object (absent unless ``required`` says what is missing) whose keys follow ``rules``; a key's
    value is replaced by what its rule reads (a name sent as a number becomes its text)."""

    def rule(value: Any, field: str) -> Any:
        if value is None:
            if required:
                raise fail(field or "body", required)
            return None
        found = require_object(value, field or "body")
        for key, check in rules.items():
            read = check(found.get(key), where(field, key))
            if key in found:
                found[key] = read
        return found

    return rule


def array(each: Rule, most: int | None = None, *, nulls: bool = True) -> Rule:
    """An array (absent or of at most ``most`` items) whose items follow ``item``; with ``nulls`` False a
    null item is the array's fault, else the item's rule decides."""

    def rule(value: Any, field: str) -> Any:
        items = optional_array(value, field, most)
        for position, element in enumerate(items):
            if element is None and not nulls:
                raise fail(field, "may not contain null elements")
            items[position] = each(element, f"{field}[{position}]")
        return value

    return rule


def item(**rules: Rule) -> Rule:
    """An object in an array: it must be there."""
    return obj(required="must be a JSON object", **rules)


def every(*rules: Rule) -> Rule:
    """Each rule in turn, each on what the one before read."""

    def rule(value: Any, field: str) -> Any:
        for check in rules:
            value = check(value, field)
        return value

    return rule


def when_present(check: Rule) -> Rule:
    return lambda value, field: value if value is None else check(value, field)


def unchecked(value: Any, field: str) -> Any:
    return value


__all__ = ["EdgeError", "Rule"]
