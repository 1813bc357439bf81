"""PKCS#12 keystores (`.p12`, `.pfx`) in an image, framed as RFC 7292 lays them out, scanned end to end."""

from __future__ import annotations

import random
from pathlib import Path

from secretsvc.scan.model import ScanReport
from secretsvc.scan.pipeline import ScanOptions, scan
from tests import scanimages as si

KEY = b"k" * 32


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets + body


def _keystore(rng: random.Random, size: int = 1500) -> bytes:
    """A PFX as RFC 7292 frames it: version 3, then the authSafe ContentInfo (id-data, an OCTET STRING of
    random bytes standing in for the encrypted bags), then a MacData of random bytes."""
    id_data = _der(0x06, bytes.fromhex("2a864886f70d010701"))
    content_info = _der(0x30, id_data + _der(0xA0, _der(0x04, rng.randbytes(size))))
    mac_data = _der(0x30, rng.randbytes(60))
    return _der(0x30, _der(0x02, b"\x03") + content_info + mac_data)


def _scan(tmp_path: Path, files: dict[str, bytes]) -> ScanReport:
    image = si.build_image([[si.file(p, d) for p, d in files.items()]])
    archive = si.write_docker_archive(tmp_path / "img.tar", image)
    return scan(f"docker-archive:{archive}", ScanOptions(fingerprint_key=KEY))


def test_keystores_named_as_such_are_reported(tmp_path: Path) -> None:
    report = _scan(tmp_path, {
        "app/tls/server.p12": _keystore(random.Random(1)),
        "app/tls/client.pfx": _keystore(random.Random(2), size=200),
        "app/tls/nul-free.pfx": _nul_free_keystore(),  # read as text by the walker
    })  # fmt: skip
    found = {f.path for f in report.findings if f.rule_id == "pkcs12-keystore"}
    assert found == {"app/tls/server.p12", "app/tls/client.pfx", "app/tls/nul-free.pfx"}
    fingerprints = {f.fingerprint for f in report.findings if f.rule_id == "pkcs12-keystore"}
    assert len(fingerprints) == 3  # three keystores, three identities for baselines


def _nul_free_keystore() -> bytes:
    rng = random.Random(4)
    while b"\0" in (data := _keystore(rng, size=300)):
        pass
    return data


def test_other_files_and_impostors_are_not_keystores(tmp_path: Path) -> None:
    real = _keystore(random.Random(3))
    report = _scan(tmp_path, {
        "app/tls/server.der": real,  # the name does not say keystore: not this rule's business
        "app/tls/empty.p12": b"",
        "app/tls/text.p12": b"not a keystore, just text that someone named badly\n" * 10,
        "app/tls/random.pfx": bytes(range(256)) * 4,
    })  # fmt: skip
    assert [f.path for f in report.findings if f.rule_id == "pkcs12-keystore"] == []
