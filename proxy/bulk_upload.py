"""``target-proxy upload-profiles``: a CSV of profile attributes, sent through the gateway as bulk profile
update (v2) batches of at most 500,000 rows and 50 MB, with a progress bar and a per-row summary.

The CSV's first column is ``pcId`` (tntId) or ``thirdPartyId``; the others are attribute names. Each batch
is the form field ``batch`` holding that CSV, URL-encoded as the API wants.
"""

from __future__ import annotations

import csv
import html
import io
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote_plus, urlsplit

from pyreqwest.client import SyncClient, SyncClientBuilder
from tqdm import tqdm

MAX_ROWS = 500_000
MAX_BYTES = 50 * 1024 * 1024
ID_COLUMNS = {"pcid", "mboxpc", "thirdpartyid", "mbox3rdpartyid"}
TAG = re.compile(r"<(\w+)>([^<]*)</\1>")
PROFILE = re.compile(r"<profile>\s*<id>([^<]*)</id>\s*<status>([^<]*)</status>\s*</profile>")


class UploadError(Exception):
    pass


@dataclass
class Summary:
    batches: int = 0
    rows: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        done = ", ".join(f"{count} {status}" for status, count in sorted(self.statuses.items()))
        lines = [f"{self.rows} rows in {self.batches} batch(es): {done or 'no status reported'}"]
        lines += [f"  {identity}: {status}" for identity, status in self.failures[:20]]
        if len(self.failures) > 20:
            lines.append(f"  ... and {len(self.failures) - 20} more")
        return lines


def tags(text: str) -> dict[str, str]:
    """The simple elements of an XML answer, their text unescaped (a status link's ``&amp;`` is ``&``)."""
    return {name: html.unescape(value) for name, value in TAG.findall(text)}


def encode_row(row: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(row)
    return buffer.getvalue()


def batches(path: Path, max_rows: int, max_bytes: int) -> Iterator[tuple[str, int]]:
    """(CSV text with the header, rows) for each batch of the file."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or header[0].strip().lower() not in ID_COLUMNS:
            raise UploadError(f"{path}: the first column must be pcId or thirdPartyId")
        head = encode_row([header[0].strip(), *(name.strip() for name in header[1:])])
        lines: list[str] = []
        size = len(head)
        for row in reader:
            if not row or not row[0].strip():
                continue
            line = encode_row(row)
            if lines and (len(lines) >= max_rows or size + len(line) * 3 > max_bytes):
                yield head + "".join(lines), len(lines)
                lines, size = [], len(head)
            lines.append(line)
            size += len(line) * 3  # URL-encoding can triple a character
        if lines:
            yield head + "".join(lines), len(lines)


def count_rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as handle:
        return max(0, sum(1 for row in csv.reader(handle) if row and row[0].strip()) - 1)


class Uploader:
    def __init__(self, gateway: str, client: str, key: str, poll_s: float = 1.0, timeout_s: float = 600.0) -> None:
        self.gateway = gateway.rstrip("/")
        self.client = client
        self.headers = {"authorization": f"Bearer {key}"}
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.http: SyncClient = SyncClientBuilder().build()

    def send(self, method: str, url: str, body: bytes | None = None, content_type: str | None = None) -> str:
        """One call; waits out the gateway's Retry-After when the call budget is spent."""
        while True:
            builder = self.http.request(method, url).headers(
                {**self.headers, **({"content-type": content_type} if content_type else {})}
            )
            if body is not None:
                builder = builder.body_bytes(body)
            response = builder.build().send()
            text = response.text()
            if response.status == 429:
                time.sleep(float(response.headers.get("retry-after") or 5))
                continue
            if response.status >= 400:
                raise UploadError(f"{method} {url} answered {response.status}: {text[:300]}")
            return text

    def submit(self, csv_text: str) -> str:
        """Send one batch; returns its status link."""
        body = ("batch=" + quote_plus(csv_text)).encode()
        url = f"{self.gateway}/m2/{quote_plus(self.client)}/v2/profile/batchUpdate"
        answer = tags(self.send("POST", url, body, "application/x-www-form-urlencoded"))
        if answer.get("success") != "true" or not answer.get("batchStatus"):
            raise UploadError(f"batch refused: {answer.get('message') or 'no reason given'}")
        link = urlsplit(answer["batchStatus"])
        return f"{self.gateway}{link.path}?{link.query}"

    def wait(self, status_url: str) -> list[tuple[str, str]]:
        """Poll the batch's status until it is complete; the status of each row."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            text = self.send("GET", status_url)
            rows = [(html.unescape(identity), html.unescape(status)) for identity, status in PROFILE.findall(text)]
            state = tags(text).get("status", "")
            if state == "complete" or (rows and all(status != "pending" for _, status in rows)):
                return rows
            if time.monotonic() > deadline:
                raise UploadError(f"batch still {state or 'pending'} after {self.timeout_s:.0f} s")
            time.sleep(self.poll_s)


def upload(path: Path, uploader: Uploader, max_rows: int = MAX_ROWS, max_bytes: int = MAX_BYTES) -> Summary:
    summary = Summary()
    with tqdm(total=count_rows(path), unit="row", desc=path.name, file=sys.stderr) as progress:
        for csv_text, rows in batches(path, max_rows, max_bytes):
            statuses = uploader.wait(uploader.submit(csv_text))
            summary.batches += 1
            summary.rows += rows
            for identity, status in statuses:
                summary.statuses[status] += 1
                if status != "success":
                    summary.failures.append((identity, status))
            progress.update(rows)
    return summary
