"""`Pkcs11Kek` against a real SoftHSM2 token: AES-GCM wrapping inside the token with bound associated data,
versions as labels, rotation, the session pool's bound, and the errors for a wrong PIN or a missing token."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import pkcs11
import pytest
from pkcs11 import Attribute, ObjectClass

from secretsvc import errors
from secretsvc.crypto import envelope
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.kek.base import WrappedKey
from secretsvc.kek.pkcs11 import WRAPPED_BYTES, Pkcs11Kek, Pkcs11Settings
from tests.hsmkit import SoftHsm, make_softhsm

_labels = itertools.count(1)
AAD = b"secretsvc.dek.v1|test-record"


def _settings(softhsm: SoftHsm, label: str | None = None, **kw: object) -> Pkcs11Settings:
    return Pkcs11Settings(
        module=Path(softhsm.module),
        token_label=softhsm.token_label,
        key_label=label or f"kek-{os.getpid()}-{next(_labels)}",
        pin_file=softhsm.pin_file,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def kek(softhsm: SoftHsm) -> Pkcs11Kek:
    return Pkcs11Kek.open(_settings(softhsm))


def _key_objects(softhsm: SoftHsm, label: str) -> list[dict[str, object]]:
    token = pkcs11.lib(softhsm.module).get_token(token_label=softhsm.token_label)
    with token.open(rw=True) as session:
        return [
            {"label": o[Attribute.LABEL], "sensitive": o[Attribute.SENSITIVE], "extractable": o[Attribute.EXTRACTABLE]}
            for o in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})
            if str(o[Attribute.LABEL]).startswith(label + ".")
        ]


def test_first_open_generates_version_1_inside_the_token_unextractable(softhsm: SoftHsm, kek: Pkcs11Kek) -> None:
    label = kek.key_id.rsplit("/", 1)[1]
    assert kek.key_id == f"pkcs11:{softhsm.token_label}/{label}"
    assert kek.primary_version() == 1
    assert _key_objects(softhsm, label) == [{"label": f"{label}.v1", "sensitive": True, "extractable": False}]


def test_wrap_and_unwrap_with_associated_data(kek: Pkcs11Kek) -> None:
    key = SecretBytes(os.urandom(32))
    wrapped = kek.wrap(key, AAD)
    assert wrapped.key_version == 1 and len(wrapped.blob) == WRAPPED_BYTES
    assert kek.unwrap(wrapped, AAD) == key
    # Each wrap draws a fresh IV from the token.
    assert kek.wrap(key, AAD).blob[:12] != wrapped.blob[:12]


def test_wrong_aad_tampering_and_foreign_wraps_fail_as_decryption_failed(softhsm: SoftHsm, kek: Pkcs11Kek) -> None:
    wrapped = kek.wrap(SecretBytes(os.urandom(32)), AAD)
    with pytest.raises(errors.DecryptionFailed):
        kek.unwrap(wrapped, AAD + b"x")
    for i in (0, 20, WRAPPED_BYTES - 1):
        blob = bytearray(wrapped.blob)
        blob[i] ^= 1
        with pytest.raises(errors.DecryptionFailed):
            kek.unwrap(WrappedKey(wrapped.key_id, 1, bytes(blob)), AAD)
    with pytest.raises(errors.DecryptionFailed):
        kek.unwrap(WrappedKey(wrapped.key_id, 9, wrapped.blob), AAD)  # no such version
    with pytest.raises(errors.DecryptionFailed):
        kek.unwrap(WrappedKey(wrapped.key_id, 1, wrapped.blob[:-1]), AAD)
    other = Pkcs11Kek.open(_settings(softhsm))
    with pytest.raises(errors.DecryptionFailed):
        other.unwrap(WrappedKey(other.key_id, 1, wrapped.blob), AAD)  # another key in the same token
    # The session that saw the failures is still good.
    assert len(kek.unwrap(wrapped, AAD)) == 32


def test_rotation_adds_a_label_and_older_versions_still_unwrap(softhsm: SoftHsm, kek: Pkcs11Kek) -> None:
    key = SecretBytes(os.urandom(32))
    old = kek.wrap(key, AAD)
    assert kek.rotate() == 2
    assert [v.version for v in kek.versions()] == [1, 2]
    new = kek.wrap(key, AAD)
    assert new.key_version == 2 and kek.unwrap(new, AAD) == key
    assert kek.unwrap(old, AAD) == key
    label = kek.key_id.rsplit("/", 1)[1]
    assert sorted(str(o["label"]) for o in _key_objects(softhsm, label)) == [f"{label}.v1", f"{label}.v2"]
    # A second server on the same token sees the rotation when it meets a version it did not know.
    again = Pkcs11Kek.open(_settings(softhsm, label))
    assert again.primary_version() == 2
    third_version = again.rotate()
    assert kek.unwrap(again.wrap(key, AAD), AAD) == key and kek.primary_version() == third_version


def test_envelopes_seal_open_and_rewrap_through_the_token(kek: Pkcs11Kek) -> None:
    ctx = envelope.EnvelopeContext.for_secret("ns", "p", 3)
    sealed = envelope.seal(kek, b"value", ctx)
    assert envelope.open_envelope(kek, sealed, ctx).reveal() == b"value"
    kek.rotate()
    moved = envelope.rewrap(kek, sealed, ctx)
    assert envelope.parse_header(moved).key_version == 2
    assert envelope.open_envelope(kek, moved, ctx).reveal() == b"value"


def test_the_session_pool_is_bounded_and_reused(softhsm: SoftHsm) -> None:
    kek = Pkcs11Kek.open(_settings(softhsm, pool_size=2, acquire_timeout_seconds=0.3))
    wrapped = kek.wrap(SecretBytes(os.urandom(32)), AAD)
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                kek.unwrap(wrapped, AAD)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert kek.pool.opened <= 2
    # A session held (and with it the module, see _MODULE_LOCK): the next caller waits its 0.3 s, then is told
    # to retry.
    with kek.pool.session(), pytest.raises(errors.KekUnavailable, match="busy"):
        kek.unwrap(wrapped, AAD)
    kek.check_reachable()
    kek.close()


def test_wrong_pin_missing_token_and_bad_labels_are_refused_at_open(softhsm: SoftHsm, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong-pin"
    fd = os.open(wrong, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("0" * 9 + "\n")
    good = _settings(softhsm)
    # In a process of its own with a token of its own: login is per process and token, so a token this process
    # is already logged in to takes any PIN, and SoftHSM lists only the tokens it found at initialisation.
    other = make_softhsm(tmp_path / "hsm", "pin-check", random.Random(5))
    script = (
        "import sys; from pathlib import Path; from secretsvc.kek.pkcs11 import Pkcs11Kek, Pkcs11Settings\n"
        "try:\n"
        f"    Pkcs11Kek.open(Pkcs11Settings(Path({other.module!r}), 'pin-check', 'k', Path({str(wrong)!r})))\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    env = {**os.environ, **other.env()}
    out = subprocess.run(
        [sys.executable, "-c", script], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.startswith("KeyringError") and "PIN" in out.stdout, out.stdout + out.stderr
    assert "000000000" not in out.stdout
    with pytest.raises(errors.KeyringError, match="no PKCS#11 token"):
        Pkcs11Kek.open(Pkcs11Settings(good.module, "no-such-token", good.key_label, good.pin_file))
    with pytest.raises(errors.KeyringError, match="holds no key"):
        Pkcs11Kek.open(good, create=False)
    with pytest.raises(errors.ConfigError):
        Pkcs11Settings(good.module, good.token_label, "bad label/with slash", good.pin_file)


def test_a_broken_session_is_unavailable_then_replaced(softhsm: SoftHsm) -> None:
    kek = Pkcs11Kek.open(_settings(softhsm, pool_size=1))
    key = SecretBytes(os.urandom(32))
    wrapped = kek.wrap(key, AAD)
    with kek.pool.session() as pooled:
        pooled.session.close()  # the session dies under the pool, as when a network HSM drops it
    with pytest.raises(errors.KekUnavailable, match="unwrap"):
        kek.unwrap(wrapped, AAD)
    opened = kek.pool.opened
    assert kek.unwrap(wrapped, AAD) == key  # a fresh session, logged in again if need be
    assert kek.pool.opened == opened + 1
