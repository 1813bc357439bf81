"""Structural checks that prove a candidate has a credential's format, not just its alphabet.

Checksums (the CRC32 tail of GitHub and npm tokens), the binary structure of a PyPI macaroon, the DER or
openssh-key-v1 framing inside a PEM private key, the JSON header of a JWT, the `user:password` inside a
docker auth entry. Each takes bytes and returns a bool; none raises on hostile input, and every length it
reads from the candidate is bounded.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import string
import zlib

BASE62 = (string.digits + string.ascii_uppercase + string.ascii_lowercase).encode()
MAX_DECODED_BYTES = 65536  # no candidate we decode (PEM body, macaroon, JWT part) is legitimately larger
MAX_MACAROON_PACKETS = 256
MACAROON_LOCATIONS = frozenset({b"pypi.org", b"test.pypi.org"})
MACAROON_SIGNATURE_BYTES = 32
_WS = re.compile(rb"\s+|\\r|\\n")


def base62_crc32(body: bytes) -> bytes:
    value = zlib.crc32(body)
    out = bytearray()
    while value:
        value, rem = divmod(value, 62)
        out.insert(0, BASE62[rem])
    return bytes(out).rjust(6, b"0")


def crc32_tail_valid(token: bytes, prefix_len: int) -> bool:
    """`<prefix><30 random base62><6 base62 CRC32 of the random part>` (GitHub, npm)."""
    body = token[prefix_len:]
    if len(body) != 36:
        return False
    return base62_crc32(body[:30]) == body[30:]


def b64decode_loose(text: bytes, *, urlsafe: bool = False) -> bytes | None:
    """Base64 with or without padding; None if it is not base64 or decodes larger than the bound."""
    if len(text) > MAX_DECODED_BYTES * 4 // 3 + 4:
        return None
    padded = text + b"=" * (-len(text) % 4)
    try:
        if urlsafe:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _varint(raw: bytes, pos: int) -> tuple[int, int] | None:
    value = shift = 0
    while pos < len(raw) and shift < 35:
        b = raw[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
    return None


def pypi_macaroon_valid(token: bytes) -> bool:
    """A `pypi-` token is a base64url macaroon (v2 binary format) located at pypi.org or test.pypi.org.

    Layout: version 2; packets (type, length, data) for location and identifier up to an end marker; caveat
    sections each closed by an end marker; an empty section; the 32-byte signature packet (type 6).
    """
    if not token.startswith(b"pypi-"):
        return False
    raw = b64decode_loose(token[5:], urlsafe=True)
    if raw is None or len(raw) < 2 or raw[0] != 2:
        return False
    pos, packets, location, ident, sections = 1, 0, b"", False, 0
    while pos < len(raw) and packets < MAX_MACAROON_PACKETS:
        packets += 1
        head = _varint(raw, pos)
        if head is None:
            return False
        kind, pos = head
        if kind == 0:
            sections += 1
            continue
        size = _varint(raw, pos)
        if size is None:
            return False
        length, pos = size
        data = raw[pos : pos + length]
        if len(data) != length:
            return False
        pos += length
        if sections == 0 and kind == 1:
            location = data
        elif sections == 0 and kind == 2:
            ident = True
        elif kind == 6:
            return pos == len(raw) and length == MACAROON_SIGNATURE_BYTES and location in MACAROON_LOCATIONS and ident
    return False


def pem_body_valid(body: bytes, label: bytes) -> bool:
    """The base64 body of a private-key PEM decodes to what its label promises.

    OpenSSH: the `openssh-key-v1` magic. PGP: an OpenPGP packet header. Others: a DER SEQUENCE whose
    declared length fits the decoded bytes. Encapsulated headers (Proc-Type, DEK-Info) are skipped.
    """
    lines = [ln for ln in re.split(rb"\r?\n|\\r?\\n", body) if b":" not in ln]
    if b"PGP" in label:
        # The armour's trailing "=XXXX" CRC24 line is not part of the packet data.
        lines = [ln for ln in lines if not ln.strip().startswith(b"=")]
    raw = b64decode_loose(_WS.sub(b"", b"".join(lines)))
    if raw is None or len(raw) < 32:
        return False
    if b"OPENSSH" in label:
        return raw.startswith(b"openssh-key-v1\x00")
    if b"PGP" in label:
        return bool(raw[0] & 0x80)
    if raw[0] != 0x30 or len(raw) < 2:
        return False
    first = raw[1]
    if first < 0x80:
        declared, header = first, 2
    else:
        nbytes = first & 0x7F
        if nbytes == 0 or nbytes > 4 or len(raw) < 2 + nbytes:
            return False
        declared, header = int.from_bytes(raw[2 : 2 + nbytes], "big"), 2 + nbytes
    return header + declared <= len(raw) and declared >= 16


def jwt_valid(token: bytes) -> bool:
    """Three base64url parts; the first two decode to JSON objects and the header names an algorithm."""
    parts = token.split(b".")
    if len(parts) != 3:
        return False
    try:
        header = json.loads(b64decode_loose(parts[0], urlsafe=True) or b"")
        payload = json.loads(b64decode_loose(parts[1], urlsafe=True) or b"")
    except (ValueError, UnicodeDecodeError):
        return False
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return False
    alg = header.get("alg")
    return isinstance(alg, str) and alg.lower() != "none"


def docker_auth_password(value: bytes) -> bytes | None:
    """The password inside a docker config `auth` value (base64 of `user:password`), if there is one."""
    raw = b64decode_loose(value)
    if raw is None or b":" not in raw:
        return None
    user, _, password = raw.partition(b":")
    if not user or not password or not all(32 <= b < 127 for b in raw):
        return None
    return password


def kube_client_key_valid(value: bytes) -> bool:
    """`client-key-data` is base64 of a PEM private key with a real body."""
    raw = b64decode_loose(value)
    if raw is None:
        return False
    m = re.search(rb"-----BEGIN ([A-Z ]*PRIVATE KEY)-----(.+?)-----END \1-----", raw, re.S)
    return m is not None and pem_body_valid(m.group(2), m.group(1))


def azure_account_key_valid(value: bytes) -> bool:
    raw = b64decode_loose(value)
    return raw is not None and len(raw) == 64
