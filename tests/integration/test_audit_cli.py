"""`secretsvc audit verify` and `audit hash` as scripts run them: exit codes, what they print, what they read."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from secretsvc.audit.files import rotation_set
from secretsvc.audit.keys import HMAC_KEY_FILE, PUBLIC_KEY_FILE, AuditKeys
from secretsvc.audit.writer import AuditLog
from tests.integration.serverproc import cli_command
from tests.unit.audit.support import event


def _audit(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cli_command("audit", *args), input=stdin, capture_output=True, timeout=60, check=False)
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), result.stderr.decode())


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory as the server leaves it: keys, and a rotated log closed cleanly."""
    keys = AuditKeys.load_or_create(tmp_path)
    log = AuditLog.open(tmp_path / "audit" / "audit.log", keys, checkpoint_every=10, rotate_bytes=4096,
                        hmac_paths=True, background=False)
    for i in range(30):
        log.write(event(i, resource="payments/db/password" if i % 3 == 0 else None))
    log.close()
    return tmp_path


def _files(data_dir: Path) -> list[Path]:
    return rotation_set(data_dir / "audit" / "audit.log")


def _pub(data_dir: Path) -> str:
    return str(data_dir / PUBLIC_KEY_FILE)


def test_an_intact_log_exits_0_given_a_directory(data_dir: Path) -> None:
    result = _audit("verify", "--public-key", _pub(data_dir), str(data_dir / "audit"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("intact: 30 events")
    assert "closed cleanly" in result.stdout


def test_an_intact_log_exits_0_given_files_in_order(data_dir: Path) -> None:
    files = _files(data_dir)
    assert len(files) > 2
    result = _audit("verify", "--public-key", _pub(data_dir), *map(str, files))
    assert result.returncode == 0, result.stderr


def test_json_output_for_scripts(data_dir: Path) -> None:
    result = _audit("verify", "--format", "json", "--public-key", _pub(data_dir), str(data_dir / "audit"))
    report = json.loads(result.stdout)
    assert report["intact"] is True and report["events"] == 30 and report["closed_cleanly"] is True
    assert report["problem"] is None and report["unsigned"] == 0 and report["starts_at_genesis"] is True


def test_a_tampered_log_exits_1_and_names_the_first_bad_record(data_dir: Path) -> None:
    files = _files(data_dir)
    target = files[1]
    lines = target.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"code":"OK"', b'"code":"NOT_FOUND"').replace(b'"outcome":"ok"', b'"outcome":"error"')
    target.write_bytes(b"".join(lines))
    result = _audit("verify", "--public-key", _pub(data_dir), str(data_dir / "audit"))
    assert result.returncode == 1
    assert result.stdout.startswith(f"TAMPERED: {target}:3 (seq ")
    problem = json.loads(_audit("verify", "--format", "json", "--public-key", _pub(data_dir),
                                str(data_dir / "audit")).stdout)["problem"]
    assert problem["file"] == str(target) and problem["line"] == 3 and problem["kind"] == "chain"


def test_a_deleted_rotated_file_exits_1(data_dir: Path) -> None:
    _files(data_dir)[1].unlink()
    result = _audit("verify", "--public-key", _pub(data_dir), str(data_dir / "audit"))
    assert result.returncode == 1 and "missing" in result.stdout


def test_an_unsigned_tail_is_reported_and_require_closed_fails_it(data_dir: Path) -> None:
    active = data_dir / "audit" / "audit.log"
    lines = active.read_bytes().splitlines(keepends=True)
    active.write_bytes(b"".join(lines[:-1]))  # the shutdown checkpoint cut off
    result = _audit("verify", "--public-key", _pub(data_dir), str(data_dir / "audit"))
    assert result.returncode == 0, result.stderr
    assert "unsigned:" in result.stdout or "does not end with a shutdown checkpoint" in result.stdout
    strict = _audit("verify", "--require-closed", "--public-key", _pub(data_dir), str(data_dir / "audit"))
    assert strict.returncode == 1 and "--require-closed" in strict.stderr


def test_the_wrong_public_key_exits_2(data_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    AuditKeys.load_or_create(other)
    result = _audit("verify", "--public-key", str(other / PUBLIC_KEY_FILE), str(data_dir / "audit"))
    assert result.returncode == 2 and "wrong key" in result.stderr


@pytest.mark.parametrize("case", ["missing-file", "not-a-key", "no-args", "empty-dir", "private-key-as-public"])
def test_usage_errors_exit_2(data_dir: Path, tmp_path: Path, case: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.pub").write_text("hello")
    args = {
        "missing-file": ["--public-key", _pub(data_dir), str(tmp_path / "nope.log")],
        "not-a-key": ["--public-key", str(tmp_path / "junk.pub"), str(data_dir / "audit")],
        "no-args": ["--public-key", _pub(data_dir)],
        "empty-dir": ["--public-key", _pub(data_dir), str(tmp_path / "empty")],
        "private-key-as-public": ["--public-key", str(data_dir / "audit-signing.key"), str(data_dir / "audit")],
    }[case]
    result = _audit("verify", *args)
    assert result.returncode == 2
    assert result.stdout == ""


def test_hash_reads_the_value_from_stdin_and_finds_it_in_the_log(data_dir: Path) -> None:
    result = _audit("hash", "--key-file", str(data_dir / HMAC_KEY_FILE), stdin=b"payments/db/password\n")
    assert result.returncode == 0, result.stderr
    value = result.stdout.strip()
    assert value.startswith("hmac-sha256:")
    everything = b"".join(f.read_bytes() for f in _files(data_dir))
    assert b"payments/db/password" not in everything
    assert everything.count(f'"resource":"{value}"'.encode()) == 10


@pytest.mark.parametrize(("stdin", "args", "message"), [
    (b"", [], "no value on stdin"),
    (b"\xff\xfe", [], "not UTF-8"),
    (b"x" * 70_000, [], "MAX_HASH_INPUT_BYTES"),
    (b"a/b", ["--key-file", "/nonexistent/audit-hmac.key"], "cannot read"),
])
def test_hash_usage_errors_exit_2(data_dir: Path, stdin: bytes, args: list[str], message: str) -> None:
    result = _audit("hash", *(args or ["--key-file", str(data_dir / HMAC_KEY_FILE)]), stdin=stdin)
    assert result.returncode == 2 and message in result.stderr


def test_help_names_the_exit_codes() -> None:
    result = _audit("verify", "--help")
    assert result.returncode == 0 and "0 intact, 1 tampered" in result.stdout
