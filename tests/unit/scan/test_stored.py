"""Known-secret matching in the scan pipeline: candidates looked up in batches, `stored-secret` findings that
name the stored version and never hold the value, bounds reported as warnings. The lookup here answers from a
table as the service would (its own side is tested against the real server in tests/integration)."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from secretsvc.scan import stored
from secretsvc.scan.candidates import MAX_CANDIDATES_PER_CONTENT
from secretsvc.scan.model import Location, Severity
from secretsvc.scan.pipeline import ScanOptions, scan
from secretsvc.scan.reporters import write_report
from secretsvc.scan.stored import LookupAnswer, StoredVersion
from tests import scanimages as si

ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def word(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(n))


@dataclass
class Table:
    """Answers lookups from a value -> versions table, and records what it was asked."""

    stored: dict[bytes, list[StoredVersion]]
    complete: bool = True
    calls: list[int] = field(default_factory=list)
    asked: set[bytes] = field(default_factory=set)

    def __call__(self, values: Sequence[bytes]) -> LookupAnswer:
        self.calls.append(len(values))
        assert len(values) <= stored.LOOKUP_BATCH
        assert all(6 <= len(v) <= 1024 for v in values)
        assert len(set(values)) == len(values)  # deduplicated before asking
        self.asked.update(values)
        return LookupAnswer(
            [(i, s) for i, v in enumerate(values) for s in self.stored.get(bytes(v), [])], self.complete
        )


@dataclass
class Planted:
    password: str  # short, matches no rule
    token: str
    older: str
    deleted: str
    decoy: str
    archive: Path


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    rng = random.Random(77)
    password, token, older, deleted, decoy = word(rng, 8), word(rng, 48), word(rng, 12), word(rng, 14), word(rng, 10)
    image = si.build_image(
        [
            [
                si.file("app/.env", f"DB_HOST=db\nDB_PASSWORD={password}\nDECOY={decoy}\n"),
                si.file("etc/old.yaml", f'api:\n  token: "{older}"\n'),
            ],
            [
                si.file("run/secrets/api_token", f"{token}\n"),
                si.whiteout("etc/old.yaml"),
                si.file("srv/deploy.sh", f"curl https://svc:{deleted}@api.internal/\n"),
            ],
        ],
        env=["PATH=/usr/bin", f"APP_PASSWORD={password}"],
    )
    archive = si.write_docker_archive(tmp_path_factory.mktemp("stored") / "app.tar", image)
    return Planted(password, token, older, deleted, decoy, archive)


def table(p: Planted) -> Table:
    return Table(
        {
            p.password.encode(): [StoredVersion("payments", "db/password", 3, True, False)],
            p.token.encode(): [StoredVersion("payments", "api/token", 1, True, False)],
            p.older.encode(): [StoredVersion("payments", "api/token-old", 2, False, False)],
            p.deleted.encode(): [StoredVersion("payments", "svc/password", 1, False, True)],
        }
    )


def test_stored_values_become_findings_naming_their_version(planted: Planted) -> None:
    lookup = table(planted)
    report = scan(f"docker-archive:{planted.archive}", ScanOptions(match_stored=lookup))
    found = {(f.path, f.location, f.severity, f.description) for f in report.findings if f.rule_id == "stored-secret"}
    assert (
        "app/.env",
        Location.FILE,
        Severity.CRITICAL,
        stored.describe(lookup.stored[planted.password.encode()]),
    ) in found
    assert any(p == "config.Env[1]" and s is Severity.CRITICAL for p, _, s, _ in found)
    assert any(p == "run/secrets/api_token" and "payments/api/token v1, current" in d for p, _, _, d in found)
    assert any(
        p == "etc/old.yaml"
        and loc is Location.DELETED_FILE
        and s is Severity.HIGH
        and "payments/api/token-old v2, older version" in d
        for p, loc, s, d in found
    )
    assert any(p == "srv/deploy.sh" and "v1, older version, deleted" in d for p, _, _, d in found)
    assert len(found) == 5
    lines = {f.path: f.line for f in report.findings if f.rule_id == "stored-secret"}
    assert lines["app/.env"] == 2 and lines["etc/old.yaml"] == 2 and lines["config.Env[1]"] is None
    assert all("Rotate it" in d for *_, d in found)
    assert planted.decoy.encode() in lookup.asked  # asked about, and not reported
    assert sum(lookup.calls) == len(lookup.asked)
    assert any(r.rule_id == "stored-secret" for r in report.rules)
    assert report.exit_code == 1 and report.complete


def test_no_report_format_holds_a_stored_value(planted: Planted, tmp_path: Path) -> None:
    report = scan(f"docker-archive:{planted.archive}", ScanOptions(match_stored=table(planted)))
    for fmt in ("json", "sarif", "text"):
        out = tmp_path / f"report.{fmt}"
        with out.open("w") as stream:
            write_report(report, fmt, stream, terminal=False)
        text = out.read_text()
        for value in (planted.password, planted.token, planted.older, planted.deleted):
            assert value not in text
    assert json.loads((tmp_path / "report.json").read_text())["findings"]


def test_without_the_option_nothing_is_looked_up(planted: Planted) -> None:
    report = scan(f"docker-archive:{planted.archive}")
    assert not [f for f in report.findings if f.rule_id == "stored-secret"]


def test_a_service_still_backfilling_makes_the_scan_incomplete(planted: Planted) -> None:
    lookup = table(planted)
    lookup.complete = False
    report = scan(f"docker-archive:{planted.archive}", ScanOptions(match_stored=lookup))
    assert [w.code for w in report.warnings].count("stored.incomplete") == 1
    assert not report.complete


def test_the_per_content_cap_is_a_warning_and_the_scan_incomplete(tmp_path: Path) -> None:
    rng = random.Random(78)
    text = "".join(f"K{i}={word(rng, 10)}\n" for i in range(MAX_CANDIDATES_PER_CONTENT + 5))
    archive = si.write_docker_archive(tmp_path / "many.tar", si.build_image([[si.file("many.env", text)]]))
    lookup = Table({})
    report = scan(f"docker-archive:{archive}", ScanOptions(match_stored=lookup))
    assert "limit.stored_candidates" in {w.code for w in report.warnings}
    assert not report.complete and report.exit_code == 3
    from_file = {v for v in lookup.asked if v.decode() in text}
    assert len(from_file) == MAX_CANDIDATES_PER_CONTENT  # the rest of the file's values were dropped
    assert max(lookup.calls) <= stored.LOOKUP_BATCH and len(lookup.calls) >= 5


def test_a_failing_lookup_ends_the_scan(planted: Planted) -> None:
    class Down(Exception):
        pass

    def lookup(values: Sequence[bytes]) -> LookupAnswer:
        raise Down("unreachable")

    with pytest.raises(Down):
        scan(f"docker-archive:{planted.archive}", ScanOptions(match_stored=lookup))


def test_a_nonsense_answer_index_is_ignored(planted: Planted) -> None:
    def lookup(values: Sequence[bytes]) -> LookupAnswer:
        return LookupAnswer(
            [(len(values) + 3, StoredVersion("a", "b", 1, True, False)), (-1, StoredVersion("a", "b", 1, True, False))],
            True,
        )

    report = scan(f"docker-archive:{planted.archive}", ScanOptions(match_stored=lookup))
    assert not [f for f in report.findings if f.rule_id == "stored-secret"]


def test_many_versions_are_named_up_to_a_bound() -> None:
    versions = [StoredVersion("ns", f"p{i}", 1, i == 0, False) for i in range(stored.MAX_NAMED_VERSIONS + 3)]
    text = stored.describe(versions)
    assert "ns/p0 v1, current" in text and "and 3 more" in text
    assert stored.severity_of(versions[1:]) is Severity.HIGH


def test_the_scan_wide_cap_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stored, "MAX_SCAN_CANDIDATES", 50)
    rng = random.Random(79)
    text = "".join(f"K{i}={word(rng, 10)}\n" for i in range(80))
    archive = si.write_docker_archive(tmp_path / "s.tar", si.build_image([[si.file("a.env", text)]]))
    lookup = Table({})
    report = scan(f"docker-archive:{archive}", ScanOptions(match_stored=lookup))
    assert [w.code for w in report.warnings].count("limit.stored_candidates") == 1
    assert len(lookup.asked) == 50 and not report.complete


def _repeated(tmp_path: Path, copies: int) -> tuple[Path, Table]:
    secret = word(random.Random(80), 10)
    files = [si.file(f"f{i}.env", f"A={secret}\n") for i in range(copies)]
    archive = si.write_docker_archive(tmp_path / "r.tar", si.build_image([files]))
    return archive, Table({secret.encode(): [StoredVersion("ns", "p", 1, True, False)]})


def test_pending_occurrences_force_a_lookup_before_the_image_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    from secretsvc.scan.model import Content, Match

    monkeypatch.setattr(stored, "MAX_PENDING_OCCURRENCES", 10)
    secret = word(random.Random(82), 10)
    lookup = Table({secret.encode(): [StoredVersion("ns", "p", 1, True, False)]})
    emitted: list[Match] = []
    matcher = stored.StoredSecretMatcher(
        lookup=lookup, emit=lambda c, ms: emitted.extend(ms), on_warning=lambda w: None, fingerprint=lambda v: "fp"
    )
    for i in range(9):
        matcher.offer(Content(f"X_{i}={secret}\n".encode(), f"f{i}.txt", 0, Location.FILE, offset=1))
    assert lookup.calls == [] and emitted == []  # nine occurrences wait for the lookup
    matcher.offer(Content(f"X_9={secret}\n".encode(), "f9.txt", 0, Location.FILE, offset=1))
    assert lookup.calls == [1] and len(emitted) == 10  # the tenth forced it
    matcher.offer(Content(f"Y={secret}\n".encode(), "g.txt", 0, Location.FILE, offset=1))
    assert lookup.calls == [1] and len(emitted) == 11  # a known value is reported without asking again
    assert all(m.rule_id == "stored-secret" and m.severity is Severity.CRITICAL for m in emitted)


def test_a_value_in_too_many_places_is_reported_up_to_a_cap_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stored, "MAX_OCCURRENCES_PER_VALUE", 3)
    archive, lookup = _repeated(tmp_path, 25)
    report = scan(f"docker-archive:{archive}", ScanOptions(match_stored=lookup))
    assert len([f for f in report.findings if f.rule_id == "stored-secret"]) == 3
    assert [w.code for w in report.warnings].count("limit.stored_occurrences") == 1
    assert not report.complete


def test_a_rule_match_in_a_binary_file_is_a_candidate(tmp_path: Path) -> None:
    from tests import fakecreds

    token = fakecreds.fake_github_token(random.Random(81))
    data = b"\x7fELF\x00\x00\x00" + token.encode() + b"\x00\x01"
    archive = si.write_docker_archive(tmp_path / "b.tar", si.build_image([[si.file("bin/app", data)]]))
    lookup = Table({token.encode(): [StoredVersion("ci", "github", 2, True, False)]})
    report = scan(f"docker-archive:{archive}", ScanOptions(match_stored=lookup))
    rules = sorted(f.rule_id for f in report.findings if f.path == "bin/app")
    assert "stored-secret" in rules and len(rules) == 2  # the rule's own finding and the stored one


def test_a_plain_directory_is_matched_too(tmp_path: Path) -> None:
    secret = word(random.Random(83), 11)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "settings.py").write_text(f'DEBUG = False\nDB_PASSWORD = "{secret}"\n')
    lookup = Table({secret.encode(): [StoredVersion("web", "db", 4, False, False)]})
    report = scan(str(tmp_path / "src"), ScanOptions(match_stored=lookup))
    [finding] = [f for f in report.findings if f.rule_id == "stored-secret"]
    assert (finding.path, finding.line, finding.severity) == ("settings.py", 2, Severity.HIGH)
    assert "web/db v4, older version" in finding.description
