"""The baseline file: round trip, identity across runs, and every way a file can be bad."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from secretsvc.errors import InvalidArgument
from secretsvc.scan import baseline as baseline_module
from secretsvc.scan.baseline import (
    BASELINE_KEY_BYTES,
    Baseline,
    baseline_document,
    load_baseline,
    parse_baseline,
    write_baseline,
)
from secretsvc.scan.findings import fingerprint
from secretsvc.scan.model import Finding, Location, Severity


def _finding(path: str = "app/.env", rule_id: str = "github-classic-token", layer: int | None = 1) -> Finding:
    return Finding(
        rule_id=rule_id,
        severity=Severity.HIGH,
        layer_digest=None if layer is None else "sha256:" + "1" * 64,
        layer_index=layer,
        path=path,
        line=3,
        location=Location.FILE,
        fingerprint="f" * 64,
        redacted="…(40 chars)",
    )


def test_round_trip_suppresses_the_same_secret_at_the_same_path(tmp_path: Path) -> None:
    key = Baseline.new().key
    secret = b"run-time value " + bytes(range(10))
    first = _finding()
    path = tmp_path / "baseline.json"
    assert write_baseline(path, key, [(first, fingerprint(key, secret))]) == 1
    loaded = load_baseline(path)
    assert loaded.key == key
    # A later run: a rebuilt image moves the file to another layer and line; it is still the same finding.
    moved = Finding(**{**_as_kwargs(first), "layer_index": 4, "line": 9, "layer_digest": "sha256:" + "2" * 64})
    assert loaded.suppresses(moved, fingerprint(loaded.key, secret))
    assert not loaded.suppresses(moved, fingerprint(loaded.key, secret + b"!"))
    assert not loaded.suppresses(_finding(path="other/.env"), fingerprint(loaded.key, secret))
    assert not loaded.suppresses(_finding(rule_id="jwt"), fingerprint(loaded.key, secret))
    assert not loaded.suppresses(moved, None)


def _as_kwargs(finding: Finding) -> dict[str, object]:
    return {name: getattr(finding, name) for name in finding.__slots__}  # type: ignore[attr-defined]


def test_written_file_is_stable_sorted_and_holds_no_report_fingerprint(tmp_path: Path) -> None:
    key = bytes(range(BASELINE_KEY_BYTES))
    pairs = [(_finding(path=p), "a" * 64) for p in ("z", "a", "m")] + [(_finding(path="a"), "a" * 64)]
    path = tmp_path / "b.json"
    assert write_baseline(path, key, pairs) == 3
    text = path.read_text()
    document = json.loads(text)
    assert document["version"] == 1
    assert [row["path"] for row in document["findings"]] == ["a", "m", "z"]
    assert "f" * 64 not in text
    assert path.stat().st_mode & 0o777 == 0o600
    assert document == baseline_document(key, pairs)


def test_writing_into_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="cannot write"):
        write_baseline(tmp_path / "no" / "such" / "b.json", bytes(32), [])


def _good() -> dict[str, object]:
    return {
        "version": 1,
        "key": "0" * 64,
        "findings": [{"rule_id": "jwt", "path": "a", "secret_hmac": "b" * 64}],
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "version 2 is not supported"),
        ({"version": "1"}, "non-integer 'version'"),
        ({"version": True}, "non-integer 'version'"),
        ({"key": "00"}, "'key' must be"),
        ({"key": "Z" * 64}, "'key' must be"),
        ({"key": None}, "'key' must be"),
        ({"findings": {}}, "'findings' must be a list"),
        ({"findings": ["x"]}, r"findings\[0\] must be an object"),
        ({"findings": [{"rule_id": "", "path": "a", "secret_hmac": "b" * 64}]}, "rule_id"),
        ({"findings": [{"rule_id": "r" * 129, "path": "a", "secret_hmac": "b" * 64}]}, "rule_id"),
        ({"findings": [{"rule_id": "jwt", "path": 3, "secret_hmac": "b" * 64}]}, "path"),
        ({"findings": [{"rule_id": "jwt", "path": "a", "secret_hmac": "B" * 64}]}, "secret_hmac"),
        ({"findings": [{"rule_id": "jwt", "path": "a"}]}, "secret_hmac"),
    ],
)
def test_bad_documents_are_refused_with_a_reason(change: dict[str, object], message: str) -> None:
    document = {**_good(), **change}
    with pytest.raises(InvalidArgument, match=message):
        parse_baseline(document)


def test_missing_keys_and_wrong_top_level_type() -> None:
    for key in ("version", "key", "findings"):
        document = _good()
        del document[key]
        with pytest.raises(InvalidArgument):
            parse_baseline(document)
    with pytest.raises(InvalidArgument, match="JSON object"):
        parse_baseline([_good()])


def test_unreadable_invalid_and_oversized_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidArgument, match="cannot read baseline"):
        load_baseline(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"{not json")
    with pytest.raises(InvalidArgument, match="not valid JSON"):
        load_baseline(bad)
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidArgument, match="not valid JSON"):
        load_baseline(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_good()))
    assert len(load_baseline(good).entries) == 1
    monkeypatch.setattr(baseline_module, "MAX_BASELINE_BYTES", 10)
    with pytest.raises(InvalidArgument, match="MAX_BASELINE_BYTES"):
        load_baseline(good)


def test_entry_count_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(baseline_module, "MAX_BASELINE_ENTRIES", 1)
    document = _good()
    document["findings"] = [*document["findings"], *document["findings"]]  # type: ignore[misc]
    with pytest.raises(InvalidArgument, match="MAX_BASELINE_ENTRIES"):
        parse_baseline(document)


def test_the_key_never_shows_in_a_repr() -> None:
    baseline = Baseline.new()
    assert baseline.key.hex() not in repr(baseline)
    assert len(baseline.key) == BASELINE_KEY_BYTES
