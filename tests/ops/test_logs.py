"""The request log: one JSON line per request, visitors only as a keyed hash."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx

from tests.conftest import gateway_env
from tests.servers import ServerProcess
from tests.support import wait_for


def mbox_lines(server: ServerProcess) -> list[dict[str, object]]:
    """The request log's lines for the single mbox route."""
    lines = []
    for line in server.output:
        if line.startswith("{") and '"kind":"request"' in line:
            document = json.loads(line)
            if document["route"] == "/rest/v1/mbox":
                lines.append(document)
    return lines


def test_one_json_line_per_request_without_raw_visitor_ids(emulator_url: str, tmp_path: Path) -> None:
    visitor = "crm-id-0123456789"
    hashes = []
    for _ in range(2):  # the same visitor hashes alike after a restart
        server = ServerProcess(["serve", "--port", "0", "--upstream", emulator_url], env=gateway_env(tmp_path))
        server.start(expect=["gateway"])
        try:
            for _ in range(2):
                answer = httpx.post(
                    f"{server.url}/rest/v1/mbox?client=demo", json={"mbox": "home-hero", "thirdPartyId": visitor}
                )
                assert answer.status_code == 200
            httpx.post(f"{server.url}/rest/v1/mbox?client=demo", json={"mbox": "a<b"})
            lines = wait_for(lambda s=server: len(mbox_lines(s)) >= 3 and mbox_lines(s))
        finally:
            server.stop()
        assert not any(visitor in line for line in server.output)
        first, second, bad = lines[:3]
        assert first["route"] == "/rest/v1/mbox" and first["status"] == 200 and first["method"] == "POST"
        assert first["cache"] == "miss" and second["cache"] == "hit"
        assert isinstance(first["ms"], float)
        assert first["visitor"] == second["visitor"] and len(str(first["visitor"])) == 16
        assert bad["status"] == 400 and "visitor" not in bad
        hashes.append(first["visitor"])
        # The gateway's other messages are JSON too.
        assert all(json.loads(line) for line in server.output if line.startswith("{"))
    assert hashes[0] == hashes[1]


def request_lines(server: ServerProcess, route: str) -> list[dict[str, object]]:
    return [
        document
        for line in server.output
        if line.startswith("{") and '"kind":"request"' in line
        for document in [json.loads(line)]
        if document["route"] == route
    ]


def test_each_request_has_an_id_in_its_answer_and_its_log_line(emulator_url: str, tmp_path: Path) -> None:
    server = ServerProcess(["serve", "--port", "0", "--upstream", emulator_url], env=gateway_env(tmp_path))
    server.start(expect=["gateway"])
    try:
        view = {"mbox": "home-hero", "thirdPartyId": "request-ids"}
        given = httpx.post(f"{server.url}/rest/v1/mbox?client=demo", json=view, headers={"X-Request-Id": "lb-42"})
        made = httpx.post(f"{server.url}/rest/v1/mbox?client=demo", json=view)
        unfit = httpx.post(f"{server.url}/rest/v1/mbox?client=demo", json=view, headers={"X-Request-Id": "a b"})
        other = httpx.get(f"{server.url}/healthz", headers={"X-Request-Id": "probe-7"})
        refused = httpx.post(f"{server.url}/rest/v1/mbox?client=demo", content=b"x", headers={"content-type": "a/b"})
        lines = wait_for(
            lambda: len(request_lines(server, "/rest/v1/mbox")) >= 3 and request_lines(server, "/rest/v1/mbox")
        )
        health = wait_for(lambda: len(request_lines(server, "/healthz")) >= 2 and request_lines(server, "/healthz"))
        refusals = wait_for(lambda: request_lines(server, "refused"))
    finally:
        server.stop()
    assert given.headers["x-request-id"] == "lb-42"
    assert re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]+", made.headers["x-request-id"])
    assert unfit.headers["x-request-id"] not in ("a b", made.headers["x-request-id"])
    assert other.headers["x-request-id"] == "probe-7"
    assert refused.status_code == 415 and refused.headers["x-request-id"]
    assert [line["request_id"] for line in lines[:3]] == [r.headers["x-request-id"] for r in (given, made, unfit)]
    assert health[-1]["request_id"] == "probe-7"
    assert refusals[0]["request_id"] == refused.headers["x-request-id"]


def circuit_warnings(server: ServerProcess) -> list[dict[str, object]]:
    return [json.loads(line) for line in server.output if '"level":"warning"' in line and "circuit" in line]


def test_a_failed_miss_is_logged_as_what_was_served_and_upstream_trouble_is_a_warning(
    emulator: httpx.Client, emulator_url: str, tmp_path: Path
) -> None:
    env = gateway_env(
        tmp_path,
        default_content={"checkout-promo": "<p>default</p>"},
        upstream_circuit_failures="3",
        upstream_circuit_reset_seconds="1",
    )
    server = ServerProcess(["serve", "--port", "0", "--upstream", emulator_url], env=env)
    server.start(expect=["gateway"])
    try:
        emulator.post("/_emulator/faults", json={"status": 502}).raise_for_status()
        failed = httpx.post(f"{server.url}/rest/v1/mbox?client=demo", json={"mbox": "home-hero", "thirdPartyId": "f-1"})
        default = httpx.post(
            f"{server.url}/rest/v1/mbox?client=demo", json={"mbox": "checkout-promo", "thirdPartyId": "f-2"}
        )
        for n in range(3):  # the circuit opens
            httpx.post(f"{server.url}/rest/v1/mbox?client=demo", json={"mbox": "home-hero", "thirdPartyId": f"o-{n}"})
        emulator.post("/_emulator/faults", json={}).raise_for_status()
        time.sleep(1.1)
        again = httpx.post(f"{server.url}/rest/v1/mbox?client=demo", json={"mbox": "home-hero", "thirdPartyId": "c-1"})
        lines = wait_for(
            lambda: len(request_lines(server, "/rest/v1/mbox")) >= 2 and request_lines(server, "/rest/v1/mbox")
        )
        warnings = wait_for(lambda: len(circuit_warnings(server)) >= 2 and circuit_warnings(server))
    finally:
        server.stop()
    assert failed.status_code == 502 and default.status_code == 200
    assert lines[0]["status"] == 502 and lines[0]["cache"] == "miss", "nothing stale was served"
    assert lines[1]["cache"] == "default"
    upstream = [json.loads(line) for line in server.output if '"logger":"proxy.upstream"' in line]
    assert upstream[0]["level"] == "warning" and "answered 502" in upstream[0]["message"]
    assert "opened after 3 failures" in warnings[0]["message"]
    assert again.status_code == 200 and "closed: it answers again" in warnings[1]["message"]
