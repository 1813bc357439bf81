"""Plain directories (source trees): only regular files are read, and nothing in the tree can block the scan.

A FIFO, socket, device or symbolic link in the tree is not content and is skipped without a warning. A file
that is swapped for a FIFO or a link between being listed and being opened is refused when opened (O_NOFOLLOW,
O_NONBLOCK, then fstat) and reported as "file.unreadable": what was listed was not read.
"""

from __future__ import annotations

import builtins
import os
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.model import Content, ScanWarning
from secretsvc.scan.pipeline import EXIT_FINDINGS, ScanOptions, scan
from secretsvc.scan.walk import walk_path
from tests import fakecreds

pytestmark = pytest.mark.timeout(60)
BLOCKED_AFTER_S = 10.0


@pytest.fixture
def tokens() -> list[str]:
    rng = random.Random(733)
    return [fakecreds.fake_github_token(rng) for _ in range(3)]


@pytest.fixture
def tree(tmp_path: Path, tokens: list[str]) -> Path:
    """A source tree with a FIFO, a link to /dev/zero, a link out of the tree and one real leak."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.env").write_text(f"TOKEN={tokens[1]}\n")
    root = tmp_path / "src"
    (root / "app").mkdir(parents=True)
    (root / "app" / ".env").write_text(f"GITHUB_TOKEN={tokens[0]}\n")
    os.mkfifo(root / "app" / "pipe")
    (root / "app" / "zero").symlink_to("/dev/zero")
    (root / "app" / "elsewhere.env").symlink_to(outside / "secret.env")
    return root


def walk_in_thread(root: Path, unblock: Callable[[], None]) -> tuple[list[Content], list[ScanWarning]]:
    """walk_path on another thread; if it is still running after BLOCKED_AFTER_S, `unblock` it and fail."""
    contents: list[Content] = []
    warnings: list[ScanWarning] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            contents.extend(walk_path(root, limits=ScanLimits(), on_warning=warnings.append))
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(BLOCKED_AFTER_S)
    blocked = thread.is_alive()
    if blocked:
        unblock()
        thread.join(BLOCKED_AFTER_S)
    assert not blocked, "the walk blocked opening a special file"
    if errors:
        raise errors[0]
    return contents, warnings


def release_fifo(path: Path) -> Callable[[], None]:
    def unblock() -> None:
        # A writer that opens and closes gives the blocked reader its end of file.
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))

    return unblock


def test_special_files_in_a_tree_are_skipped_and_the_scan_finishes(tree: Path, tokens: list[str]) -> None:
    contents, warnings = walk_in_thread(tree, release_fifo(tree / "app" / "pipe"))
    assert {c.path for c in contents} == {"app/.env"}
    assert warnings == []  # a FIFO or a link is not content: nothing was meant to be read from it
    report = scan(str(tree), ScanOptions())
    assert [f.path for f in report.findings] == ["app/.env"]
    assert report.warnings == () and report.complete
    assert report.exit_code == EXIT_FINDINGS


@pytest.fixture
def swap_on_open(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Callable[[], None]]]:
    """File name -> a swap run just before the first time the scanner opens a file of that name.

    That is the moment between listing a file (and any check on it) and opening it, whichever way the walk
    opens files (`open`, or `os.open` one path component at a time).
    """
    swaps: dict[str, Callable[[], None]] = {}
    real_os_open, real_open = os.open, builtins.open

    def swap(file: Any) -> None:
        if isinstance(file, (str, bytes, os.PathLike)):
            action = swaps.pop(os.path.basename(os.fsdecode(file)), None)
            if action is not None:
                action()

    def os_open(file: Any, *args: Any, **kwargs: Any) -> int:
        swap(file)
        return real_os_open(file, *args, **kwargs)

    def open_(file: Any, *args: Any, **kwargs: Any) -> Any:
        swap(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", open_)
    yield swaps


def test_a_file_swapped_for_a_fifo_after_listing_does_not_block(
    tree: Path, swap_on_open: dict[str, Callable[[], None]]
) -> None:
    victim = tree / "app" / "victim.txt"
    victim.write_text("listed as a regular file\n")

    def to_fifo() -> None:
        victim.unlink()
        os.mkfifo(victim)

    swap_on_open["victim.txt"] = to_fifo
    contents, warnings = walk_in_thread(tree, release_fifo(victim))
    assert not swap_on_open, "the walk never opened the file"
    assert {c.path for c in contents} == {"app/.env"}
    assert [(w.code, w.path) for w in warnings] == [("file.unreadable", "app/victim.txt")]
    assert "FIFO" in warnings[0].message


def test_a_file_swapped_for_a_link_out_of_the_tree_is_not_followed(
    tree: Path, tokens: list[str], swap_on_open: dict[str, Callable[[], None]]
) -> None:
    victim = tree / "app" / "victim.env"
    victim.write_text("listed as a regular file\n")
    outside = tree.parent / "outside" / "secret.env"

    def to_link() -> None:
        victim.unlink()
        victim.symlink_to(outside)

    swap_on_open["victim.env"] = to_link
    contents, warnings = walk_in_thread(tree, lambda: None)
    assert not swap_on_open, "the walk never opened the file"
    assert {c.path for c in contents} == {"app/.env"}
    assert not any(tokens[1].encode() in c.data for c in contents)
    assert [(w.code, w.path) for w in warnings] == [("file.unreadable", "app/victim.env")]
