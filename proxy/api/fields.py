"""The kinds of field the wire APIs' tables are written in.

Each kind checks a value as Target does (numbers are read as text where text is expected) and describes
itself as a JSON schema, so the request schemas in ``proxy.api.schemas`` are the one source of both the
gateway's validation and the OpenAPI document's components. A refusal is an ``Invalid`` carrying the path
to the offending value, which the containers extend as it passes through them; ``refusal`` turns it into
the client's 400 naming the field (``mboxes[2].parameters.x: size must be at most 5000``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
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


class Array(Field):
    """A list of at most ``longest`` items of one kind. ``nulls`` refuses a null item at the list itself
    (``mboxes: may not contain null elements``); without it, the item's kind decides."""

    def __init__(self, item: Field, longest: int | None = None, *, nulls: str | None = None) -> None:
        self.item = item
        self.longest = longest
        self.nulls = nulls

    def check_present(self, value: Any) -> list[Any]:
        if value.__class__ is not list:
            raise Invalid("must be an array")
        if self.longest is not None and len(value) > self.longest:
            raise Invalid(f"size must be between 0 and {self.longest}")
        item = self.item
        for position, element in enumerate(value):
            if element is None and self.nulls is not None:
                raise Invalid(self.nulls)
            try:
                checked = item.check(element)
            except Invalid as error:
                error.path.append(position)
                raise
            if item.rewrites:
                value[position] = checked
        return value

    def schema(self) -> dict[str, Any]:
        described: dict[str, Any] = {"type": "array", "items": self.item.schema()}
        if self.longest is not None:
            described["maxItems"] = self.longest
        return described


class Parameters(Field):
    """Mbox or profile parameters: at most 50 named values, named without ``profile.`` (mbox parameters
    with that prefix belong in profileParameters), and without order names where an ``order`` is sent."""

    MOST = 50
    ORDER_NAMES = frozenset({"orderId", "orderTotal", "productPurchasedId"})

    def __init__(self, name_max: int, value_max: int, *, forbid_order: bool = False, profile: bool = False) -> None:
        self.name_max = name_max
        self.value = Text(value_max, blank_ok=True)
        self.forbid_order = forbid_order
        self.profile_hint = "" if profile else "; send it in profileParameters"

    def check_present(self, value: Any) -> dict[str, Any]:
        if value.__class__ is not dict:
            raise Invalid("must be a JSON object")
        if len(value) > self.MOST:
            raise Invalid(f"size must be between 0 and {self.MOST}")
        for name, raw in value.items():
            if not name.strip():
                raise Invalid("parameter names may not be blank")
            if len(name) > self.name_max:
                raise Invalid(f"name size must be at most {self.name_max}", name)
            if name.startswith("profile."):
                raise Invalid(f"must not start with 'profile.'{self.profile_hint}", name)
            if self.forbid_order and name in self.ORDER_NAMES:
                raise Invalid("order parameters belong in 'order'", name)
            if raw is not None:
                try:
                    self.value.check_present(raw)
                except Invalid as error:
                    error.path.append(name)
                    raise
        return value

    def schema(self) -> dict[str, Any]:
        names: dict[str, Any] = {"maxLength": self.name_max, "pattern": r"\S", "not": {"pattern": r"^profile\."}}
        if self.forbid_order:
            names["not"] = {"anyOf": [names["not"], {"enum": sorted(self.ORDER_NAMES)}]}
        return {
            "type": "object",
            "maxProperties": self.MOST,
            "propertyNames": names,
            "additionalProperties": {**self.value.schema(), "type": [*TEXT_TYPES, "null"]},
        }


class ProductIds(Field):
    """Purchased product ids: a comma-separated text or a list, each id at most 50 characters, 250 in all."""

    def __init__(self) -> None:
        self.item = Text(50)

    def check_present(self, value: Any) -> Any:
        if isinstance(value, str):
            ids = value.split(",")
        elif value.__class__ is list:
            ids = value
        else:
            raise Invalid("must be an array")
        for position, product in enumerate(ids):
            try:
                if self.item.check(product) is None:
                    raise Invalid("may not be blank")
            except Invalid as error:
                error.path.append(position)
                raise
        if len(",".join(str(product) for product in ids)) > 250:
            raise Invalid("total length of the comma-separated ids must be at most 250")
        return value

    def schema(self) -> dict[str, Any]:
        text = {
            "type": "string",
            "maxLength": 250,
            "pattern": r"^(?=[^,]*[^,\s])[^,]{1,50}(,(?=[^,]*[^,\s])[^,]{1,50})*$",
        }
        return {
            "description": "At most 250 characters in all, the ids joined by commas.",
            "oneOf": [text, Array(self.item).schema()],
        }


class Object(Field):
    """A JSON object of known members; members it does not name pass unchecked, as upstream lets them.
    ``required`` members refuse their absence with their own kind's message; ``rule`` checks the members
    against each other once each has passed."""

    def __init__(
        self,
        members: dict[str, Field],
        *,
        required: Iterable[str] = (),
        null: str | None = None,
        rule: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.members = members
        self.required = tuple(required)
        self.null = null
        self.rule = rule
        self.rewriting = frozenset(key for key, member in members.items() if member.rewrites)

    def check_present(self, value: Any) -> dict[str, Any]:
        if value.__class__ is not dict:
            raise Invalid("must be a JSON object")
        members = self.members
        for key in self.required:
            if value.get(key) is None:
                try:
                    members[key].check(None)
                except Invalid as error:
                    error.path.append(key)
                    raise
        for key, item in value.items():
            member = members.get(key)
            if member is None:
                continue
            try:
                checked = member.check(item)
            except Invalid as error:
                error.path.append(key)
                raise
            if key in self.rewriting:
                value[key] = checked
        if self.rule is not None:
            self.rule(value)
        return value

    def schema(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "type": "object",
            "properties": {key: member.schema() for key, member in self.members.items()},
        }
        if self.required:
            described["required"] = list(self.required)
        if self.rule is not None and self.rule.__doc__:
            described["description"] = self.rule.__doc__
        return described

    def extended(self, members: dict[str, Field], **changes: Any) -> Object:
        options = {"required": self.required, "null": self.null, "rule": self.rule, **changes}
        return Object({**self.members, **members}, **options)
