"""Compiled conditions return what ``json_logic`` returns: for every condition of Adobe's 18 fixture artifacts
and of the emulator's, over the contexts of Adobe's cases, and for the corners of each operator."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from json_logic import jsonLogic

from proxy.decisioning.context import allocation, mbox_context, request_context
from proxy.decisioning.logic import compile_logic
from proxy.emulator.artifact import Publisher
from proxy.emulator.catalog import Catalog
from proxy.emulator.tokens import TokenCodec
from tests.decisioning.adobe_cases import SCHEMA, load


def conditions(document: dict[str, Any]) -> list[Any]:
    rules = document.get("rules") or {}
    return [
        rule["condition"]
        for kind in ("mboxes", "views")
        for listed in (rules.get(kind) or {}).values()
        for rule in listed
    ]


def contexts() -> list[dict[str, Any]]:
    """A context per Adobe case and allocation, as the engine builds them."""
    found = []
    for case, bucket in itertools.product(load(), (0, 25.5, 50, 99.99)):
        request = case.request
        context = request_context(request, case.now_ms)
        for mode in ("execute", "prefetch"):
            for mbox in (request.get(mode) or {}).get("mboxes") or ():
                found.append({**context, "mbox": mbox_context(mbox), "allocation": bucket})
        found.append({**context, "mbox": {}, "allocation": allocation("c", 1, str(bucket))})
    return found


def test_every_condition_of_the_artifacts_over_every_case() -> None:
    documents = [json.loads(path.read_text()) for path in sorted((SCHEMA / "artifacts").glob("*.json"))]
    documents.append(Publisher(Catalog.load(None), TokenCodec("k")).document("production"))
    every = [condition for document in documents for condition in conditions(document)]
    data = contexts()
    compared = 0
    for condition in every:
        compiled = compile_logic(condition)
        for context in data:
            assert compiled(context) == jsonLogic(condition, context), (condition, context)
            compared += 1
    assert len(every) > 140 and compared > 50_000


DATA = {"a": {"b": [10, "x", None], "s": "Hello", "n": "5", "z": 0, "t": True}, "list": [1, 2, 3], "": 7}
CORNERS = [
    {"var": "a.b.0"},
    {"var": "a.b.1"},
    {"var": "a.b.2"},
    {"var": ["a.b.3", "default"]},
    {"var": ["a.missing", 4]},
    {"var": "a.s.length"},
    {"var": "list.1"},
    {"var": ""},
    {"var": 0},
    {"var": ["a.s"]},
    {"var": ["a.q", {"var": "a.s"}]},
    {"var": "a.z"},
    {"and": []},
    {"or": []},
    {"and": [{"var": "a.t"}, {"var": "a.z"}, {"var": "a.s"}]},
    {"or": [{"var": "a.z"}, "", {"var": "a.n"}]},
    {"!": [{"var": "a.s"}]},
    {"!!": {"var": "a.missing"}},
    {"==": [5, {"var": "a.n"}]},
    {"===": [5, {"var": "a.n"}]},
    {"!=": [None, {"var": "a.missing"}]},
    {"<": [1, {"var": "a.n"}, 10]},
    {"<=": [{"var": "a.missing"}, 3]},
    {">": ["10", {"var": "a.n"}]},
    {"in": ["ell", {"var": "a.s"}]},
    {"in": [2, {"var": "list"}]},
    {"substr": [{"var": "a.s"}, -3]},
    {"cat": ["<", {"var": "a.s"}, ">"]},
    {"+": ["1", 2, {"var": "a.n"}]},
    {"-": [{"var": "a.n"}]},
    {"if": [{"var": "a.z"}, "yes", {"var": "a.t"}, "second", "no"]},
    {"some": [{"var": "list"}, {">": [{"var": ""}, 2]}]},
    {"missing": ["a.s", "a.nope"]},
    {"merge": [[1], {"var": "list"}]},
    [{"var": "a.n"}, 3],
    {"var": "a.n", "extra": 1},
    "text",
    None,
]


@pytest.mark.parametrize("logic", CORNERS, ids=[json.dumps(each) for each in CORNERS])
def test_each_operators_corners(logic: Any) -> None:
    assert compile_logic(logic)(DATA) == jsonLogic(logic, DATA)
