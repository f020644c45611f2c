"""The request log: one JSON line per request, visitors only as a keyed hash."""

from __future__ import annotations

import json
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
