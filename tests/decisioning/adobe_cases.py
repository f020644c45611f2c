"""Adobe's decisioning engine's own test cases, as its npm package ships them (pinned with its checksum in
``tests/node/package-lock.json``, installed by ``npm ci``): 18 suites, 66 cases, each a Delivery API
request, the artifact it is decided from, the date and geo it is decided at, the expected answer and the
expected notification. Expected values are matched as Jest's ``toMatchObject`` does (what the case names
must be there and equal; arrays whole), with its ``expect.any(...)`` placeholders."""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "node" / "node_modules" / "@adobe" / "target-decisioning-engine"
SCHEMA = PACKAGE / "test" / "schema"
# The date the engine's tests run at when a case sets none (its notification timestamps say so).
DEFAULT_NOW_MS = 1585098300000


@dataclass(frozen=True)
class Case:
    suite: str
    name: str
    artifact: dict[str, Any]
    client: str
    request: dict[str, Any]
    session_id: str | None
    now_ms: int
    geo_headers: dict[str, Any] | None
    output: dict[str, Any] | None
    notification: dict[str, Any] | bool | None  # False: the case says nothing of notifications
    telemetry_enabled: bool

    @property
    def id(self) -> str:
        return f"{self.suite}-{self.name}"


def load() -> list[Case]:
    if not SCHEMA.is_dir():
        pytest.fail("Adobe's engine fixtures are needed: npm ci --prefix tests/node (bash .ci/run does)")
    cases = []
    for path in sorted((SCHEMA / "models").glob("*.json")):
        suite = json.loads(path.read_text())
        for name, case in suite["test"].items():
            conf = {**suite.get("conf", {}), **case.get("conf", {})}
            artifact_name = case.get("artifact") or suite.get("artifact")
            mock = case.get("mockDate")
            now = DEFAULT_NOW_MS
            if mock:
                moment = (
                    mock["year"],
                    mock["month"] + 1,
                    mock["date"],
                    mock.get("hours", 0),
                    mock.get("minutes", 0),
                    0,
                )
                now = calendar.timegm(moment) * 1000
            cases.append(
                Case(
                    suite=path.stem.removeprefix("TEST_SUITE_"),
                    name=name,
                    artifact=json.loads((SCHEMA / "artifacts" / f"{artifact_name}.json").read_text()),
                    client=conf.get("client", "someClientId"),
                    request=case["input"]["request"],
                    session_id=case["input"].get("sessionId"),
                    now_ms=now,
                    geo_headers=case.get("mockGeo"),
                    output=case.get("output"),
                    notification=case.get("notificationOutput", False),
                    telemetry_enabled=conf.get("telemetryEnabled", True),
                )
            )
    return cases


def mismatches(actual: Any, expected: Any, path: str = "$") -> list[str]:
    """Where ``actual`` does not match ``expected`` as Jest's ``toMatchObject`` reads it."""
    if isinstance(expected, str) and expected.startswith("expect.any(") and expected.endswith(")"):
        kind = expected[len("expect.any(") : -1]
        fits = {
            "Object": isinstance(actual, dict | list),
            "String": isinstance(actual, str),
            "Number": isinstance(actual, int | float) and not isinstance(actual, bool),
            "Array": isinstance(actual, list),
            "Boolean": isinstance(actual, bool),
        }[kind]
        return [] if fits else [f"{path}: {actual!r} is not any {kind}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: {actual!r} is not an object"]
        found = []
        for key, value in expected.items():
            if key not in actual:
                found.append(f"{path}.{key}: missing")
            else:
                found += mismatches(actual[key], value, f"{path}.{key}")
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: {json.dumps(actual)[:400]} is not {json.dumps(expected)[:400]}"]
        return [
            error
            for i, pair in enumerate(zip(actual, expected, strict=True))
            for error in mismatches(*pair, f"{path}[{i}]")
        ]
    same = actual == expected and isinstance(actual, bool) == isinstance(expected, bool)
    return [] if same else [f"{path}: {actual!r} is not {expected!r}"]
