"""The kinds of field the wire APIs' tables are written in.

Each kind checks a value as Target does (numbers are read as text where text is expected) and describes
itself as a JSON schema, so the request schemas in ``proxy.api.schemas`` are the one source of both the
gateway's validation and the OpenAPI document's components. Here the values; the kinds that hold other
fields (objects, arrays, parameters) are in ``proxy.api.containers``. A refusal is an ``Invalid`` carrying the path
to the offending value, which the containers extend as it passes through them; ``refusal`` turns it into
the client's 400 naming the field (``mboxes[2].parameters.x: size must be at most 5000``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from proxy.http.errors import ApiError

SCALARS = (str, int, float, bool)
TEXT_TYPES = ["string", "number"]


class Invalid(Exception):
    """A value the tables refuse: the message, and the path to the value (innermost first)."""

    def __init__(self, message: str, *path: str | int) -> None:
        super().__init__(message)
        self.message = message
        self.path = list(path)

    def field(self, root: str = "") -> str:
        """``["x", "parameters", 2, "mboxes"]`` -> ``mboxes[2].parameters.x``."""
        out = root
        for part in reversed(self.path):
            if isinstance(part, int):
                out += f"[{part}]"
            else:
                out += f".{part}" if out else part
        return out or "body"


def fail(field: str, message: str) -> ApiError:
    return ApiError(400, f"{field}: {message}", field)


def refusal(error: Invalid, root: str = "") -> ApiError:
    return fail(error.field(root), error.message)


class Field:
    """A kind of field: ``null`` is the message that refuses a missing value (None: it may be absent)."""

    null: str | None = None
    rewrites = False  # the checked value replaces the one read (names given as numbers become their text)

    def check(self, value: Any) -> Any:
        if value is None:
            if self.null is not None:
                raise Invalid(self.null)
            return None
        return self.check_present(value)

    def check_present(self, value: Any) -> Any:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def at(self, value: Any, field: str) -> Any:
        """The check of a value outside a body (a query or path parameter), named ``field``."""
        try:
            return self.check(value)
        except Invalid as error:
            raise refusal(error, field) from None


class Text(Field):
    """Text of at most ``longest`` characters, not blank unless ``blank_ok``; numbers count as their text."""

    def __init__(self, longest: int, *, required: bool = False, blank_ok: bool = False) -> None:
        self.longest = longest
        self.blank_ok = blank_ok
        self.null = "may not be null" if required else None

    def check_present(self, value: Any) -> str:
        if value.__class__ is not str:
            if isinstance(value, bool) or not isinstance(value, SCALARS):
                raise Invalid("must be a string")
            value = str(value)
        if not self.blank_ok and not value.strip():
            raise Invalid("may not be blank")
        if len(value) > self.longest:
            raise Invalid(f"size must be at most {self.longest}")
        return value

    def schema(self) -> dict[str, Any]:
        described: dict[str, Any] = {"type": TEXT_TYPES, "maxLength": self.longest}
        if not self.blank_ok:
            described["pattern"] = r"\S"
        return described


class MboxName(Text):
    """An mbox name: required text without quotes or angle brackets, however encoded."""

    FORBIDDEN = re.compile(r"['\"<>]|%2[27]|%3[ce]", re.IGNORECASE)
    rewrites = True

    def __init__(self, longest: int) -> None:
        super().__init__(longest, required=True)

    def check_present(self, value: Any) -> str:
        name = super().check_present(value)
        if self.FORBIDDEN.search(name) is not None:
            raise Invalid("may not contain ', \", <, > or their %-encodings")
        return name

    def schema(self) -> dict[str, Any]:
        return {**super().schema(), "pattern": r"^(?![\s\S]*(%22|%27|%3[cCeE]))(?=[\s\S]*\S)[^'\"<>]*$"}


class TntId(Text):
    """A tntId: at most one dot, the delimiter of its location hint (``<uuid>.<hint>``)."""

    def check_present(self, value: Any) -> str:
        tnt = super().check_present(value)
        if tnt.count(".") > 1:
            raise Invalid("may contain a single dot only, before the location hint")
        return tnt

    def schema(self) -> dict[str, Any]:
        return {**super().schema(), "pattern": r"^[^.]*[^.\s][^.]*(\.[^.]*)?$"}


class Url(Text):
    def check_present(self, value: Any) -> str:
        address = super().check_present(value)
        parts = urlsplit(address)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise Invalid("must be a valid URL")
        return address

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "uri", "pattern": "^https?://", "maxLength": self.longest}


class IpAddress(Field):
    def check_present(self, value: Any) -> Any:
        if value != "":
            try:
                ipaddress.ip_address(str(value))
            except ValueError:
                raise Invalid("must be a valid IP address") from None
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}, {"const": ""}]}


class Pattern(Field):
    """Required text of a pattern (client codes): a missing or empty one is refused as missing."""

    null = "is required"

    def __init__(self, pattern: str, message: str) -> None:
        self.pattern = re.compile(pattern)
        self.message = message

    def check_present(self, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise Invalid("is required")
        if not self.pattern.fullmatch(value):
            raise Invalid(self.message)
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "pattern": f"^{self.pattern.pattern}$"}


class SessionId(Field):
    """1-128 printable characters, none of them a space, '?' or '/'."""

    null = "is required"

    def check_present(self, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise Invalid("is required")
        if len(value) > 128:
            raise Invalid("size must be between 1 and 128")
        for char in value:
            if char in "?/" or char.isspace() or not char.isprintable():
                raise Invalid("must be printable characters without space, '?' or '/'")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": 128, "pattern": r"^[^\s?/]+$"}


class Flag(Field):
    """Empty, true or false, as a JSON boolean or as text in any case."""

    def check(self, value: Any) -> bool:
        if value is None or value == "":
            return False
        if value is True or value is False:
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise Invalid("must be empty, true or false")

    def schema(self) -> dict[str, Any]:
        return {"type": ["boolean", "string"], "pattern": "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])?$"}


class Boolean(Field):
    def check_present(self, value: Any) -> bool:
        if value is not True and value is not False:
            raise Invalid("must be true or false")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


class Integer(Field):
    """A whole number (not a boolean); ``minimum`` 0 for the indexes of mboxes, which are required."""

    def __init__(self, message: str, *, minimum: int | None = None, required: bool = False) -> None:
        self.message = message
        self.minimum = minimum
        self.null = "may not be null" if required else None

    def check_present(self, value: Any) -> int:
        if value.__class__ is not int and (isinstance(value, bool) or not isinstance(value, int)):
            raise Invalid(self.message)
        if self.minimum is not None and value < self.minimum:
            raise Invalid(f"must be greater than or equal to {self.minimum}")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "integer"} if self.minimum is None else {"type": "integer", "minimum": self.minimum}


class Timestamp(Field):
    """A positive number (of milliseconds, or seconds on the batch mbox API) that fits in 64 bits, as
    upstream and the gateway's own log take it."""

    MESSAGE = "must be a positive number of milliseconds"

    def __init__(self, *, required: bool) -> None:
        self.null = self.MESSAGE if required else None

    def check_present(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 2**63:
            raise Invalid(self.MESSAGE)
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 2**63}


class Decimal(Field):
    """A number, or its text; an empty one counts as none."""

    def __init__(self, minimum: float) -> None:
        self.minimum = minimum

    def check_present(self, value: Any) -> Any:
        if value == "":
            return value
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or number != number:
            raise Invalid("must be a valid decimal")
        if number < self.minimum:
            raise Invalid(f"must be greater than or equal to {self.minimum:g}")
        return value

    def schema(self) -> dict[str, Any]:
        text = {"type": "string", "pattern": r"^\s*([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)?\s*$"}
        return {"oneOf": [{"type": "number", "minimum": self.minimum}, text]}


class Choice(Field):
    """One of a few words; ``message`` names them, and refuses a missing one too unless ``optional``."""

    def __init__(self, choices: Iterable[str], message: str, *, optional: bool = False) -> None:
        self.choices = frozenset(choices)
        self.message = message
        self.null = None if optional else message

    def check_present(self, value: Any) -> str:
        # A set lookup of a list or object would raise TypeError: the client's 400, not the gateway's 500.
        if not isinstance(value, str) or value not in self.choices:
            raise Invalid(self.message)
        return value

    def schema(self) -> dict[str, Any]:
        return {"enum": sorted(self.choices)}
