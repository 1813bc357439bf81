"""A detected secret is redacted wherever the image repeats it in a name: paths, label keys, archive member
names, warnings and created_by lines, in every format and in the baseline."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretsvc.scan.findings import NameRedactor, redact
from secretsvc.scan.pipeline import ScanOptions, ScanReport, scan
from secretsvc.scan.reporters import write_report
from tests import fakecreds
from tests import scanimages as si


@pytest.fixture(scope="module")
def tokens() -> list[str]:
    rng = random.Random(4242)
    return [fakecreds.fake_github_token(rng) for _ in range(3)]


def _outputs(report: ScanReport) -> list[str]:
    outputs = [repr(report)]
    for fmt in ("text", "json", "sarif"):
        buffer = io.StringIO()
        write_report(report, fmt, buffer)
        outputs.append(buffer.getvalue())
    buffer = io.StringIO()
    write_report(report, "text", buffer, terminal=True)
    outputs.append(buffer.getvalue())
    return outputs


def _assert_absent(secrets: list[str], *texts: str) -> None:
    for secret in secrets:
        for text in texts:
            assert secret not in text


def _scan_layout(tmp_path: Path, image: si.BuiltImage, **options: object) -> ScanReport:
    layout = si.write_oci_layout(tmp_path / "layout", [image])
    return scan(f"oci:{layout}", ScanOptions(**options))  # type: ignore[arg-type]


def test_file_named_after_the_token_it_holds(tmp_path: Path, tokens: list[str]) -> None:
    token = tokens[0]
    image = si.build_image([[si.file(f"srv/{token}.txt", f"T={token}\n")]])
    baseline = tmp_path / "baseline.json"
    report = _scan_layout(tmp_path, image, write_baseline=baseline)
    (finding,) = report.findings
    assert finding.path == f"srv/{redact(token.encode())}.txt"
    _assert_absent([token], *_outputs(report), baseline.read_text())
    # Redaction is deterministic, so the baseline matches the same finding on a rerun.
    again = _scan_layout(tmp_path, image, baseline=baseline)
    assert again.findings == () and again.stats.suppressed_by_baseline == 1


def test_label_key_holding_the_token(tmp_path: Path, tokens: list[str]) -> None:
    token = tokens[0]
    image = si.build_image([[si.file("a.txt", "hello\n")]], labels={f"deploy.{token}": "yes"})
    report = _scan_layout(tmp_path, image)
    (finding,) = report.findings
    assert finding.path == f"config.Labels.deploy.{redact(token.encode())}"
    _assert_absent([token], *_outputs(report))


def test_nested_archive_member_named_after_the_token(tmp_path: Path, tokens: list[str]) -> None:
    token = tokens[0]
    jar = si.make_zip({f"conf/{token}.properties": f"token={token}\n"})
    image = si.build_image([[si.file("opt/app.jar", jar)]])
    report = _scan_layout(tmp_path, image)
    (finding,) = report.findings
    assert finding.path == f"opt/app.jar!conf/{redact(token.encode())}.properties"
    _assert_absent([token], *_outputs(report))


def test_a_secret_found_in_one_layer_is_redacted_from_names_everywhere(tmp_path: Path, tokens: list[str]) -> None:
    first, second, _ = tokens
    hostile = si.raw_tar([(f"../../cache-{second}-old/notes", b"nothing here\n")])
    image = si.build_image(
        [
            hostile,
            # a substring of a longer path component, named after a secret found in a later layer
            [si.file(f"etc/x{second}y.env", f"A={first}\n")],
            [si.file("srv/.env", f"B={second}\n")],
        ],
        history=[
            {"created_by": "ADD rootfs.tar /"},
            {"created_by": f"/bin/sh -c mv /tmp/in /etc/x{second}y.env"},
            {"created_by": "COPY .env /srv/"},
        ],
    )
    report = _scan_layout(tmp_path, image)
    shown = redact(second.encode())
    assert sorted(f.path for f in report.findings) == sorted([f"etc/x{shown}y.env", "srv/.env"])
    (warning,) = report.warnings
    assert warning.code == "path.unsafe" and warning.path == f"cache-{shown}-old/notes"
    assert any(shown in (layer.created_by or "") for layer in report.layers)
    _assert_absent([first, second], *_outputs(report))


def test_created_by_repeating_a_layer_secret_is_redacted_before_the_cut(tmp_path: Path) -> None:
    """created_by can repeat, out of context, a value that a rule found only in a layer file; the report cuts
    long lines, and a secret across the cut would otherwise leave its first characters behind."""
    line, password = fakecreds.fake_git_credentials(random.Random(4343))
    padding = "x" * 280
    image = si.build_image(
        [[si.file("root/.git-credentials", line)]],
        history=[{"created_by": f"/bin/sh -c {padding} {password}"}],
    )
    report = _scan_layout(tmp_path, image)
    assert [f.path for f in report.findings] == ["root/.git-credentials"]
    (layer,) = report.layers
    assert layer.created_by is not None and layer.created_by.endswith("…")
    assert password[:6] not in layer.created_by
    _assert_absent([password], *_outputs(report))


def test_baseline_never_holds_the_raw_name(tmp_path: Path, tokens: list[str]) -> None:
    token = tokens[2]
    image = si.build_image([[si.file(f"keys/{token}", f"{token}\n")]])
    baseline = tmp_path / "b.json"
    _scan_layout(tmp_path, image, write_baseline=baseline)
    text = baseline.read_text()
    assert token not in text
    (entry,) = json.loads(text)["findings"]
    assert entry["path"] == f"keys/{redact(token.encode())}"


# -- NameRedactor ----------------------------------------------------------------------------------------


def test_redactor_replaces_every_occurrence_longest_first() -> None:
    names = NameRedactor()
    names.add(b"abcdefghijklmnopqrst", "<long>")
    names.add(b"defgh", "<short>")
    assert names("x/abcdefghijklmnopqrst/y/defgh/abcdefghijklmnopqrst") == "x/<long>/y/<short>/<long>"
    assert names("") == "" and names("nothing") == "nothing"


def test_redactor_merges_overlapping_secrets_so_no_part_shows() -> None:
    names = NameRedactor()
    names.add(b"0123456789", "<a>")
    names.add(b"789abcdefghij", "<b>")
    out = names("p/0123456789abcdefghij/q")
    assert out == "p/…(20 chars)/q"
    for fragment in ("0123", "789", "abcd", "ghij"):
        assert fragment not in out


def test_redactor_decodes_like_the_walker() -> None:
    names = NameRedactor()
    raw = b"s3cr\xe9t-value-1234"
    names.add(raw, "<s>")
    assert names("a/" + raw.decode("utf-8", "surrogateescape") + "/b") == "a/<s>/b"
    assert names("a/" + raw.decode("cp437") + "/b") == "a/<s>/b"


def test_redactor_with_many_secrets_sharing_a_prefix_stays_fast() -> None:
    names = NameRedactor()
    for i in range(20_000):
        names.add(f"-----BEGIN KEY {i:08d}-----".encode(), f"<{i}>")
    text = "/".join("-----BEGIN KEY notakey-----" for _ in range(200))
    assert names(text) == text
    assert names("x/-----BEGIN KEY 00012345-----/y") == "x/<12345>/y"


def _reference(text: str, secrets: dict[str, str]) -> str:
    """Redaction by brute force: mark every character any secret covers, then replace each marked run."""
    cover: list[set[str]] = [set() for _ in text]
    for secret in secrets:
        at = text.find(secret)
        while at >= 0:
            for k in range(at, at + len(secret)):
                cover[k].add(secret)
            at = text.find(secret, at + 1)
    out, i = [], 0
    while i < len(text):
        if not cover[i]:
            out.append(text[i])
            i += 1
            continue
        j, run = i, set()
        # a run ends where no secret occurrence crosses the boundary
        while j < len(text) and cover[j] and (j == i or _crosses(text, secrets, j)):
            run |= cover[j]
            j += 1
        piece = text[i:j]
        out.append(secrets[piece] if piece in secrets else f"…({j - i} chars)")
        i = j
    return "".join(out)


def _crosses(text: str, secrets: dict[str, str], j: int) -> bool:
    """Whether some occurrence of a secret covers both j - 1 and j."""
    return any(
        text.startswith(s, start) for s in secrets for start in range(max(0, j - len(s) + 1), j)
    )


@given(
    secrets=st.lists(st.text(alphabet="abc-", min_size=1, max_size=10), min_size=1, max_size=6, unique=True),
    text=st.text(alphabet="abc-/", max_size=60),
    chars=st.integers(min_value=0, max_value=70),
)
def test_redactor_matches_a_brute_force_reference(secrets: list[str], text: str, chars: int) -> None:
    names = NameRedactor()
    shown = {s: f"<{n}>" for n, s in enumerate(secrets)}
    for secret, form in shown.items():
        names.add(secret.encode(), form)
    expected = _reference(text, shown)
    assert names(text) == expected
    assert names.head(text, chars) == expected[:chars]
