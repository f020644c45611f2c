"""``serve --workers 2`` with no ``redis_url``: the workers share a Redis of the gateway's own (on a unix
socket beside its state), so a visitor keeps one session and one edge whichever worker answers; without
redis-server the command says what to do instead of splitting visitors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import gateway_env
from tests.servers import ServerProcess
from tests.support import wait_for


def test_two_workers_keep_one_session_per_visitor_and_count_every_view_once(
    emulator: httpx.Client, emulator_url: str, tmp_path: Path
) -> None:
    env = gateway_env(tmp_path, notification_max_delay_ms="600000", shutdown_grace_seconds="5")
    server = ServerProcess(["serve", "--workers", "2", "--port", "0", "--upstream", emulator_url], env=env)
    server.start(expect=["gateway"], timeout=30)
    try:
        assert any("workers share their state on unix://" in line for line in server.output)
        sessions, workers = set(), set()
        for _ in range(30):  # a new connection each time: the kernel hands them to either worker
            answer = httpx.post(
                f"{server.url}/rest/v1/mbox?client=demo", json={"mbox": "home-hero", "thirdPartyId": "two-workers"}
            )
            assert answer.status_code == 200, answer.text
            sessions.add(answer.json()["sessionId"])
            workers.add(answer.headers["x-request-id"].split("-")[0])  # each process has a prefix of its own
        assert len(workers) == 2, "both workers answered"
        assert len(sessions) == 1, "one session for the visitor, whichever worker answered"
        assert emulator.get("/_emulator/stats").json()["requests"] == {"delivery": 1}, "one miss, then hits"
    finally:
        assert server.stop() == 0
    displays = wait_for(lambda: emulator.get("/_emulator/stats").json()["notifications"]["display"] or None)
    assert displays == 29, "every hit counted once, sent as the workers stopped"
    assert not (tmp_path / "redis" / "redis.sock").exists() or not redis_answers(tmp_path / "redis" / "redis.sock")


def redis_answers(path: Path) -> bool:
    import socket

    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))
            return True
    except OSError:
        return False


def test_without_redis_server_several_workers_are_refused_with_what_to_do(tmp_path: Path) -> None:
    env = {
        "PATH": str(tmp_path),  # no redis-server there
        "TARGET_PROXY_NOTIFICATION_STORE": str(tmp_path / "notifications"),
        "HOME": os.environ.get("HOME", "/root"),
    }
    command = [sys.executable, "-m", "proxy", "serve", "--workers", "2", "--port", "0", "--emulator-port", "0"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("target-proxy: --workers 2 needs one store that all workers share")
    assert "install redis-server" in result.stderr and "redis_url" in result.stderr
    assert "listening" not in result.stdout and "Traceback" not in result.stderr
