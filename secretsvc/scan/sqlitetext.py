"""The text values of a SQLite database file, read from its b-tree leaf pages without SQLite itself.

A row's columns sit next to each other in the file with no separator, so a database scanned as a binary
reads `payments.key` and the token stored after it as one word, and a rule that wants a boundary before the
token finds none. This reads every leaf page (table and index b-trees), decodes each cell's record header and
hands out each text value on its own, decoded from the database's text encoding (UTF-8 or UTF-16).

Only the part of a value stored on its leaf page is read (overflow pages are not followed: a long value
gives its first kilobytes). Every read is bounded: the database bytes given (`MAX_DATABASE_BYTES`), page and
cell counts follow from the page size, a record header is at most `MAX_RECORD_HEADER` bytes, and the output
holds at most `MAX_VALUES` values. A malformed page or cell is skipped, never an error: the database is still
scanned as a binary file as well.
"""

from __future__ import annotations

from collections.abc import Iterator

MAGIC = b"SQLite format 3\x00"
MAX_DATABASE_BYTES = 32 << 20  # a larger database is scanned as a binary only: reading it costs its size in memory
HEADER_BYTES = 100
MAX_RECORD_HEADER = 4096  # bytes of serial types in one record; real tables have far fewer columns
MAX_VALUES = 1_000_000  # text values handed out from one database
MIN_VALUE_BYTES = 6  # shorter text holds no secret worth a rule's time

_LEAF_INDEX, _LEAF_TABLE = 0x0A, 0x0D
_ENCODINGS = {1: "utf-8", 2: "utf-16-le", 3: "utf-16-be"}


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """A SQLite varint at `pos` (1 to 9 bytes, big-endian groups of 7 bits, the 9th byte whole): value, next."""
    value = 0
    for i in range(9):
        if pos >= end:
            raise ValueError("varint runs past its page")
        byte = buf[pos]
        pos += 1
        if i == 8:
            return (value << 8) | byte, pos
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos
    raise AssertionError("unreachable")  # pragma: no cover


def _local_size(payload: int, usable: int, *, table: bool) -> int:
    """How much of a payload is stored on the leaf page itself (SQLite's file format, section 1.6)."""
    most = usable - 35 if table else ((usable - 12) * 64 // 255) - 23
    if payload <= most:
        return payload
    least = ((usable - 12) * 32 // 255) - 23
    k = least + (payload - least) % (usable - 4)
    return k if k <= most else least


def _serial_size(serial: int) -> int:
    if serial < 12:
        return (0, 1, 2, 3, 4, 6, 8, 8, 0, 0, 0, 0)[serial]
    return (serial - 12) // 2


def _record_texts(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Spans of the text values of the record at buf[start:end] (cut at `end` when it overflows)."""
    header_size, pos = _varint(buf, start, end)
    header_end = start + header_size
    if header_size > MAX_RECORD_HEADER or header_end > end:
        return
    body = header_end
    while pos < header_end:
        serial, pos = _varint(buf, pos, header_end)
        size = _serial_size(serial)
        if serial >= 13 and serial % 2 == 1 and size >= MIN_VALUE_BYTES and body < end:
            yield body, min(body + size, end)
        body += size


def text_values(db: bytes) -> Iterator[bytes]:
    """Each text value of the database in `db` (the whole file, or its first part), as UTF-8."""
    if not db.startswith(MAGIC) or len(db) < HEADER_BYTES:
        return
    page_size = int.from_bytes(db[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return
    usable = page_size - db[20]
    codec = _ENCODINGS.get(int.from_bytes(db[56:60], "big"), "utf-8")
    if usable < 480:
        return
    count = 0
    for page_start in range(0, len(db) - page_size + 1, page_size):
        header = page_start + (HEADER_BYTES if page_start == 0 else 0)
        kind = db[header]
        if kind not in (_LEAF_INDEX, _LEAF_TABLE):
            continue
        cells = int.from_bytes(db[header + 3 : header + 5], "big")
        page_end = page_start + usable
        for i in range(min(cells, (page_size - 8) // 2)):
            at = header + 8 + 2 * i
            cell = page_start + int.from_bytes(db[at : at + 2], "big")
            if not header + 8 <= cell < page_end:
                continue
            try:
                payload, pos = _varint(db, cell, page_end)
                if kind == _LEAF_TABLE:
                    _rowid, pos = _varint(db, pos, page_end)
                local = _local_size(payload, usable, table=kind == _LEAF_TABLE)
                spans = list(_record_texts(db, pos, min(pos + local, page_end)))
            except ValueError:
                continue
            for s, e in spans:
                yield db[s:e].decode(codec, "replace").encode("utf-8", "surrogatepass")
                count += 1
                if count >= MAX_VALUES:
                    return
