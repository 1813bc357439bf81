"""`write_atomically`: old content or new, never torn; the final mode from the start; no temporary files left."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretsvc import atomicfile
from secretsvc.atomicfile import write_atomically


@pytest.fixture(autouse=True)
def _tight_umask() -> Iterator[None]:
    old = os.umask(0o077)  # tighter than the 0644 a caller may ask for: the mode must still come out exact
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_writes_the_data_with_the_mode_asked_for(tmp_path: Path) -> None:
    write_atomically(tmp_path / "secret", b"s3cret")
    write_atomically(tmp_path / "public", b"cert", mode=0o644)
    assert (tmp_path / "secret").read_bytes() == b"s3cret"
    assert (_mode(tmp_path / "secret"), _mode(tmp_path / "public")) == (0o600, 0o644)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["public", "secret"]


def test_overwrite_replaces_and_without_it_an_existing_file_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "f"
    write_atomically(path, b"old")
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new"
    with pytest.raises(FileExistsError):
        write_atomically(path, b"newer", overwrite=False)
    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_without_overwrite_even_a_dangling_link_is_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "f").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(FileExistsError):
        write_atomically(tmp_path / "f", b"x", overwrite=False)
    assert not (tmp_path / "elsewhere").exists()


def test_overwrite_replaces_a_link_rather_than_writing_through_it(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"target")
    (tmp_path / "f").symlink_to(target)
    write_atomically(tmp_path / "f", b"x")
    assert not (tmp_path / "f").is_symlink()
    assert target.read_bytes() == b"target"


def test_the_published_file_is_whole_and_private_before_it_has_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[bytes, int]] = []
    real_replace = os.replace

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        seen.append((Path(src).read_bytes(), _mode(Path(src))))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    write_atomically(tmp_path / "f", b"all of it")
    assert seen == [(b"all of it", 0o600)]


def test_a_failed_write_keeps_the_old_content_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f"
    write_atomically(path, b"old")

    def fail(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="Input/output error"):
        write_atomically(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_the_directory_is_synced_after_the_name_appears(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[tuple[Path, bool]] = []
    monkeypatch.setattr(atomicfile, "fsync_dir", lambda d: synced.append((d, (tmp_path / "f").exists())))
    write_atomically(tmp_path / "f", b"x", overwrite=False)
    assert synced == [(tmp_path, True)]


def test_a_relative_path_is_written_in_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_atomically(Path("report.json"), b"{}", mode=0o644)
    assert (tmp_path / "report.json").read_bytes() == b"{}"


def test_a_missing_directory_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomically(tmp_path / "missing" / "f", b"x")
