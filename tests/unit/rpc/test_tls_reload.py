"""Certificates, keys and the client CA reload when their files change; a bad new set keeps the old one.

Each check is a real handshake on a new connection. Which server certificate answered is told by which CA
the client must trust: the replacement comes from a second CA.
"""

from __future__ import annotations

import logging
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from secretsvc.crypto import pki
from secretsvc.errors import ConfigError
from secretsvc.rpc import tls
from tests.fakecreds import broken_pem
from tests.tlskit import SERVING, DevPki, credentials, health_status, make_pki, write_issued
from tests.unit.rpc.tls_support import server_config, serving


@pytest.fixture(autouse=True)
def _check_on_every_handshake(monkeypatch: pytest.MonkeyPatch) -> None:
    """The once-a-second rate limit is tested on its own below; here every handshake looks at the files."""
    monkeypatch.setattr(tls, "RELOAD_CHECK_INTERVAL_SECONDS", 0.0)


@pytest.fixture
def old(tmp_path: Path) -> DevPki:
    return make_pki(tmp_path / "old")


@pytest.fixture
def new(tmp_path: Path) -> DevPki:
    return make_pki(tmp_path / "new")


def _live(tmp_path: Path, source: DevPki) -> tuple[Path, Path]:
    """Copies of the server files at paths that stay the same while their contents change."""
    live = tmp_path / "live"
    live.mkdir(exist_ok=True)
    shutil.copy(source.server_cert, live / "tls.crt")
    shutil.copy(source.server_key, live / "tls.key")
    return live / "tls.crt", live / "tls.key"


def _rewrite_in_place(source: Path, target: Path) -> None:
    # Same inode, new contents: what `cp` over the file or an editor saving in place does.
    with target.open("r+b") as handle:
        handle.truncate(0)
        handle.write(source.read_bytes())


def _answers_as(target: str, expected: DevPki, other: DevPki) -> bool:
    return (health_status(target, credentials(expected.ca)) == SERVING
            and health_status(target, credentials(other.ca)) == "UNAVAILABLE")


def test_files_rewritten_in_place(tmp_path: Path, old: DevPki, new: DevPki) -> None:
    cert, key = _live(tmp_path, old)
    with serving(server_config(tmp_path, tls_cert=cert, tls_key=key)) as target:
        assert _answers_as(target, old, new)
        inode = cert.stat().st_ino
        _rewrite_in_place(new.server_key, key)
        _rewrite_in_place(new.server_cert, cert)
        assert cert.stat().st_ino == inode
        assert _answers_as(target, new, old)


def _kubernetes_mount(tmp_path: Path, source: DevPki, ca: Path | None = None) -> Path:
    """A directory laid out as the kubelet mounts a Secret: files -> ..data/file, ..data -> ..<timestamp>."""
    mount = tmp_path / "mount"
    mount.mkdir()
    _kubernetes_update(mount, source, "..2030_01_01_00_00_00.1", ca=ca)
    for name in ("tls.crt", "tls.key", "ca.crt"):
        (mount / name).symlink_to(Path("..data") / name)
    return mount


def _kubernetes_update(mount: Path, source: DevPki, version: str, ca: Path | None = None) -> None:
    """The kubelet's atomic update: write a new timestamped directory, then rename a symlink over ..data."""
    directory = mount / version
    directory.mkdir()
    shutil.copy(source.server_cert, directory / "tls.crt")
    shutil.copy(source.server_key, directory / "tls.key")
    shutil.copy(ca or source.ca, directory / "ca.crt")
    previous = os.readlink(mount / "..data") if (mount / "..data").is_symlink() else None
    (mount / "..data_tmp").symlink_to(version)
    os.rename(mount / "..data_tmp", mount / "..data")
    if previous is not None:
        shutil.rmtree(mount / previous)


def test_kubernetes_symlink_swap(tmp_path: Path, old: DevPki, new: DevPki) -> None:
    mount = _kubernetes_mount(tmp_path, old)
    config = server_config(tmp_path, tls_cert=mount / "tls.crt", tls_key=mount / "tls.key")
    with serving(config) as target:
        assert _answers_as(target, old, new)
        _kubernetes_update(mount, new, "..2030_02_01_00_00_00.2")
        assert _answers_as(target, new, old)


def test_the_client_ca_reloads_too(tmp_path: Path, old: DevPki, new: DevPki) -> None:
    mount = _kubernetes_mount(tmp_path, old)
    config = server_config(tmp_path, tls_cert=mount / "tls.crt", tls_key=mount / "tls.key",
                           client_ca=mount / "ca.crt")
    old_client, new_client = old.client("app"), new.client("app")
    with serving(config) as target:
        assert health_status(target, credentials(old.ca, *old_client)) == SERVING
        assert health_status(target, credentials(old.ca, *new_client)) == "UNAVAILABLE"
        # Same server certificate, a client CA that now trusts only the new CA's clients.
        _kubernetes_update(mount, old, "..2030_02_01_00_00_00.2", ca=new.ca)
        assert health_status(target, credentials(old.ca, *new_client)) == SERVING
        assert health_status(target, credentials(old.ca, *old_client)) == "UNAVAILABLE"


def _reload_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [str(getattr(r, "reason", "")) for r in caplog.records
            if r.name == "secretsvc.tls" and r.levelno == logging.WARNING]


@pytest.mark.parametrize("damage", ["garbage certificate", "key of another certificate", "expired certificate",
                                    "missing key", "garbage client CA"])
def test_a_bad_update_keeps_the_current_files_and_says_why(
    tmp_path: Path, old: DevPki, new: DevPki, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = _live(tmp_path, old)
    ca = tmp_path / "live" / "ca.crt"
    shutil.copy(old.ca, ca)
    config = server_config(tmp_path, tls_cert=cert, tls_key=key, client_ca=ca)
    client = credentials(old.ca, *old.client("app"))
    with serving(config) as target, caplog.at_level(logging.INFO, logger="secretsvc.tls"):
        assert health_status(target, client) == SERVING
        if damage == "garbage certificate":
            cert.write_bytes(broken_pem("CERTIFICATE", "not base64"))
            expected = "holds no PEM certificate"
        elif damage == "key of another certificate":
            _rewrite_in_place(new.server_key, key)
            expected = "does not belong to the certificate"
        elif damage == "expired certificate":
            write_issued(old.issue("server", name="late", now=pki.utc_now() - timedelta(days=9),
                                   validity=timedelta(days=2), ips=("127.0.0.1",)), cert, key)
            expected = "expired"
        elif damage == "missing key":
            key.unlink()
            expected = "cannot read TLS key file"
        else:
            ca.write_bytes(b"nothing here")
            expected = "holds no PEM certificate"
        for _ in range(3):  # logged once per change, however many handshakes see it
            assert health_status(target, client) == SERVING
        warnings = _reload_warnings(caplog)
        assert len(warnings) == 1 and expected in warnings[0], warnings

        # Fixing the files is picked up at the next handshake.
        shutil.copy(new.server_cert, cert)
        shutil.copy(new.server_key, key)
        shutil.copy(old.ca, ca)
        assert health_status(target, credentials(new.ca, *old.client("app"))) == SERVING
        assert any(r.getMessage() == "TLS certificates reloaded" for r in caplog.records)


# -- the fetcher on its own: the rate limit --------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_files_are_looked_at_once_per_interval(tmp_path: Path, old: DevPki, new: DevPki) -> None:
    cert, key = _live(tmp_path, old)
    clock = _Clock()
    fetch = tls.ReloadingCertificates(cert, key, None, monotonic=clock, interval=1.0)
    assert fetch() is None  # nothing changed, and too soon anyway
    shutil.copy(new.server_cert, cert)
    shutil.copy(new.server_key, key)
    clock.now += 0.5
    assert fetch() is None  # changed, but not looked at yet
    clock.now += 0.6
    assert fetch() is not None
    assert fetch.material.pair.chain.pem == new.server_cert.read_bytes()
    clock.now += 5
    assert fetch() is None  # the same files again


def test_a_check_never_raises_into_grpc(tmp_path: Path, old: DevPki, monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture) -> None:
    cert, key = _live(tmp_path, old)
    fetch = tls.ReloadingCertificates(cert, key, None, interval=0.0)

    def broken(*args: object) -> object:
        raise RuntimeError("simulated")

    monkeypatch.setattr(tls, "_signature", broken)
    with caplog.at_level(logging.ERROR, logger="secretsvc.tls"):
        assert fetch() is None
    assert "reload check failed" in caplog.text


def test_unusable_files_at_start_are_a_config_error(tmp_path: Path, old: DevPki, new: DevPki) -> None:
    with pytest.raises(ConfigError, match="does not belong"):
        tls.ReloadingCertificates(old.server_cert, new.server_key, None)
