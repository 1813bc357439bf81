"""Known-answer vectors for envelope format v1: builds them, and regenerates envelope_v1.json when run.

    .venv/bin/python -m tests.vectors.generate_envelope_vectors

Every key and nonce is a test value derived by hashing a label, so the file is reproducible byte for byte
and holds nothing credential-shaped. Each valid vector lists the randomness its seal drew, in draw order
(data key, wrap nonce, payload nonce), so another implementation can reproduce it exactly. Invalid vectors
are envelopes that must fail with DecryptionFailed under the same keyring and the listed context.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from secretsvc.crypto import envelope
from secretsvc.crypto.envelope import EnvelopeContext
from secretsvc.crypto.keyset import Keyset
from secretsvc.crypto.secretbytes import SecretBytes

VECTOR_FILE = Path(__file__).with_name("envelope_v1.json")
KEY_ID = "local:7e57000000000001"
KEK_VERSIONS = (1, 2)


def derive(label: str, n: int) -> bytes:
    """`n` test bytes from a label (SHA-256 in counter mode)."""
    out = b""
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"secretsvc test vector|{label}|{counter}".encode()).digest()
        counter += 1
    return out[:n]


class FixedRandom:
    """Hands out pre-chosen chunks in order; a draw of an unexpected size is a bug in the caller."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = list(chunks)

    def __call__(self, n: int, /) -> bytes:
        chunk = self._chunks.pop(0)
        if len(chunk) != n:
            raise AssertionError(f"expected a draw of {len(chunk)} bytes, got a request for {n}")
        return chunk

    def exhausted(self) -> bool:
        return not self._chunks


def kek_key(version: int) -> bytes:
    return derive(f"kek version {version}", 32)


def keyset(up_to: int, random: Callable[[int], bytes] | None = None) -> Keyset:
    versions = [(v, 1_700_000_000.0 + v, SecretBytes(kek_key(v))) for v in KEK_VERSIONS if v <= up_to]
    if random is None:
        return Keyset(KEY_ID, versions)
    return Keyset(KEY_ID, versions, random=random)


def context_from_json(doc: dict[str, Any]) -> EnvelopeContext:
    kind = doc["kind"]
    if kind == "secret":
        return EnvelopeContext.for_secret(doc["namespace"], doc["path"], doc["version"])
    if kind == "transit":
        return EnvelopeContext.for_transit(doc["key_name"], bytes.fromhex(doc["user_context"]))
    if kind == "transit_key_material":
        return EnvelopeContext.for_transit_key_material(doc["key_name"], doc["version"])
    raise ValueError(f"unknown context kind {kind!r}")


_VALID: list[tuple[str, int, dict[str, Any], bytes]] = [
    (
        "secret, empty plaintext",
        1,
        {"kind": "secret", "namespace": "default", "path": "db/password", "version": 1},
        b"",
    ),
    (
        "secret, short text",
        2,
        {"kind": "secret", "namespace": "team-a", "path": "app/config", "version": 7},
        b"not a real secret, only test data",
    ),
    (
        "secret, unicode path",
        2,
        {"kind": "secret", "namespace": "ns", "path": "caf\u00e9/\u5bc6", "version": 3},
        derive("plaintext unicode", 48),
    ),
    (
        "secret, large version",
        1,
        {"kind": "secret", "namespace": "", "path": "p", "version": 2**63 - 1},
        derive("plaintext large version", 5),
    ),
    (
        "transit, empty user context",
        2,
        {"kind": "transit", "key_name": "orders", "user_context": ""},
        derive("plaintext transit", 300),
    ),
    (
        "transit, with user context",
        2,
        {"kind": "transit", "key_name": "orders", "user_context": "00ff10"},
        b"transit payload",
    ),
    (
        "transit key material",
        1,
        {"kind": "transit_key_material", "key_name": "orders", "version": 2},
        derive("plaintext key material", 32),
    ),
]


def _valid_vector(name: str, kek_version: int, ctx_doc: dict[str, Any], plaintext: bytes) -> dict[str, Any]:
    data_key = derive(f"{name}|data key", 32)
    wrap_nonce = derive(f"{name}|wrap nonce", 12)
    payload_nonce = derive(f"{name}|payload nonce", 12)
    random = FixedRandom([data_key, wrap_nonce, payload_nonce])
    ctx = context_from_json(ctx_doc)
    sealed = envelope.seal(keyset(kek_version, random), plaintext, ctx, random=random)
    assert random.exhausted()
    return {
        "name": name,
        "valid": True,
        "kek_version": kek_version,
        "context": ctx_doc,
        "context_encoding": ctx.encoded.hex(),
        "plaintext": plaintext.hex(),
        "randomness": {
            "data_key": data_key.hex(),
            "wrap_nonce": wrap_nonce.hex(),
            "payload_nonce": payload_nonce.hex(),
        },
        "envelope": sealed.hex(),
    }


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def _invalid_vectors(base: dict[str, Any]) -> list[dict[str, Any]]:
    env = bytes.fromhex(base["envelope"])
    ctx = base["context"]
    header = envelope.parse_header(env)
    id_len = len(header.key_id)
    version_at = 2 + id_len
    wrapped_len_at = version_at + 4
    payload = header.payload_offset
    other_kek = struct.pack(">B", len("local:7e57000000000002")) + b"local:7e57000000000002"

    def case(name: str, data: bytes, context: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"name": name, "valid": False, "context": context or ctx, "envelope": data.hex()}

    return [
        case("empty envelope", b""),
        case("format version 2", b"\x02" + env[1:]),
        case("format version 0", b"\x00" + env[1:]),
        case("key id length zero", env[:1] + b"\x00" + env[2:]),
        case("key id byte changed", _flip(env, 2)),
        case("key id of another keyring", env[:1] + other_kek + env[2 + id_len :]),
        case(
            "key version changed to another present version",
            env[:version_at] + struct.pack(">I", 1) + env[version_at + 4 :],
        ),
        case("key version zero", env[:version_at] + struct.pack(">I", 0) + env[version_at + 4 :]),
        case("key version unknown", env[:version_at] + struct.pack(">I", 9) + env[version_at + 4 :]),
        case("wrapped key length zero", env[:wrapped_len_at] + b"\x00\x00" + env[wrapped_len_at + 2 :]),
        case(
            "wrapped key length over the limit",
            env[:wrapped_len_at]
            + struct.pack(">H", envelope.MAX_WRAPPED_KEY_BYTES + 1)
            + env[wrapped_len_at + 2 :],
        ),
        case(
            "wrapped key length past the end", env[:wrapped_len_at] + b"\xff\xff" + env[wrapped_len_at + 2 :]
        ),
        case("wrapped key byte changed", _flip(env, wrapped_len_at + 2 + 5)),
        case("payload nonce byte changed", _flip(env, payload)),
        case("ciphertext byte changed", _flip(env, payload + 12)),
        case("tag byte changed", _flip(env, len(env) - 1)),
        case("last byte removed", env[:-1]),
        case("payload removed", env[:payload]),
        case("byte appended", env + b"\x00"),
        case("other path", env, {**ctx, "path": ctx["path"] + "x"}),
        case("other namespace", env, {**ctx, "namespace": ctx["namespace"] + "x"}),
        case("other version", env, {**ctx, "version": ctx["version"] + 1}),
        case(
            "other kind of context",
            env,
            {"kind": "transit_key_material", "key_name": ctx["path"], "version": ctx["version"]},
        ),
    ]


def build() -> dict[str, Any]:
    valid = [_valid_vector(*spec) for spec in _VALID]
    transit = next(v for v in valid if v["name"] == "transit, with user context")
    invalid = _invalid_vectors(valid[1])
    invalid.append(
        {
            "name": "transit, other user context",
            "valid": False,
            "context": {**transit["context"], "user_context": "00ff11"},
            "envelope": transit["envelope"],
        }
    )
    invalid.append(
        {
            "name": "transit, other key name",
            "valid": False,
            "context": {**transit["context"], "key_name": "orders2"},
            "envelope": transit["envelope"],
        }
    )
    return {
        "description": (
            "secretsvc envelope format v1 known-answer vectors (docs/envelope-format.md); test keys only"
        ),
        "key_id": KEY_ID,
        "kek_keys": {str(v): kek_key(v).hex() for v in KEK_VERSIONS},
        "vectors": valid + invalid,
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=True) + "\n"


if __name__ == "__main__":
    VECTOR_FILE.write_text(render(), encoding="utf-8")
