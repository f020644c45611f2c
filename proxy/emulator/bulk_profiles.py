"""Bulk profile update: a CSV batch of profiles; v2 creates the profiles it does not find and answers per
row through batchStatus, v1 only updates those that exist."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from proxy.emulator.profiles import ProfileStore
from proxy.http.errors import ApiError
from proxy.management import batch_files

MAX_BATCH_BYTES = 50 * 1024 * 1024
MAX_BATCH_ROWS = 500_000


@dataclass(slots=True)
class Batch:
    batch_id: str
    rows: list[tuple[str, str]] = field(default_factory=list)

    @property
    def updated(self) -> int:
        return sum(1 for _, status in self.rows if status == "success")


def parse_batch(raw: bytes) -> tuple[str, list[str], list[list[str]]]:
    """The id column kind, the attribute names and the rows of a batch file."""
    if len(raw) > MAX_BATCH_BYTES:
        raise ApiError(413, "batch file exceeds 50 MB", "batch")
    reader = batch_files.rows(batch_files.batch_text(raw))
    kind, names = batch_files.read_head(reader)
    rows = list(itertools.islice((row for row in reader if row), MAX_BATCH_ROWS + 1))
    if len(rows) > MAX_BATCH_ROWS:
        raise ApiError(400, f"batch: more than {MAX_BATCH_ROWS} rows", "batch")
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
