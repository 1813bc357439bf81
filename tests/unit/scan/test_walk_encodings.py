"""Text where real images keep it beyond plain UTF-8 files: UTF-16 text files, UTF-16 strings inside binaries,
SQLite databases, shared objects and `.properties` inside jars, each scanned end to end from a built image.
And a credential for a documentation host, judged by the file it is in."""

from __future__ import annotations

import random
import sqlite3
import string
from pathlib import Path

import pytest

from secretsvc.scan import sqlitetext
from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.model import Finding, ScanReport
from secretsvc.scan.origin import Confidence
from secretsvc.scan.pipeline import ScanOptions, scan
from secretsvc.scan.walk import utf16_encoding, utf16_strings_in_place
from tests import fakecreds
from tests import scanimages as si

KEY = b"k" * 32


def _scan(tmp_path: Path, files: dict[str, bytes], **options: object) -> ScanReport:
    image = si.build_image([[si.file(p, d) for p, d in files.items()]])
    archive = si.write_docker_archive(tmp_path / "img.tar", image)
    return scan(f"docker-archive:{archive}", ScanOptions(fingerprint_key=KEY, **options))  # type: ignore[arg-type]


def _at(report: ScanReport, path: str) -> list[Finding]:
    return [f for f in report.findings if f.path == path]


def _chosen(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(7)) + str(rng.randrange(1000, 9999))


@pytest.fixture
def token() -> str:
    return fakecreds.fake_github_token(random.Random(31))


# -- UTF-16 text files -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "bom"), [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"), ("utf-16-le", b""), ("utf-16-be", b"")]
)
def test_utf16_text_files_are_decoded(tmp_path: Path, token: str, codec: str, bom: bytes) -> None:
    text = f'Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\App]\r\n"Token"="{token}"\r\n'
    report = _scan(tmp_path, {"app/settings.reg": bom + text.encode(codec)})
    [finding] = _at(report, "app/settings.reg")
    assert finding.rule_id == "github-classic-token"
    assert finding.line == 4  # the decoded text's line
    assert not report.warnings


def test_a_utf16_file_with_no_secret_gives_nothing(tmp_path: Path) -> None:
    text = "[Strings]\r\nProductName=Sample Tool\r\nVersion=1.2.3\r\n" * 40
    report = _scan(tmp_path, {"app/strings.inf": b"\xff\xfe" + text.encode("utf-16-le")})
    assert report.findings == () and not report.warnings


def test_utf16_file_in_many_blocks_keeps_offsets_and_lines(tmp_path: Path, token: str) -> None:
    filler = "".join(f"Key{i}=Value{i}\r\n" for i in range(400))  # about 6 KB of text, 12 KB encoded
    text = filler + f"Token={token}\r\n" + filler
    limits = ScanLimits(chunk_bytes=4096, chunk_overlap_bytes=512)
    report = _scan(tmp_path, {"app/big.ini": b"\xff\xfe" + text.encode("utf-16-le")}, limits=limits)
    [finding] = _at(report, "app/big.ini")
    assert (finding.rule_id, finding.line) == ("github-classic-token", 401)
    assert not report.warnings


def test_utf16_sniff() -> None:
    assert utf16_encoding("plain text here".encode("utf-16-le")) == ("utf-16-le", 0)
    assert utf16_encoding(b"\xff\xfeA\x00") == ("utf-16-le", 2)
    assert utf16_encoding(b"\xff\xfe\x00\x00A\x00\x00\x00") is None  # UTF-32LE
    assert utf16_encoding(b"plain ascii text, no NULs at all") is None
    assert utf16_encoding(bytes(range(256))) is None  # binary
    assert utf16_encoding("short".encode("utf-16-le")[:6]) is None


# -- UTF-16 inside binaries ---------------------------------------------------------------------------------


def test_utf16_strings_are_rewritten_in_place() -> None:
    raw = b"\x00\x01" + "Password=abcd1234".encode("utf-16-le") + b"\x00\x00" + "short".encode("utf-16-le")
    out = utf16_strings_in_place(raw)
    assert len(out) == len(raw)
    assert b"Password=abcd1234" in out
    assert b"short" not in out  # fewer than 8 characters: not a string


def _pe_like(payload: bytes, rng: random.Random, size: int = 20000) -> bytes:
    """A Windows-binary-like file: the MZ magic, random bytes, and `payload` in the middle."""
    noise = bytes(rng.randrange(256) for _ in range(size))
    return b"MZ\x90\x00" + noise[: size // 2] + payload + noise[size // 2 :]


def test_utf16_string_inside_a_binary(tmp_path: Path, token: str) -> None:
    rng = random.Random(4)
    blob = _pe_like(f"GITHUB_TOKEN={token}".encode("utf-16-le") + b"\x00\x00", rng)
    report = _scan(tmp_path, {"app/tool.exe": blob})
    assert [f.rule_id for f in _at(report, "app/tool.exe")] == ["github-classic-token"]


def test_utf16_string_across_a_read_boundary_inside_a_binary(tmp_path: Path, token: str) -> None:
    rng = random.Random(5)
    string16 = f"GITHUB_TOKEN={token}".encode("utf-16-le")
    limits = ScanLimits(chunk_bytes=8192, chunk_overlap_bytes=256)
    for cut in (8192 - 20, 8192 - 51, 8192 - 90):  # the string straddles the first read's end
        prefix = b"\x7fELF" + bytes(rng.randrange(1, 256) for _ in range(cut - 4))
        blob = prefix + string16 + bytes(4000)
        report = _scan(tmp_path, {"app/lib.so": blob}, limits=limits)
        assert [f.rule_id for f in _at(report, "app/lib.so")] == ["github-classic-token"], cut


def test_text_inside_a_shared_object(tmp_path: Path, token: str) -> None:
    rng = random.Random(6)
    body = bytes(rng.randrange(256) for _ in range(30000))
    blob = b"\x7fELF\x02\x01\x01\x00" + body[:15000] + b"\x00api_token=" + token.encode() + b"\x00" + body[15000:]
    report = _scan(tmp_path, {"usr/lib/libapp.so.1": blob})
    assert [f.rule_id for f in _at(report, "usr/lib/libapp.so.1")] == ["github-classic-token"]


# -- SQLite ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["UTF-8", "UTF-16le"])
def test_text_inside_a_sqlite_database(tmp_path: Path, token: str, encoding: str) -> None:
    db = tmp_path / "app.db"
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA encoding = '{encoding}'")
    con.execute("CREATE TABLE settings (name TEXT, value TEXT)")
    rows = [(f"setting{i}", f"value number {i}") for i in range(200)] + [("github", f"token={token}")]
    con.executemany("INSERT INTO settings VALUES (?, ?)", rows)
    con.commit()
    con.close()
    report = _scan(tmp_path, {"var/lib/app/app.db": db.read_bytes()})
    assert [f.rule_id for f in _at(report, "var/lib/app/app.db")] == ["github-classic-token"]


def test_a_token_stored_right_after_another_column(tmp_path: Path) -> None:
    """SQLite keeps a row's columns side by side: `payments.key` then the key, no boundary between them."""
    key = fakecreds.fake_stripe_secret_key(random.Random(21))
    db = tmp_path / "kv.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE kv (name TEXT PRIMARY KEY, value TEXT)")
    con.executemany("INSERT INTO kv VALUES (?, ?)", [(f"feature.{i}", f"on for cohort {i}") for i in range(300)])
    con.execute("INSERT INTO kv VALUES (?, ?)", ("payments.key", key))
    con.commit()
    con.close()
    assert b"payments.key" + key.encode() in db.read_bytes()  # the case: no separator in the file
    report = _scan(tmp_path, {"var/lib/app/kv.db": db.read_bytes()})
    assert [f.rule_id for f in _at(report, "var/lib/app/kv.db")] == ["stripe-secret-key"]


def test_sqlite_text_values_are_bounded_and_skip_bad_pages() -> None:
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE t (v TEXT)")
    con.executemany("INSERT INTO t VALUES (?)", [(f"value number {i}",) for i in range(500)])
    con.commit()
    db = con.serialize()
    con.close()
    values = list(sqlitetext.text_values(db))
    assert b"value number 499" in values
    # Garbage pages (cell pointers anywhere, varints that run off the page) are skipped, not errors.
    rng = random.Random(3)
    mangled = bytearray(db)
    for page in range(4096, len(db), 4096):
        mangled[page + 8 : page + 4096] = bytes(rng.randrange(256) for _ in range(4088))
    list(sqlitetext.text_values(bytes(mangled)))
    assert list(sqlitetext.text_values(b"SQLite format 3\x00" + bytes(50))) == []
    assert list(sqlitetext.text_values(b"not a database")) == []


# -- jars -------------------------------------------------------------------------------------------------------


def test_properties_inside_a_jar(tmp_path: Path) -> None:
    password = _chosen(random.Random(8))
    jar = si.make_zip(
        {
            "META-INF/MANIFEST.MF": "Manifest-Version: 1.0\n",
            "BOOT-INF/classes/application.properties": f"server.port=8080\nspring.datasource.password={password}\n",
            "BOOT-INF/classes/com/acme/App.class": b"\xca\xfe\xba\xbe" + bytes(64),
        }
    )
    report = _scan(tmp_path, {"srv/app.jar": jar})
    [finding] = _at(report, "srv/app.jar!BOOT-INF/classes/application.properties")
    assert (finding.rule_id, finding.line) == ("config-password", 2)


# -- files that hold one token, and config-file context, end to end ----------------------------------------


def test_token_file_and_config_password_end_to_end(tmp_path: Path) -> None:
    rng = random.Random(10)
    token = "".join(rng.choice(fakecreds.URLSAFE) for _ in range(40))
    password = _chosen(rng)
    report = _scan(
        tmp_path,
        {
            "root/.vault-token": token.encode() + b"\n",
            "srv/app/VERSION": token.encode() + b"\n",  # not named as a secret
            "srv/app/.env": f"DB_PASSWORD={password}\n".encode(),
            "srv/app/config.py": f"DB_PASSWORD={password}\n".encode(),  # source code stays strict
        },
    )
    assert [(f.path, f.rule_id) for f in report.findings] == [
        ("root/.vault-token", "secret-file"),
        ("srv/app/.env", "config-password"),
    ]


# -- documentation hosts by context ---------------------------------------------------------------------------


def test_a_netrc_entry_for_a_documentation_host_is_judged_by_its_file(tmp_path: Path) -> None:
    password = _chosen(random.Random(12))
    entry = f"machine api.example.com\n  login deploy\n  password {password}\n".encode()
    files = {"root/.netrc": entry, "srv/app/.env": entry, "usr/share/doc/tool/netrc.example": entry}
    shown = _scan(tmp_path, files)
    assert {f.path: (f.rule_id, f.confidence) for f in shown.findings} == {
        "root/.netrc": ("netrc-password", Confidence.HIGH),
        "srv/app/.env": ("netrc-password", Confidence.HIGH),
    }
    assert dict(shown.stats.hidden) == {"application doc": 1}
    everything = _scan(tmp_path, files, min_confidence=Confidence.LOW)
    assert {f.path: f.confidence for f in everything.findings}["usr/share/doc/tool/netrc.example"] is Confidence.LOW
