"""The PostgreSQL write bench: a short run puts on both stores and reports the ratio and no reruns; bad
arguments are refused; without PostgreSQL it says what to install."""

from __future__ import annotations

import pg_write_bench as pwb
import pytest

from tests import pgkit


@pytest.mark.slow
def test_a_short_run_reports_both_stores_and_no_reruns(capsys: pytest.CaptureFixture[str]) -> None:
    if pgkit.find_bindir() is None:
        pytest.skip("needs PostgreSQL")
    assert pwb.main(["--concurrency", "4", "--duration", "0.5", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    summary = next(line for line in out.splitlines() if line.startswith("c4 "))
    assert "sqlite" in summary and "ratio" in summary
    # Different new secrets never collide on PostgreSQL (the put serializes on its own row only).
    assert "reran 0 of" in summary


@pytest.mark.parametrize(
    "argv",
    [
        ["--concurrency", "0"],
        ["--concurrency", "65"],
        ["--concurrency", "x"],
        ["--concurrency", "1,2,3,4,5,6,7,8,9"],
        ["--duration", "0"],
        ["--duration", "1000"],
        ["--rounds", "0"],
    ],
)
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        pwb.main(argv)
    assert refused.value.code == 2


def test_without_postgresql_it_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(pgkit, "find_bindir", lambda: None)
    assert pwb.main(["--concurrency", "1", "--duration", "0.1", "--rounds", "1"]) == 2
    assert "apt-get install postgresql" in capsys.readouterr().err
