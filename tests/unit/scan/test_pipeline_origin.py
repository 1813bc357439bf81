"""The pipeline gives each finding its origin and confidence once the image is walked, and decides a rule's
documentation-example matches by the file's context."""

from __future__ import annotations

import random

from secretsvc.scan.findings import FindingCollector
from secretsvc.scan.model import Content, Finding, Location, Match, Severity
from secretsvc.scan.origin import Confidence, OriginKind
from secretsvc.scan.pipeline import _Run
from secretsvc.scan.rules import RuleSet


def _run() -> _Run:
    return _Run(ruleset=RuleSet.default(), collector=FindingCollector(fingerprint_key=b"k" * 32), progress=None)


def _finding(run: _Run, path: str, layer: int, *, example: bool) -> None:
    rng = random.Random(path)
    secret = "".join(rng.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(32)).encode()
    content = Content(b"x = " + secret + b"\n", path, layer, Location.FILE)
    run.collector.add(content, [Match("r", Severity.HIGH, 4, 4 + len(secret), secret, documentation_example=example)])


def _resolved(run: _Run) -> dict[str, Finding]:
    return {f.path: f for f, _ in run.attribute(run.collector.resolve(None, None))}


def test_ownership_from_a_later_layer_and_chunked_database() -> None:
    run = _run()
    _finding(run, "usr/share/doc/p/README", 0, example=False)
    _finding(run, "usr/lib/p/settings.conf", 0, example=False)
    listing = b"/usr/share/doc/p/README\n" + b"/usr/share/doc/p/pad\n" * 50 + b"/usr/lib/p/settings.conf\n"
    # Delivered in two overlapping chunks, as the walker does for large files.
    run.buffer_database(Content(listing[:700], "var/lib/dpkg/info/p.list", 2, Location.FILE))
    run.buffer_database(Content(listing[650:], "var/lib/dpkg/info/p.list", 2, Location.FILE, offset=650))
    found = _resolved(run)
    doc, conf = found["usr/share/doc/p/README"], found["usr/lib/p/settings.conf"]
    assert (doc.origin.kind, doc.origin.name, doc.confidence) == (OriginKind.OS_PACKAGE, "p", Confidence.LOW)
    assert (conf.origin.name, conf.confidence) == ("p", Confidence.MEDIUM)
    # The next image starts with no ownership.
    _finding(run, "usr/share/doc/p/README", 0, example=False)
    assert _resolved(run)["usr/share/doc/p/README"].origin.kind is OriginKind.APPLICATION


def test_documentation_example_is_decided_by_file_context() -> None:
    run = _run()
    _finding(run, "root/.netrc", 0, example=True)
    _finding(run, "app/.env", 0, example=True)
    _finding(run, "usr/share/man/man5/netrc.5", 0, example=True)
    _finding(run, "app/docs/setup.txt", 0, example=True)
    found = _resolved(run)
    assert found["root/.netrc"].confidence is Confidence.HIGH
    assert found["app/.env"].confidence is Confidence.HIGH
    assert found["usr/share/man/man5/netrc.5"].confidence is Confidence.LOW
    assert found["app/docs/setup.txt"].confidence is Confidence.LOW


def test_config_min_confidence() -> None:
    import pytest

    from secretsvc.errors import ConfigError
    from secretsvc.scan.config import parse_config

    assert parse_config({"scan": {"min_confidence": "low"}}).min_confidence is Confidence.LOW
    assert parse_config({}).min_confidence is None
    with pytest.raises(ConfigError, match="min_confidence"):
        parse_config({"scan": {"min_confidence": "sure"}})
