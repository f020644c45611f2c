"""``target-proxy upload-profiles`` as a real process against a gateway process: a CSV split into bulk
batches, sent URL-encoded, a progress bar, the per-row summary and the exit code; and the bounds a batch
keeps (rows, and bytes as sent)."""

from __future__ import annotations

import csv
import io
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote_plus

import httpx

from proxy.management.bulk_upload import MAX_BYTES, MAX_ROWS, batches
from tests.admin.support import calls, last_request
from tests.conftest import PROFILE_KEY, gateway_env
from tests.servers import ServerProcess
from tests.support import wait_for

ROWS = 3500
CITIES = ["São Paulo, SP", 'Quote "City"', "Zürich", "50% + more & less"]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def upload(
    gateway: ServerProcess, path: Path, *options: str, key: str | None = PROFILE_KEY
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARGET_PROXY_")}
    if key is not None:
        env["TARGET_PROXY_CLIENT_KEY"] = key
    command = [sys.executable, "-m", "proxy", "upload-profiles", str(path), "--client", "demo"]
    command += ["--gateway", gateway.url, *options]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)


def profile_attributes(emulator: httpx.Client, tnt_id: str) -> dict[str, str] | None:
    response = emulator.get(f"/rest/v1/profiles/{tnt_id}", params={"client": "demo"})
    if response.status_code != 200:
        return None
    return {name: entry["value"] for name, entry in response.json()["profileAttributes"].items()} or None


def test_a_csv_goes_up_in_batches_with_a_progress_bar_and_a_summary(
    gateway_process: ServerProcess, emulator: httpx.Client, tmp_path: Path
) -> None:
    rows = [["pcId", "tier", "city"]]
    rows += [[f"cli-{n:05}", "gold" if n % 2 else "silver", CITIES[n % len(CITIES)]] for n in range(ROWS)]
    path = write_csv(tmp_path / "profiles.csv", rows)

    done = upload(gateway_process, path, "--batch-rows", "1000")

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == f"{ROWS} rows in 4 batch(es): {ROWS} success"
    assert f"{ROWS}/{ROWS}" in done.stderr, "the progress bar reached the end"
    assert calls(emulator) == {"profile_batch_update": 4, "profile_batch_status": 4}
    status_query = last_request(emulator, "profile_batch_status")["query"]
    assert re.fullmatch(r"batchId=demo-\d+&m2Node=00", status_query), "the status link as upstream gave it"
    for n in (0, 1, 2, 3, ROWS - 1):
        expected = {"tier": "gold" if n % 2 else "silver", "city": CITIES[n % len(CITIES)]}
        assert wait_for(lambda n=n: profile_attributes(emulator, f"cli-{n:05}")) == expected


def test_rows_upstream_refused_are_named_and_the_exit_code_is_1(
    gateway_process: ServerProcess, emulator: httpx.Client, tmp_path: Path
) -> None:
    long_id = "x" * 129
    path = write_csv(
        tmp_path / "bad.csv",
        [["thirdPartyId", "plan"], ["crm-good-1", "family"], [long_id, "solo"], ["crm<&>long-value", "v" * 257]],
    )

    done = upload(gateway_process, path)

    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "3 rows in 1 batch(es): 1 failed: invalid id, 1 failed: value longer than 256, 1 success"
    assert f"  {long_id}: failed: invalid id" in lines
    assert "  crm<&>long-value: failed: value longer than 256" in lines, "the row as the file names it"
    assert not any("crm-good-1" in line for line in lines)


def test_a_file_without_an_id_column_is_refused_before_any_call(
    gateway_process: ServerProcess, emulator: httpx.Client, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "emails.csv", [["email", "plan"], ["a@example.com", "family"]])

    done = upload(gateway_process, path)

    assert done.returncode == 1
    assert "the first column must be pcId or thirdPartyId" in done.stderr
    assert calls(emulator) == {}


def test_a_key_without_the_profile_scope_stops_the_upload(
    gateway_process: ServerProcess, emulator: httpx.Client, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "profiles.csv", [["pcId", "plan"], ["k-1", "family"]])

    unknown = upload(gateway_process, path, key="not-a-gateway-key-000000")
    missing = upload(gateway_process, path, key=None)

    assert unknown.returncode == 1 and "answered 401" in unknown.stderr
    assert missing.returncode == 1 and "a client key is needed" in missing.stderr
    assert calls(emulator) == {}


def test_batches_hold_at_most_the_rows_and_the_encoded_bytes_allowed(tmp_path: Path) -> None:
    rows = [["pcId", "note"]] + [[f"size-{n:04}", CITIES[n % len(CITIES)] * (n % 7)] for n in range(2000)]
    path = write_csv(tmp_path / "sizes.csv", rows)

    by_rows = list(batches(path, max_rows=300, max_bytes=MAX_BYTES, refused=[]))
    by_bytes = list(batches(path, max_rows=MAX_ROWS, max_bytes=20_000, refused=[]))

    assert [count for _, count in by_rows] == [300] * 6 + [200]
    assert len(by_bytes) > 1
    for text, _ in by_bytes:
        assert len(("batch=" + quote_plus(text)).encode()) <= 20_000, "the form as sent stays within the bound"
    for split in (by_rows, by_bytes):
        assert all(text.startswith("pcId,note\n") for text, _ in split), "each batch has the header"
        sent = "".join(text.split("\n", 1)[1] for text, _ in split)
        assert list(csv.reader(io.StringIO(sent))) == rows[1:], "every row once, in order, intact"


def test_rows_that_cannot_be_sent_are_named_by_line_and_not_counted_as_success(
    gateway_process: ServerProcess, emulator: httpx.Client, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "ragged.csv",
        [["pcId", "tier", "city"], ["r-1", "gold", "Oslo"], ["r-2", "gold"], ["", "silver", "Rome"],
         ["r-3", "gold", "Lima", "extra"], ["r-4", "silver", "Kyiv"]],
    )  # fmt: skip

    done = upload(gateway_process, path)

    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "2 rows in 1 batch(es): 3 not sent, 2 success", lines
    assert "  line 3: not sent: 2 fields where the header has 3" in lines
    assert "  line 4: not sent: no pcId" in lines
    assert "  line 5: not sent: 4 fields where the header has 3" in lines
    assert wait_for(lambda: profile_attributes(emulator, "r-4")) == {"tier": "silver", "city": "Kyiv"}


def test_a_file_with_ids_only_says_there_is_nothing_to_set(
    gateway_process: ServerProcess, emulator: httpx.Client, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "ids.csv", [["thirdPartyId"], ["crm-1"], ["crm-2"]])
    done = upload(gateway_process, path)
    assert done.returncode == 1
    assert "the header names no profile attribute after thirdPartyId" in done.stderr
    assert "Traceback" not in done.stderr and calls(emulator) == {}


def test_a_file_that_is_not_utf8_is_one_line_naming_the_place(
    gateway_process: ServerProcess, emulator: httpx.Client, tmp_path: Path
) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("pcId,city\nl-1,Z\u00fcrich\n".encode("latin-1"))
    done = upload(gateway_process, path)
    assert done.returncode == 1
    assert "not UTF-8 text (byte 0xfc" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert calls(emulator) == {}


def test_a_gateway_that_is_down_is_one_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "profiles.csv", [["pcId", "plan"], ["d-1", "family"]])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {"PATH": "/usr/bin:/bin", "TARGET_PROXY_CLIENT_KEY": PROFILE_KEY}
    command = [sys.executable, "-m", "proxy", "upload-profiles", str(path), "--client", "demo", "--gateway", closed]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 1
    assert "no answer from the gateway" in done.stderr and closed in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_bulk_upload_has_a_timeout_of_its_own_and_the_bar_counts_rows_sent(
    emulator: httpx.Client, emulator_process: ServerProcess, tmp_path: Path
) -> None:
    rows = 5000
    path = write_csv(tmp_path / "big.csv", [["pcId", "tier"]] + [[f"big-{n:05}", "gold"] for n in range(rows)])
    env = gateway_env(tmp_path, upstream_timeout_ms="300")
    gateway = ServerProcess(["serve", "--port", "0", "--upstream", emulator_process.url], env=env)
    gateway.start(expect=["gateway"])
    try:
        emulator.post("/_emulator/faults", json={"latency_ms": 700}).raise_for_status()
        view = httpx.post(f"{gateway.url}/rest/v1/mbox?client=demo", json={"mbox": "home-hero"}, timeout=10)
        assert view.status_code == 504, "a view waits upstream_timeout_ms"
        done = upload(gateway, path)
    finally:
        emulator.post("/_emulator/faults", json={"latency_ms": 0}).raise_for_status()
        gateway.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == f"{rows} rows in 1 batch(es): {rows} success"
    assert re.search(rf"big.csv: sent, waiting for 1 batch status\(es\):\s+100%.*{rows}/{rows}", done.stderr), (
        done.stderr
    )
