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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
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


@dataclass
class Row:
    """A row of the file that is not sent, and why."""

    line: int
    reason: str


def batches(path: Path, max_rows: int, max_bytes: int, refused: list[Row]) -> Iterator[tuple[str, int]]:
    """(CSV text with the header, rows) for each batch of the file; rows that cannot be sent (no id, a
    number of fields other than the header's) go to ``refused``, by line number."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if not header or header[0].strip().lower() not in ID_COLUMNS:
                raise UploadError(f"{path}: the first column must be pcId or thirdPartyId")
            if not any(name.strip() for name in header[1:]):
                raise UploadError(
                    f"{path}: the header names no profile attribute after {header[0].strip()}; "
                    "each further column is an attribute to set"
                )
            head = encode_row([header[0].strip(), *(name.strip() for name in header[1:])])
            lines: list[str] = []
            size = len(head)
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # a blank line
                if not row[0].strip():
                    refused.append(Row(reader.line_num, f"no {header[0].strip()}"))
                    continue
                if len(row) != len(header):
                    refused.append(Row(reader.line_num, f"{len(row)} fields where the header has {len(header)}"))
                    continue
                line = encode_row(row)
                if lines and (len(lines) >= max_rows or size + len(line) * 3 > max_bytes):
                    yield head + "".join(lines), len(lines)
                    lines, size = [], len(head)
                lines.append(line)
                size += len(line) * 3  # URL-encoding can triple a character
            if lines:
                yield head + "".join(lines), len(lines)
        except UnicodeDecodeError as exc:
            raise UploadError(
                f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start} of a block "
                "near line " + str(reader.line_num + 1) + "); save the file as UTF-8"
            ) from None
        except csv.Error as exc:
            raise UploadError(f"{path}, line {reader.line_num}: {exc}") from None


def count_rows(path: Path) -> int:
    """Lines of data (an estimate for the progress bar: a quoted field may span lines)."""
    with path.open("rb") as handle:
        return max(0, sum(1 for line in handle if line.strip()) - 1)


def form_parts(csv_text: str, sent: Callable[[int], object], rows_per_part: int = 2000) -> Iterator[bytes]:
    """The form body ``batch=<URL-encoded CSV>`` in parts of some rows each (URL-encoding the parts one by
    one gives the encoding of the whole)."""
    head, _, rest = csv_text.partition("\n")
    yield ("batch=" + quote_plus(head + "\n")).encode()
    lines = rest.splitlines(keepends=True)
    for start in range(0, len(lines), rows_per_part):
        part = lines[start : start + rows_per_part]
        yield quote_plus("".join(part)).encode()
        sent(len(part))


def describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Uploader:
    def __init__(self, gateway: str, client: str, key: str, poll_s: float = 1.0, timeout_s: float = 600.0) -> None:
        self.gateway = gateway.rstrip("/")
        self.client = client
        self.headers = {"authorization": f"Bearer {key}"}
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.http: SyncClient = SyncClientBuilder().timeout(timedelta(seconds=timeout_s)).build()

    def send(self, method: str, url: str, body: Iterable[bytes] | None = None, content_type: str | None = None) -> str:
        """One call; waits out the gateway's Retry-After when the call budget is spent."""
        while True:
            builder = self.http.request(method, url).headers(
                {**self.headers, **({"content-type": content_type} if content_type else {})}
            )
            if body is not None:
                builder = builder.body_stream(iter(body))
            try:
                response = builder.build().send()
                text = response.text()
            except Exception as exc:  # pyreqwest's connection, timeout and request errors
                raise UploadError(f"{method} {url}: no answer from the gateway ({describe(exc)})") from None
            if response.status == 429:
                time.sleep(float(response.headers.get("retry-after") or 5))
                continue
            if response.status >= 400:
                raise UploadError(f"{method} {url} answered {response.status}: {text[:300]}")
            return text

    def submit(self, csv_text: str, sent: Callable[[int], object] = lambda rows: None) -> str:
        """Send one batch, streamed: ``sent`` is told of each part's rows as it goes; returns its status link."""
        url = f"{self.gateway}/m2/{quote_plus(self.client)}/v2/profile/batchUpdate"
        answer = tags(self.send("POST", url, form_parts(csv_text, sent), "application/x-www-form-urlencoded"))
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
    """Send the file batch by batch. The progress bar counts rows sent (a batch's rows once the gateway
    took it), then their statuses as the batches complete."""
    summary = Summary()
    refused: list[Row] = []
    with tqdm(total=count_rows(path), unit="row", desc=f"{path.name}: sent", file=sys.stderr) as progress:
        pending: list[tuple[str, int]] = []
        for csv_text, rows in batches(path, max_rows, max_bytes, refused):
            pending.append((uploader.submit(csv_text, progress.update), rows))
            summary.batches += 1
            summary.rows += rows
        progress.set_description(f"{path.name}: sent, waiting for {len(pending)} batch status(es)")
        for status_url, _ in pending:
            for identity, status in uploader.wait(status_url):
                summary.statuses[status] += 1
                if status != "success":
                    summary.failures.append((identity, status))
        progress.set_description(f"{path.name}: done")
    for row in refused:
        summary.statuses["not sent"] += 1
        summary.failures.append((f"line {row.line}", f"not sent: {row.reason}"))
    return summary
