from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.serverproc import ServerProcess, Stubs


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
