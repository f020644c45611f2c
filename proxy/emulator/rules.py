"""Audience ``targetRule`` evaluation.

A rule is ``{"and": [rules]}``, ``{"or": [rules]}``, ``{"not": rule}`` or a condition naming one source
and one operator: ``{"profile": "memberLevel", "equals": ["gold"]}``. Sources: ``profile`` (profile
attributes), ``mbox`` (mbox parameters), ``page`` (``url``, ``domain``, ``path``, ``query``) and ``geo``
(``country``, ``region``, ``city``). A condition on a missing value is false except ``notExists``.
Text comparisons ignore case; ``matches`` is a regular expression over the whole value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

SOURCES = ("profile", "mbox", "page", "geo")


@dataclass(slots=True)
class RuleContext:
    profile: Mapping[str, str] = field(default_factory=dict)
    mbox: Mapping[str, str] = field(default_factory=dict)
    page_url: str | None = None
    geo: Mapping[str, str] = field(default_factory=dict)

    def value(self, source: str, name: str) -> str | None:
        if source == "profile":
            return self.profile.get(name)
        if source == "mbox":
            value = self.mbox.get(name)
            return None if value is None else str(value)
        if source == "geo":
            return self.geo.get(name)
        if source == "page" and self.page_url:
            parts = urlsplit(self.page_url)
            return {
                "url": self.page_url,
                "domain": parts.hostname,
                "path": parts.path,
                "query": parts.query,
            }.get(name)
        return None


def _number(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@lru_cache(maxsize=1024)
def _pattern(expression: str) -> re.Pattern[str]:
    return re.compile(expression, re.IGNORECASE)


def _compare(test: Callable[[float, float], bool]) -> Callable[[str, list[Any]], bool]:
    def check(actual: str, expected: list[Any]) -> bool:
        left = _number(actual)
        return left is not None and any((right := _number(str(e))) is not None and test(left, right) for e in expected)

    return check


def _between(actual: str, expected: list[Any]) -> bool:
    value, bounds = _number(actual), [_number(str(e)) for e in expected[:2]]
    if value is None or len(bounds) != 2:
        return False
    low, high = bounds
    return low is not None and high is not None and low <= value <= high


OPERATORS: dict[str, Callable[[str, list[Any]], bool]] = {
    "equals": lambda a, e: any(a.lower() == str(x).lower() for x in e),
    "notEquals": lambda a, e: all(a.lower() != str(x).lower() for x in e),
    "contains": lambda a, e: any(str(x).lower() in a.lower() for x in e),
    "notContains": lambda a, e: all(str(x).lower() not in a.lower() for x in e),
    "startsWith": lambda a, e: any(a.lower().startswith(str(x).lower()) for x in e),
    "endsWith": lambda a, e: any(a.lower().endswith(str(x).lower()) for x in e),
    "matches": lambda a, e: any(_pattern(str(x)).fullmatch(a) for x in e),
    "lessThan": _compare(lambda a, b: a < b),
    "lessThanOrEquals": _compare(lambda a, b: a <= b),
    "greaterThan": _compare(lambda a, b: a > b),
    "greaterThanOrEquals": _compare(lambda a, b: a >= b),
    "between": _between,
    "exists": lambda a, e: True,
}


class RuleError(ValueError):
    pass


def check_rule(rule: Any, where: str = "targetRule") -> None:
    """Raise RuleError naming the part of a rule the evaluator would not understand."""
    if not isinstance(rule, dict) or not rule:
        raise RuleError(f"{where}: must be a non-empty object")
    if "and" in rule or "or" in rule:
        key = "and" if "and" in rule else "or"
        if not isinstance(rule[key], list) or not rule[key]:
            raise RuleError(f"{where}.{key}: must be a non-empty array")
        for index, part in enumerate(rule[key]):
            check_rule(part, f"{where}.{key}[{index}]")
        return
    if "not" in rule:
        check_rule(rule["not"], f"{where}.not")
        return
    sources = [s for s in SOURCES if s in rule]
    if len(sources) != 1:
        raise RuleError(f"{where}: a condition names exactly one of {', '.join(SOURCES)}")
    operators = [k for k in rule if k != sources[0]]
    if len(operators) != 1 or operators[0] not in {*OPERATORS, "notExists"}:
        raise RuleError(f"{where}: a condition has exactly one operator of {', '.join(sorted(OPERATORS))}")
    if operators[0] not in ("exists", "notExists") and not isinstance(rule[operators[0]], list):
        raise RuleError(f"{where}.{operators[0]}: must be an array of values")


def check_audience_rule(rule: Any, known: Callable[[int], bool], where: str = "audienceRule") -> set[int]:
    """An ``audienceRule`` combines existing audiences by id: an id, ``{"and": [...]}``, ``{"or": [...]}``,
    ``{"not": ...}``, or a bare array (all of them). Returns the ids it names; raises RuleError."""
    if isinstance(rule, int) and not isinstance(rule, bool):
        if not known(rule):
            raise RuleError(f"{where}: audience {rule} does not exist")
        return {rule}
    if isinstance(rule, list):
        rule = {"and": rule}
    if not isinstance(rule, dict) or len(rule) != 1 or next(iter(rule)) not in ("and", "or", "not"):
        raise RuleError(f"{where}: must be an audience id or one of and, or, not")
    key, parts = next(iter(rule.items()))
    if key == "not":
        return check_audience_rule(parts, known, f"{where}.not")
    if not isinstance(parts, list) or not parts:
        raise RuleError(f"{where}.{key}: must be a non-empty array")
    named: set[int] = set()
    for index, part in enumerate(parts):
        named |= check_audience_rule(part, known, f"{where}.{key}[{index}]")
    return named


def evaluate(rule: Mapping[str, Any], context: RuleContext) -> bool:
    if "and" in rule:
        return all(evaluate(part, context) for part in rule["and"])
    if "or" in rule:
        return any(evaluate(part, context) for part in rule["or"])
    if "not" in rule:
        return not evaluate(rule["not"], context)
    for source in SOURCES:
        if source in rule:
            name = rule[source]
            break
    else:
        return False
    operator = next(key for key in rule if key != source)
    actual = context.value(source, name)
    if operator == "notExists":
        return actual is None
    if actual is None:
        return False
    return OPERATORS[operator](actual, list(rule[operator] or []))
