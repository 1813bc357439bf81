"""The versioned envelope format every stored ciphertext uses.

A fresh AES-256-GCM data key encrypts each plaintext; a key-encryption key wraps the data key. The header
(format version, KEK id and version) and the record's context are bound as associated data, so an envelope
moved to another record, or with any byte changed, fails with one uniform `DecryptionFailed`. The byte layout
is documented in docs/envelope-format.md:

    version(1)=0x01 | key id length L(1) | key id(L, ASCII) | key version(4, BE) |
    wrapped key length W(2, BE) | wrapped key(W) | nonce(12) | ciphertext | tag(16)
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from secretsvc import errors
from secretsvc.crypto import aead
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.kek.base import KeyEncryptionKey, WrappedKey

FORMAT_VERSION = 1
MAX_KEY_ID_BYTES = 255
MAX_KEY_VERSION = 2**32 - 1
MAX_WRAPPED_KEY_BYTES = 4096
MAX_PLAINTEXT_BYTES = 64 * 1024 * 1024
MAX_HEADER_BYTES = 1 + 1 + MAX_KEY_ID_BYTES + 4 + 2 + MAX_WRAPPED_KEY_BYTES
MAX_ENVELOPE_BYTES = MAX_HEADER_BYTES + MAX_PLAINTEXT_BYTES + aead.OVERHEAD_BYTES
MIN_ENVELOPE_BYTES = 1 + 1 + 1 + 4 + 2 + 1 + aead.OVERHEAD_BYTES
MAX_CONTEXT_FIELD_BYTES = 64 * 1024
MAX_CONTEXT_VERSION = 2**63 - 1

DEK_AAD_LABEL = b"secretsvc.dek.v1"
PAYLOAD_AAD_LABEL = b"secretsvc.payload.v1"

# A remote KEK may rotate between asking its primary version and wrapping; the version is bound into the
# wrap's associated data, so such a wrap is redone rather than stored under the wrong header.
_WRAP_ATTEMPTS = 3

# Printable ASCII only, so a key id is always safe to log and compare.
_KEY_ID = re.compile(rb"[\x21-\x7e]{1,%d}" % MAX_KEY_ID_BYTES)

_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_U64 = struct.Struct(">Q")


class ContextKind(IntEnum):
    """What kind of record an envelope belongs to; the first byte of the context encoding."""

    SECRET = 1
    TRANSIT = 2
    TRANSIT_KEY_MATERIAL = 3
    FINGERPRINT_KEY = 4


def _text_field(name: str, value: str) -> bytes:
    if not isinstance(value, str):
        raise errors.InvalidArgument(f"envelope context {name} must be a string")
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.InvalidArgument(f"envelope context {name} is not valid UTF-8 text") from None
    return raw


def _version_field(name: str, value: int) -> bytes:
    if type(value) is not int or not 1 <= value <= MAX_CONTEXT_VERSION:
        raise errors.InvalidArgument(
            f"envelope context {name} must be an integer in [1, {MAX_CONTEXT_VERSION}]"
        )
    return _U64.pack(value)


@dataclass(frozen=True, slots=True)
class EnvelopeContext:
    """The record an envelope belongs to, bound into its associated data.

    Encoding: kind (1 byte) || field count (1 byte) || per field: length (u32 BE) || bytes. Text is UTF-8,
    versions are u64 BE. Length prefixes make the encoding unambiguous: no two contexts encode alike.
    Build one with `for_secret`, `for_transit`, `for_transit_key_material` or `for_fingerprint_key`.
    """

    kind: ContextKind
    fields: tuple[bytes, ...]
    encoded: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, ContextKind):
            raise errors.InvalidArgument("envelope context kind is unknown")
        if not 1 <= len(self.fields) <= 255:
            raise errors.InvalidArgument("envelope context needs 1..255 fields")
        parts = [bytes((self.kind, len(self.fields)))]
        for value in self.fields:
            if not isinstance(value, bytes):
                raise errors.InvalidArgument("envelope context fields must be bytes")
            if len(value) > MAX_CONTEXT_FIELD_BYTES:
                raise errors.LimitExceeded(
                    f"envelope context field is longer than MAX_CONTEXT_FIELD_BYTES={MAX_CONTEXT_FIELD_BYTES}"
                )
            parts.append(_U32.pack(len(value)))
            parts.append(value)
        object.__setattr__(self, "encoded", b"".join(parts))

    @classmethod
    def for_secret(cls, namespace: str, path: str, version: int) -> EnvelopeContext:
        """A stored secret version."""
        return cls(
            ContextKind.SECRET,
            (
                _text_field("namespace", namespace),
                _text_field("path", path),
                _version_field("version", version),
            ),
        )

    @classmethod
    def for_transit(cls, key_name: str, user_context: bytes) -> EnvelopeContext:
        """Data encrypted for an application under a named transit key, with its caller-chosen context."""
        if not isinstance(user_context, bytes):
            raise errors.InvalidArgument("transit context must be bytes")
        return cls(ContextKind.TRANSIT, (_text_field("key name", key_name), user_context))

    @classmethod
    def for_transit_key_material(cls, key_name: str, version: int) -> EnvelopeContext:
        """One version of a named transit key, stored sealed under the root KEK."""
        return cls(
            ContextKind.TRANSIT_KEY_MATERIAL,
            (_text_field("key name", key_name), _version_field("version", version)),
        )

    @classmethod
    def for_fingerprint_key(cls, version: int) -> EnvelopeContext:
        """One version of the key under which the service fingerprints stored values (crypto/fingerprint.py)."""
        return cls(ContextKind.FINGERPRINT_KEY, (_version_field("version", version),))

    def __repr__(self) -> str:
        sizes = ", ".join(str(len(f)) for f in self.fields)
        return f"EnvelopeContext(kind={self.kind.name}, field_bytes=[{sizes}])"


@dataclass(frozen=True, slots=True)
class EnvelopeHeader:
    """The parsed header of an envelope. Holds no secret: the wrapped key is ciphertext."""

    format_version: int
    key_id: str
    key_version: int
    wrapped_key: bytes
    payload_offset: int

    def __repr__(self) -> str:
        return (
            f"EnvelopeHeader(format_version={self.format_version}, key_id={self.key_id!r}, "
            f"key_version={self.key_version}, wrapped_key=<{len(self.wrapped_key)} bytes>, "
            f"payload_offset={self.payload_offset})"
        )


def _is_key_id(raw: bytes) -> bool:
    return _KEY_ID.fullmatch(raw) is not None


def _header_prefix(key_id: bytes, key_version: int) -> bytes:
    return bytes((FORMAT_VERSION, len(key_id))) + key_id + _U32.pack(key_version)


def _dek_aad(prefix: bytes, context: EnvelopeContext) -> bytes:
    return b"".join((DEK_AAD_LABEL, prefix, context.encoded))


def _payload_aad(context: EnvelopeContext) -> bytes:
    return b"".join((PAYLOAD_AAD_LABEL, bytes((FORMAT_VERSION,)), context.encoded))


def generate_data_key(random: aead.RandomBytes = os.urandom) -> SecretBytes:
    """A fresh AES-256 data key."""
    return aead.random_key(random)


def parse_header(envelope: bytes | memoryview) -> EnvelopeHeader:
    """Read and bound-check an envelope's header. Anything malformed raises `DecryptionFailed`."""
    size = len(envelope)
    if not MIN_ENVELOPE_BYTES <= size <= MAX_ENVELOPE_BYTES or envelope[0] != FORMAT_VERSION:
        raise errors.DecryptionFailed()
    id_len = envelope[1]
    key_id = bytes(envelope[2 : 2 + id_len])
    pos = 2 + id_len
    if not _is_key_id(key_id) or size < pos + 6:
        raise errors.DecryptionFailed()
    (key_version,) = _U32.unpack_from(envelope, pos)
    (wrapped_len,) = _U16.unpack_from(envelope, pos + 4)
    pos += 6
    payload_offset = pos + wrapped_len
    if (
        key_version < 1
        or not 1 <= wrapped_len <= MAX_WRAPPED_KEY_BYTES
        or size - payload_offset < aead.OVERHEAD_BYTES
    ):
        raise errors.DecryptionFailed()
    return EnvelopeHeader(
        format_version=FORMAT_VERSION,
        key_id=key_id.decode("ascii"),
        key_version=key_version,
        wrapped_key=bytes(envelope[pos:payload_offset]),
        payload_offset=payload_offset,
    )


def _wrap(kek: KeyEncryptionKey, data_key: SecretBytes, context: EnvelopeContext) -> bytes:
    """Wrap `data_key` and return the whole header (prefix, wrapped key length, wrapped key)."""
    try:
        key_id = kek.key_id.encode("ascii")
    except UnicodeEncodeError:
        key_id = b""
    if not _is_key_id(key_id):
        raise errors.KeyringError("key-encryption key id must be 1..255 printable ASCII bytes")
    for _ in range(_WRAP_ATTEMPTS):
        version = kek.primary_version()
        if not 1 <= version <= MAX_KEY_VERSION:
            raise errors.KeyringError(
                f"key-encryption key version {version} is outside [1, {MAX_KEY_VERSION}]"
            )
        prefix = _header_prefix(key_id, version)
        wrapped = kek.wrap(data_key, _dek_aad(prefix, context))
        if wrapped.key_id != kek.key_id or wrapped.key_version != version:
            continue
        if not 1 <= len(wrapped.blob) <= MAX_WRAPPED_KEY_BYTES:
            raise errors.KeyringError(
                f"wrapped data key is {len(wrapped.blob)} bytes, "
                f"over MAX_WRAPPED_KEY_BYTES={MAX_WRAPPED_KEY_BYTES}"
            )
        return b"".join((prefix, _U16.pack(len(wrapped.blob)), wrapped.blob))
    raise errors.KeyringError("key-encryption key kept changing version while wrapping; try again")


def _unwraps_for(kek: KeyEncryptionKey, key_id: str) -> bool:
    """Whether `kek` also unwraps for another key id: a chain (kek/chain.py) does for the earlier keys it
    holds while stored data moves to its primary."""
    find = getattr(kek, "unwrapper_for", None)
    return find is not None and find(key_id) is not None


def _unwrap(
    kek: KeyEncryptionKey, envelope: bytes | memoryview, context: EnvelopeContext
) -> tuple[EnvelopeHeader, SecretBytes]:
    header = parse_header(envelope)
    if header.key_id != kek.key_id and not _unwraps_for(kek, header.key_id):
        raise errors.DecryptionFailed()
    # The header prefix is version, key id and key version: everything before the wrapped key's length.
    prefix = bytes(envelope[: header.payload_offset - 2 - len(header.wrapped_key)])
    wrapped = WrappedKey(header.key_id, header.key_version, header.wrapped_key)
    data_key = kek.unwrap(wrapped, _dek_aad(prefix, context))
    if len(data_key) != aead.KEY_BYTES:
        raise errors.DecryptionFailed()
    return header, data_key


def seal(
    kek: KeyEncryptionKey,
    plaintext: bytes | SecretBytes,
    context: EnvelopeContext,
    *,
    random: aead.RandomBytes = os.urandom,
) -> bytes:
    """Encrypt `plaintext` for the record `context` under a fresh data key wrapped by `kek`."""
    raw = plaintext.reveal() if isinstance(plaintext, SecretBytes) else plaintext
    if len(raw) > MAX_PLAINTEXT_BYTES:
        raise errors.LimitExceeded(f"plaintext is larger than MAX_PLAINTEXT_BYTES={MAX_PLAINTEXT_BYTES}")
    data_key = generate_data_key(random)
    header = _wrap(kek, data_key, context)
    return aead.seal(data_key, raw, _payload_aad(context), random=random, prefix=header)


def open_envelope(kek: KeyEncryptionKey, envelope: bytes, context: EnvelopeContext) -> SecretBytes:
    """Decrypt an envelope sealed for `context`. Every failure raises the same `DecryptionFailed`."""
    header, data_key = _unwrap(kek, envelope, context)
    payload = memoryview(envelope)[header.payload_offset :]
    return SecretBytes(aead.open(data_key, payload, _payload_aad(context)))


def rewrap(kek: KeyEncryptionKey, envelope: bytes, context: EnvelopeContext) -> bytes:
    """Re-wrap the envelope's data key under `kek`'s primary version; the payload bytes stay as they are.

    The data key is always unwrapped first, so a tampered header or a wrong context fails here too. An
    envelope already at the primary key id and version comes back unchanged; one under an earlier key a chain
    still holds moves to the primary.
    """
    header, data_key = _unwrap(kek, envelope, context)
    if header.key_id == kek.key_id and header.key_version == kek.primary_version():
        return envelope
    new_header = _wrap(kek, data_key, context)
    return b"".join((new_header, memoryview(envelope)[header.payload_offset :]))


def rewrap_many(
    kek: KeyEncryptionKey, items: Sequence[tuple[bytes, EnvelopeContext]]
) -> list[bytes | errors.DecryptionFailed]:
    """`rewrap` for many envelopes at once: each result is the rewrapped envelope, the envelope itself when it
    is already under the primary key id and version, or a `DecryptionFailed` for one that does not open.

    A KEK that offers `unwrap_many` and `wrap_many` (Transit, through `batch_input`; the cache and chain pass
    them on) gets one batched call for all unwraps and one for all wraps instead of two calls per envelope.
    """
    results: list[bytes | errors.DecryptionFailed | None] = [None] * len(items)
    pending: list[tuple[int, EnvelopeHeader]] = []
    unwraps: list[tuple[WrappedKey, bytes]] = []
    for i, (envelope, context) in enumerate(items):
        try:
            header = parse_header(envelope)
        except errors.DecryptionFailed as exc:
            results[i] = exc
            continue
        if header.key_id != kek.key_id and not _unwraps_for(kek, header.key_id):
            results[i] = errors.DecryptionFailed()
            continue
        prefix = bytes(envelope[: header.payload_offset - 2 - len(header.wrapped_key)])
        pending.append((i, header))
        unwraps.append((WrappedKey(header.key_id, header.key_version, header.wrapped_key), _dek_aad(prefix, context)))
    primary = kek.primary_version()
    to_wrap: list[tuple[int, EnvelopeHeader, SecretBytes]] = []
    for (i, header), key in zip(pending, _unwrap_all(kek, unwraps), strict=True):
        if isinstance(key, errors.DecryptionFailed) or len(key) != aead.KEY_BYTES:
            results[i] = errors.DecryptionFailed()
        elif header.key_id == kek.key_id and header.key_version == primary:
            results[i] = items[i][0]
        else:
            to_wrap.append((i, header, key))
    headers = _wrap_all(kek, [(key, items[i][1]) for i, _, key in to_wrap])
    for (i, header, _), new_header in zip(to_wrap, headers, strict=True):
        results[i] = b"".join((new_header, memoryview(items[i][0])[header.payload_offset :]))
    return [r if r is not None else errors.DecryptionFailed() for r in results]


def _unwrap_all(
    kek: KeyEncryptionKey, items: list[tuple[WrappedKey, bytes]]
) -> list[SecretBytes | errors.DecryptionFailed]:
    many = getattr(kek, "unwrap_many", None)
    if many is not None and items:
        out: list[SecretBytes | errors.DecryptionFailed] = many(items)
        if len(out) == len(items):
            return out
        raise errors.KeyringError("key-encryption key answered a batch with the wrong number of keys")
    results: list[SecretBytes | errors.DecryptionFailed] = []
    for wrapped, aad in items:
        try:
            results.append(kek.unwrap(wrapped, aad))
        except errors.DecryptionFailed as exc:
            results.append(exc)
    return results


def _wrap_all(kek: KeyEncryptionKey, items: list[tuple[SecretBytes, EnvelopeContext]]) -> list[bytes]:
    """Headers for each data key under the primary version; batched where the KEK can, one by one (with
    `_wrap`'s retry on a moving version) for whatever the batch could not do."""
    many = getattr(kek, "wrap_many", None)
    if many is None or not items:
        return [_wrap(kek, key, context) for key, context in items]
    key_id = kek.key_id.encode("ascii", errors="replace")
    version = kek.primary_version()
    if not _is_key_id(key_id) or not 1 <= version <= MAX_KEY_VERSION:
        return [_wrap(kek, key, context) for key, context in items]  # which raises the precise error
    prefix = _header_prefix(key_id, version)
    wrapped: list[WrappedKey] = many([(key, _dek_aad(prefix, context)) for key, context in items])
    headers = []
    for (key, context), w in zip(items, wrapped, strict=True):
        if w.key_id != kek.key_id or w.key_version != version or not 1 <= len(w.blob) <= MAX_WRAPPED_KEY_BYTES:
            headers.append(_wrap(kek, key, context))
        else:
            headers.append(b"".join((prefix, _U16.pack(len(w.blob)), w.blob)))
    return headers
