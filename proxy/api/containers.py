"""The kinds of field that hold other fields: JSON objects of known members, arrays, named parameters (and
product ids, a list or its comma-separated text). Each extends the path of a refusal from inside it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from proxy.api.fields import TEXT_TYPES, Field, Invalid, Text


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
