"""Bulk profile update: a CSV batch of profiles; v2 creates the profiles it does not find and answers per
row through batchStatus, v1 only updates those that exist."""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from proxy.emulator.checks import fail
from proxy.emulator.errors import EdgeError
from proxy.emulator.profiles import ProfileStore

MAX_BATCH_BYTES = 50 * 1024 * 1024
MAX_BATCH_ROWS = 500_000
ID_COLUMNS = {"pcid": "tntId", "mboxpc": "tntId", "thirdpartyid": "thirdPartyId", "mbox3rdpartyid": "thirdPartyId"}


@dataclass(slots=True)
class Batch:
    batch_id: str
    rows: list[tuple[str, str]] = field(default_factory=list)

    @property
    def updated(self) -> int:
        return sum(1 for _, status in self.rows if status == "success")


def batch_csv(raw: bytes) -> str:
    """The CSV of a request: the ``batch`` field of a URL-encoded form, or the file as it was sent (its raw
    line breaks tell)."""
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise fail("batch", "must be UTF-8 text") from None
    if "\n" not in body.strip():
        return dict(parse_qsl(body, keep_blank_values=True)).get("batch", body)
    return body.removeprefix("batch=")


def parse_batch(raw: bytes) -> tuple[str, list[str], list[list[str]]]:
    """The id column kind, the attribute names and the rows of a batch file."""
    if len(raw) > MAX_BATCH_BYTES:
        raise EdgeError(413, "batch file exceeds 50 MB", "batch")
    try:
        table = [row for row in csv.reader(io.StringIO(batch_csv(raw), newline=""))]
    except csv.Error as exc:
        raise fail("batch", f"is not a CSV file ({exc})") from None
    if not table or not table[0]:
        raise fail("batch", "the file is empty")
    head, rows = table[0], [row for row in table[1:] if row]
    kind = ID_COLUMNS.get(head[0].strip().lower())
    if kind is None:
        raise fail("batch", "the first column must be pcId or thirdPartyId")
    names = [name.strip() for name in head[1:]]
    if not names or not all(0 < len(name) <= 128 for name in names):
        raise fail("batch", "attribute names must be 1-128 characters")
    if len(rows) > MAX_BATCH_ROWS:
        raise EdgeError(400, f"batch: more than {MAX_BATCH_ROWS} rows", "batch")
    return kind, names, rows


class BulkUpdates:
    def __init__(self, profiles: ProfileStore, keep: int = 1000) -> None:
        self.profiles = profiles
        self.keep = keep
        self._batches: dict[str, Batch] = {}
        self._sequence = itertools.count(1_845_664_501)

    def clear(self) -> None:
        self._batches.clear()

    def submit(self, client: str, cluster: int, raw: bytes, create: bool = True) -> Batch:
        kind, names, rows = parse_batch(raw)
        batch = Batch(f"{client}-{next(self._sequence)}")
        for row in rows:
            identity = row[0].strip()
            values = {name: value.strip() for name, value in zip(names, row[1:], strict=False) if value.strip()}
            if not identity or len(identity) > 128:
                batch.rows.append((identity, "failed: invalid id"))
                continue
            if any(len(value) > 256 for value in values.values()):
                batch.rows.append((identity, "failed: value longer than 256"))
                continue
            profile, _ = self.profiles.resolve(
                cluster, **({"tnt_id": identity} if kind == "tntId" else {"third_party_id": identity}), create=create
            )
            if profile is None:
                batch.rows.append((identity, "failed: profile not found"))
                continue
            self.profiles.write(profile, values, cluster)
            batch.rows.append((identity, "success"))
        if len(self._batches) >= self.keep:
            del self._batches[next(iter(self._batches))]
        self._batches[batch.batch_id] = batch
        return batch

    def get(self, batch_id: str) -> Batch | None:
        return self._batches.get(batch_id)
