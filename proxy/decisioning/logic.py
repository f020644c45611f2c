"""A rule's JsonLogic condition compiled once, when its artifact is read, into Python closures.

The closures apply the same operations as ``json_logic`` (the library Adobe's Python SDK evaluates
conditions with, whose semantics follow json-logic-js): the same functions for each operator, the same
order of evaluation, the same short-circuits of ``and`` and ``or``. What changes is that the condition's
tree is walked once, not at every decision. Variables named by a constant path are read by walking dicts
(any other value on the way is left to ``json_logic``'s own ``var``); the operators that take sub-rules
(``if``, ``map``, ``filter``, ``all``...) and any operator ``json_logic`` does not know are interpreted
by ``json_logic`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from json_logic import jsonLogic
from json_logic.builtins import BUILTINS, not_, op_var, to_bool

Compiled = Callable[[Any], Any]
INTERPRETED = frozenset({"if", "?:", "filter", "reduce", "map", "all", "some", "none", "var"})


def compile_logic(logic: Any) -> Compiled:
    """A function of the data that returns what ``jsonLogic(logic, data)`` returns."""
    if isinstance(logic, list):
        items = [compile_logic(item) for item in logic]
        return lambda data: [item(data) for item in items]
    if not isinstance(logic, dict) or len(logic) != 1:
        return lambda data: logic
    operator, args = next(iter(logic.items()))
    if not isinstance(args, list):
        args = [args]
    if operator == "var" and args and isinstance(args[0], str) and args[0] and len(args) <= 2:
        default = args[1] if len(args) == 2 else None
        if not isinstance(default, dict | list):
            return variable(args[0], default)
    if operator in ("and", "or"):
        return either(operator, [compile_logic(arg) for arg in args])
    if operator in INTERPRETED or operator not in BUILTINS:
        return lambda data: jsonLogic(logic, data)
    function = BUILTINS[operator]
    parts = [compile_logic(arg) for arg in args]
    if len(parts) == 1:
        (only,) = parts
        return lambda data: function(data, only(data))
    if len(parts) == 2:
        first, second = parts
        return lambda data: function(data, first(data), second(data))
    return lambda data: function(data, *[part(data) for part in parts])


def variable(path: str, default: Any) -> Compiled:
    names = path.split(".")

    def read(data: Any) -> Any:
        value = data
        for name in names:
            if not isinstance(value, dict):
                return op_var(data, path, default)
            value = value.get(name)
        return default if value is None else value

    return read


def either(operator: str, parts: list[Compiled]) -> Compiled:
    """``and``: the first falsy value, else the last; ``or``: the first truthy one, else the last."""
    stops = not_ if operator == "and" else to_bool

    def evaluate(data: Any) -> Any:
        current = None
        for part in parts:
            current = part(data)
            if stops(current):
                return current
        return current

    return evaluate
