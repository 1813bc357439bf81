"""Package ownership parsers, the path-kind classifier and the confidence rule (secretsvc/scan/origin.py)."""

from __future__ import annotations

import json
import random

import pytest

from secretsvc.scan import origin as o
from secretsvc.scan.origin import (
    APPLICATION,
    Confidence,
    Origin,
    OriginKind,
    OwnershipIndex,
    PathKind,
    confidence,
    path_kind,
)


class Warnings:
    def __init__(self) -> None:
        self.codes: list[str] = []

    def __call__(self, code: str, message: str) -> None:
        self.codes.append(code)


def _os(name: str) -> Origin:
    return Origin(OriginKind.OS_PACKAGE, name)


def test_dpkg_list_claims_its_files() -> None:
    idx, warn = OwnershipIndex(), Warnings()
    assert idx.feed(
        "var/lib/dpkg/info/awscli.list", b"/.\n/usr/share/doc/awscli\n/usr/share/doc/awscli/x.txt\n", 0, warn
    )
    assert idx.origin_of("/usr/share/doc/awscli/x.txt") == _os("awscli")
    assert idx.origin_of("usr/share/doc/awscli/x.txt") == _os("awscli")
    assert idx.origin_of("/usr/share/doc/other.txt") == APPLICATION
    assert warn.codes == []


def test_dpkg_multiarch_list_name_drops_the_arch() -> None:
    idx = OwnershipIndex()
    idx.feed("/var/lib/dpkg/info/libssl3:amd64.list", b"/usr/lib/libssl.so.3\n", 0, Warnings())
    assert idx.origin_of("/usr/lib/libssl.so.3") == _os("libssl3")


def test_database_after_the_file_and_later_layer_wins() -> None:
    idx = OwnershipIndex()
    idx.feed("/var/lib/dpkg/info/a.list", b"/etc/x.conf\n", 3, Warnings())
    idx.feed("/var/lib/dpkg/info/b.list", b"/etc/x.conf\n", 1, Warnings())  # an earlier layer, fed later
    assert idx.origin_of("/etc/x.conf") == _os("a")


def test_dotdot_and_nul_paths_are_not_claimed() -> None:
    idx = OwnershipIndex()
    idx.feed("/var/lib/dpkg/info/evil.list", b"/../../etc/shadow\n/a/\x00b\n/usr/../../root/.netrc\n", 0, Warnings())
    assert len(idx) == 0
    assert idx.origin_of("/etc/shadow") == APPLICATION
    assert idx.origin_of("/root/.netrc") == APPLICATION


def test_binary_junk_and_long_lines_are_skipped() -> None:
    rng = random.Random(9)
    junk = bytes(rng.randrange(256) for _ in range(20000))
    idx = OwnershipIndex()
    long_line = b"/" + b"a" * (o.MAX_LINE_CHARS + 10) + b"\n"
    idx.feed("/var/lib/dpkg/info/j.list", junk + b"\n" + long_line + b"/ok\n", 0, Warnings())
    assert idx.origin_of("/ok") == _os("j")
    assert idx.origin_of("/" + "a" * (o.MAX_LINE_CHARS + 10)) == APPLICATION
    idx.feed("/lib/apk/db/installed", junk, 0, Warnings())
    idx.feed("/x/node_modules/p/package.json", junk, 0, Warnings())
    assert idx.origin_of("/x/node_modules/p/index.js") == Origin(OriginKind.LANGUAGE_PACKAGE, "npm:p")


def test_entry_cap_warns_once_and_is_informational(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(o, "MAX_ENTRIES", 5)
    idx, warn = OwnershipIndex(), Warnings()
    idx.feed("/var/lib/dpkg/info/big.list", b"".join(b"/f%d\n" % i for i in range(50)), 0, warn)
    assert len(idx) == 5
    assert warn.codes == [o.TRUNCATED]
    assert idx.origin_of("/f4") == _os("big")
    assert idx.origin_of("/f5") == APPLICATION
    from secretsvc.scan.model import loses_content

    assert not loses_content(o.TRUNCATED)


def test_oversized_database_is_read_up_to_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(o, "MAX_DB_BYTES", 64)
    idx, warn = OwnershipIndex(), Warnings()
    idx.feed("/var/lib/dpkg/info/z.list", b"/first\n" + b"/pad\n" * 100 + b"/last\n", 0, warn)
    assert warn.codes == [o.TRUNCATED]
    assert idx.origin_of("/first") == _os("z")
    assert idx.origin_of("/last") == APPLICATION


def test_apk_installed() -> None:
    db = b"C:Q1abc=\nP:musl\nV:1.2\nF:lib\nR:ld-musl.so.1\n\nP:py3-foo\nF:usr/share/doc/foo\nR:README\n"
    idx = OwnershipIndex()
    assert idx.feed("/lib/apk/db/installed", db, 0, Warnings())
    assert idx.origin_of("/lib/ld-musl.so.1") == _os("musl")
    assert idx.origin_of("/usr/share/doc/foo/README") == _os("py3-foo")
    # An R: line before any P: line belongs to no package.
    idx2 = OwnershipIndex()
    idx2.feed("/lib/apk/db/installed", b"F:etc\nR:passwd\n", 0, Warnings())
    assert idx2.origin_of("/etc/passwd") == APPLICATION


def test_python_record_and_egg_info() -> None:
    sp = "/usr/lib/python3/site-packages"
    record = b"boto/__init__.py,sha256=x,1\nboto/tests/data/cred.json,,\n../../../bin/boto,,\n/etc/abs,,\n"
    idx = OwnershipIndex()
    assert idx.feed(f"{sp}/boto-2.49.0.dist-info/RECORD", record, 0, Warnings())
    pkg = Origin(OriginKind.LANGUAGE_PACKAGE, "pypi:boto")
    assert idx.origin_of(f"{sp}/boto/tests/data/cred.json") == pkg
    assert idx.origin_of("/usr/bin/boto") == pkg  # relative climb out of site-packages stays inside the root
    assert idx.origin_of("/etc/abs") == APPLICATION
    egg = f"{sp}/old_pkg-1.0.egg-info/installed-files.txt"
    idx.feed(egg, b"../old_pkg/conf.py\n", 0, Warnings())
    assert idx.origin_of(f"{sp}/old_pkg/conf.py") == Origin(OriginKind.LANGUAGE_PACKAGE, "pypi:old_pkg")


def test_node_package_dirs_nested_and_scoped() -> None:
    idx = OwnershipIndex()
    idx.feed("/app/node_modules/aws-sdk/package.json", json.dumps({"name": "aws-sdk"}).encode(), 0, Warnings())
    idx.feed("/app/node_modules/@scope/lib/package.json", json.dumps({"name": "@scope/lib"}).encode(), 0, Warnings())
    idx.feed("/app/node_modules/aws-sdk/node_modules/xml/package.json", b'{"name": "xml"}', 0, Warnings())
    idx.feed("/app/node_modules/aws-sdk/lib/package.json", b'{"name": "not-a-package"}', 0, Warnings())
    assert idx.origin_of("/app/node_modules/aws-sdk/test/fixtures/k.json").name == "npm:aws-sdk"
    assert idx.origin_of("/app/node_modules/aws-sdk/lib/x.js").name == "npm:aws-sdk"
    assert idx.origin_of("/app/node_modules/aws-sdk/node_modules/xml/a.js").name == "npm:xml"
    assert idx.origin_of("/app/node_modules/@scope/lib/a.js").name == "npm:@scope/lib"
    assert idx.origin_of("/app/src/index.js") == APPLICATION


def test_unrelated_paths_are_not_databases() -> None:
    idx = OwnershipIndex()
    assert not idx.feed("/etc/passwd", b"root:x:0:0\n", 0, Warnings())
    assert not idx.feed("/app/package.json", b'{"name": "app"}', 0, Warnings())


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/usr/share/doc/awscli/examples/s3/cp.rst", PathKind.DOC),
        ("/usr/share/man/man1/curl.1.gz", PathKind.DOC),
        ("/usr/lib/python3.11/test/test_netrc.py", PathKind.TEST),
        ("/go/pkg/mod/x/y_test.go", PathKind.TEST),
        ("/srv/pkg/testdata/key.pem", PathKind.FIXTURE),
        ("/node_modules/a/fixtures/k.json", PathKind.FIXTURE),
        ("/node_modules/a/examples/cfg.js", PathKind.EXAMPLE),
        ("/opt/lib/docs/index.html", PathKind.DOC),
        ("/opt/lib/README.md", PathKind.DOC),
        ("/usr/share/rfc/rfc6749.txt", PathKind.DOC),
        ("/web/src/app.spec.ts", PathKind.TEST),
        ("/app/.env", PathKind.APPLICATION),
        ("/root/.netrc", PathKind.APPLICATION),
        ("/app/config/settings.py", PathKind.APPLICATION),
        ("/app/contest.py", PathKind.APPLICATION),
        ("/app/latest/notes.txt", PathKind.APPLICATION),
    ],
)
def test_path_kind(path: str, kind: PathKind) -> None:
    assert path_kind(path) is kind


def test_confidence_rule() -> None:
    pkg = _os("awscli")
    assert confidence(APPLICATION, PathKind.APPLICATION) is Confidence.HIGH
    assert confidence(APPLICATION, PathKind.TEST) is Confidence.MEDIUM
    assert confidence(pkg, PathKind.APPLICATION) is Confidence.MEDIUM
    for kind in (PathKind.DOC, PathKind.TEST, PathKind.EXAMPLE, PathKind.FIXTURE):
        assert confidence(pkg, kind) is Confidence.LOW
    assert Confidence.parse(" Low ") is Confidence.LOW
    with pytest.raises(ValueError, match="unknown confidence"):
        Confidence.parse("certain")


def test_origin_text_and_json() -> None:
    assert str(APPLICATION) == "application"
    assert str(_os("awscli")) == "os-package awscli"
    assert _os("awscli").to_json() == {"kind": "os-package", "name": "awscli"}


def test_dpkg_status_and_distroless_status_d_claim_doc_dirs() -> None:
    idx = OwnershipIndex()
    status = b"Package: libc6\nVersion: 2.36\n\nPackage: ../evil\n\nPackage: tzdata\n"
    assert idx.feed("/var/lib/dpkg/status", status, 0, Warnings())
    assert idx.feed("/var/lib/dpkg/status.d/base-files", b"Package: base-files\nVersion: 12\n", 0, Warnings())
    assert idx.origin_of("/usr/share/doc/libc6/copyright") == _os("libc6")
    assert idx.origin_of("/usr/share/doc/base-files/README") == _os("base-files")
    assert idx.origin_of("/usr/share/evil/x") == APPLICATION
    assert idx.origin_of("/usr/lib/libc.so.6") == APPLICATION  # status names no files
    assert o.is_database_path("var/lib/dpkg/status.d/base-files")
