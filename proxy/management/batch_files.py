"""Bulk profile batch files (bulk profile update v2): where the CSV is in a request body, and what its
head must say. The gateway checks the head before spending a call of the client's budget on it; the
emulator reads the whole file."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from urllib.parse import parse_qs

from proxy.http.errors import ApiError


def fail(field: str, message: str) -> ApiError:
    return ApiError(400, f"{field}: {message}", field)


ID_COLUMNS = {
    "pcid": "tntId",
    "mboxpc": "tntId",
    "thirdpartyid": "thirdPartyId",
    "mbox3rdpartyid": "thirdPartyId",
}
MAX_NAME_LENGTH = 128


def batch_text(raw: bytes) -> str:
    """The CSV of a request body: the ``batch`` field of an application/x-www-form-urlencoded form (names
    and values URL-encoded, as documented), or a file sent as it stands, which its raw line breaks give
    away."""
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise fail("batch", "must be UTF-8 text") from None
    if "\n" in body.strip():
        return body.removeprefix("batch=")
    fields = parse_qs(body, keep_blank_values=True)
    return fields["batch"][0] if "batch" in fields else body


def rows(text: str) -> Iterator[list[str]]:
    """The CSV's rows, the head first; a file that is no CSV at all is the client's 400."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        yield from reader
    except csv.Error as exc:
        raise fail("batch", f"is not a CSV file ({exc})") from None


def read_head(reader: Iterator[list[str]]) -> tuple[str, list[str]]:
    """The id column's kind (``tntId`` or ``thirdPartyId``) and the attribute names."""
    head = next(reader, None)
    if not head:
        raise fail("batch", "the file is empty")
    kind = ID_COLUMNS.get(head[0].strip().lower())
    if kind is None:
        raise fail("batch", "the first column must be pcId or thirdPartyId")
    names = [name.strip() for name in head[1:]]
    if not names or any(not name or len(name) > MAX_NAME_LENGTH for name in names):
        raise fail("batch", f"attribute names must be 1-{MAX_NAME_LENGTH} characters")
    return kind, names
