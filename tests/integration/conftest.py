from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.serverproc import ServerProcess, Stubs
from tests.pgfixtures import pg_database, pg_server  # noqa: F401 (fixtures: a real PostgreSQL for --store tests)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(data_dir=tmp_path / "data").start()
    yield proc
    if proc.proc is not None and proc.proc.poll() is None:
        proc.stop()


@pytest.fixture
def stubs(server: ServerProcess) -> Iterator[Stubs]:
    s = Stubs(server)
    yield s
    s.close()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """ServerProcess objects whose last process is stopped after the test, however it ends."""
    made: list[ServerProcess] = []

    def make(**kwargs: Any) -> ServerProcess:
        proc = ServerProcess(data_dir=tmp_path / "data", **kwargs)
        made.append(proc)
        return proc

    yield make
    for proc in made:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.stop()
