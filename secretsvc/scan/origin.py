"""Who shipped a file in an image, and what kind of file it is: the origin and confidence of a finding.

Package ownership is learned from the image itself while it is walked: `OwnershipIndex.feed` takes the
bytes of a package database file (dpkg `info/*.list`, `status`, `status.d/*`; apk `installed`; Python
`*.dist-info/RECORD` and `*.egg-info/installed-files.txt`; Node `node_modules/**/package.json`) from any
layer, in any order. Ownership is resolved only at the end (`origin_of`), so a database that arrives after
the file it names still counts. A database seen in an earlier layer keeps its claims even if a later layer
rewrites or deletes it: the files it named were still shipped by that package. When two layers claim the
same path, the later layer wins. The rpm database (sqlite) is not read: rpm-owned files count as
application files.

Every parser is bounded (`MAX_DB_BYTES` per file, `MAX_LINE_CHARS` per line, `MAX_ENTRIES` paths overall);
an overflow is an informational `origin.truncated` warning: no image content goes unscanned, only some
ownership claims are not recorded, which makes findings more visible, never less.

Confidence is one of three named levels (`Confidence`): an application file is HIGH, or MEDIUM when its path
is a test/doc/example path; a package-owned file is LOW on such paths and MEDIUM otherwise.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, StrEnum

MAX_DB_BYTES = 8 << 20  # a package database file larger than this is read up to here
MAX_LINE_CHARS = 4096  # longer lines are skipped (no real path or field is this long)
MAX_ENTRIES = 2_000_000  # owned paths recorded over the whole image
MAX_NAME_CHARS = 214  # npm's own bound on a package name; also used for dpkg/apk/pip names
TRUNCATED = "origin.truncated"

_NAME = re.compile(r"[A-Za-z0-9@][A-Za-z0-9@._+/~-]*")


class OriginKind(StrEnum):
    APPLICATION = "application"
    OS_PACKAGE = "os-package"
    LANGUAGE_PACKAGE = "language-package"


@dataclass(frozen=True, slots=True)
class Origin:
    kind: OriginKind
    name: str | None = None  # package name (with ecosystem for language packages, e.g. "pypi:requests")

    def __str__(self) -> str:
        return self.kind.value if self.name is None else f"{self.kind.value} {self.name}"

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind.value, "name": self.name}


APPLICATION = Origin(OriginKind.APPLICATION)


class Confidence(IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Confidence:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown confidence {text!r} (low, medium, high)") from None


class PathKind(StrEnum):
    APPLICATION = "application"
    TEST = "test"
    DOC = "doc"
    EXAMPLE = "example"
    FIXTURE = "fixture"


_DOC_PREFIXES = ("usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/gtk-doc/", "usr/share/help/")
_DIR_KINDS: dict[str, PathKind] = {
    "test": PathKind.TEST,
    "tests": PathKind.TEST,
    "testing": PathKind.TEST,
    "__tests__": PathKind.TEST,
    "spec": PathKind.TEST,
    "testdata": PathKind.FIXTURE,
    "test_data": PathKind.FIXTURE,
    "fixtures": PathKind.FIXTURE,
    "fixture": PathKind.FIXTURE,
    "__fixtures__": PathKind.FIXTURE,
    "__snapshots__": PathKind.FIXTURE,
    "examples": PathKind.EXAMPLE,
    "example": PathKind.EXAMPLE,
    "samples": PathKind.EXAMPLE,
    "demo": PathKind.EXAMPLE,
    "docs": PathKind.DOC,
    "doc": PathKind.DOC,
    "man": PathKind.DOC,
}
_TEST_FILE = re.compile(r"(^test_.*\.py$|.*_test\.(py|go|rb)$|.*\.(test|spec)\.[cm]?[jt]sx?$|^conftest\.py$)")
_DOC_FILE = re.compile(
    r"(.*\.(md|rst|markdown|adoc|pod|[1-9]|[1-9]\.gz)$|^(readme|changelog|news|history)(\..*)?$)", re.I
)
_RFC_FILE = re.compile(r"^(rfc|draft-)[\w.-]*\.txt$", re.I)


def path_kind(path: str) -> PathKind:
    """What a path is by its name alone: test, fixture, example or documentation, else application.

    Only directory names and file-name conventions common to many ecosystems are used; `.md`/`.rst` and
    similar count as documentation everywhere (an application's README is documentation too: it only
    lowers an application finding to MEDIUM, which is still shown by default).
    """
    p = path.lstrip("/").lower()
    if p.startswith(_DOC_PREFIXES):
        return PathKind.DOC
    parts = p.split("/")
    for part in parts[:-1]:
        kind = _DIR_KINDS.get(part)
        if kind is not None:
            return kind
    name = parts[-1]
    if _TEST_FILE.match(name):
        return PathKind.TEST
    if _RFC_FILE.match(name) or _DOC_FILE.match(name):
        return PathKind.DOC
    return PathKind.APPLICATION


def confidence(origin: Origin, kind: PathKind) -> Confidence:
    """HIGH: an application's own file; MEDIUM: its test/doc files, or a package's regular file (a vendored
    config can hold a real key); LOW: a package's docs, tests, examples and fixtures."""
    if origin.kind is OriginKind.APPLICATION:
        return Confidence.HIGH if kind is PathKind.APPLICATION else Confidence.MEDIUM
    return Confidence.MEDIUM if kind is PathKind.APPLICATION else Confidence.LOW


def _norm(path: str) -> str | None:
    """A database path as an absolute, normalised image path, or None if it climbs out of the root."""
    if not path or "\x00" in path:
        return None
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/" + "/".join(parts) if parts else None


def _name(text: str) -> str | None:
    text = text.strip()
    return text if len(text) <= MAX_NAME_CHARS and _NAME.fullmatch(text) else None


def _lines(data: bytes) -> list[str]:
    text = data[:MAX_DB_BYTES].decode("utf-8", "replace")
    return [line for line in text.splitlines() if len(line) <= MAX_LINE_CHARS]


Warn = Callable[[str, str], None]  # (code, message); the path is the database file's


class OwnershipIndex:
    """Owned file paths and directories, with the package that shipped them."""

    def __init__(self) -> None:
        self._files: dict[str, tuple[int, Origin]] = {}
        self._dirs: dict[str, tuple[int, Origin]] = {}  # whole trees (node_modules/<pkg>, site-packages/<pkg>)
        self._entries = 0
        self._full = False

    def __len__(self) -> int:
        return self._entries

    def _claim(self, table: dict[str, tuple[int, Origin]], path: str, layer: int, origin: Origin, warn: Warn) -> None:
        if self._entries >= MAX_ENTRIES:
            if not self._full:
                self._full = True
                warn(TRUNCATED, f"more than {MAX_ENTRIES} package-owned paths; later ones count as application files")
            return
        old = table.get(path)
        if old is None or old[0] <= layer:
            if old is None:
                self._entries += 1
            table[path] = (layer, origin)

    def feed(self, path: str, data: bytes, layer: int, warn: Warn) -> bool:
        """Record what the package database at `path` claims; False if `path` is no database file."""
        p = "/" + path.lstrip("/")
        if len(data) > MAX_DB_BYTES:
            warn(TRUNCATED, f"package database larger than {MAX_DB_BYTES} bytes; read up to there")
        if p.startswith("/var/lib/dpkg/info/") and p.endswith(".list"):
            pkg = _name(posixpath.basename(p)[: -len(".list")].split(":")[0])
            if pkg is not None:
                origin = Origin(OriginKind.OS_PACKAGE, pkg)
                for line in _lines(data):
                    target = _norm(line)
                    if target is not None:
                        self._claim(self._files, target, layer, origin, warn)
            return True
        if p == "/var/lib/dpkg/status" or p.startswith("/var/lib/dpkg/status.d/"):
            self._dpkg_status(data, layer, warn)
            return True
        if p == "/lib/apk/db/installed":
            self._apk(data, layer, warn)
            return True
        if p.endswith(".dist-info/RECORD") or p.endswith(".egg-info/installed-files.txt"):
            self._python(p, data, layer, warn)
            return True
        if p.endswith("/package.json") and "/node_modules/" in p:
            self._node(p, data, layer, warn)
            return True
        return False

    def _dpkg_status(self, data: bytes, layer: int, warn: Warn) -> None:
        # The status file lists no files; distroless images have only status.d/ and no .list files. What it
        # does give safely is each package's documentation directory, by Debian policy /usr/share/doc/<pkg>.
        for line in _lines(data):
            if line.startswith("Package:"):
                pkg = _name(line[len("Package:") :])
                if pkg is not None:
                    self._claim(self._dirs, f"/usr/share/doc/{pkg}", layer, Origin(OriginKind.OS_PACKAGE, pkg), warn)

    def _apk(self, data: bytes, layer: int, warn: Warn) -> None:
        origin: Origin | None = None
        directory = ""
        for line in _lines(data):
            key, _, value = line.partition(":")
            if key == "P":
                pkg = _name(value)
                origin = Origin(OriginKind.OS_PACKAGE, pkg) if pkg else None
            elif key == "F":
                directory = value
            elif key == "R" and origin is not None:
                target = _norm(f"{directory}/{value}")
                if target is not None:
                    self._claim(self._files, target, layer, origin, warn)
            elif not line:
                origin, directory = None, ""

    def _python(self, p: str, data: bytes, layer: int, warn: Warn) -> None:
        meta_dir = posixpath.dirname(p)
        base = posixpath.basename(meta_dir)
        pkg = _name(base.rsplit(".", 1)[0].split("-")[0])
        if pkg is None:
            return
        origin = Origin(OriginKind.LANGUAGE_PACKAGE, f"pypi:{pkg}")
        # RECORD paths are relative to site-packages (the dist-info's parent); installed-files.txt paths are
        # relative to the egg-info directory itself.
        root = posixpath.dirname(meta_dir) if p.endswith("RECORD") else meta_dir
        for line in _lines(data):
            rel = line.split(",", 1)[0] if p.endswith("RECORD") else line
            if rel.startswith("/"):
                continue  # absolute entries (scripts outside site-packages) are not trusted
            target = _norm(f"{root}/{rel}")
            if target is not None:
                self._claim(self._files, target, layer, origin, warn)

    def _node(self, p: str, data: bytes, layer: int, warn: Warn) -> None:
        directory = posixpath.dirname(p)
        tail = directory.rsplit("/node_modules/", 1)[1]
        # Only a package's root package.json names it (nested ones in lib/ or test/ are not packages).
        if tail.count("/") > (1 if tail.startswith("@") else 0):
            return
        try:
            doc = json.loads(data[:MAX_DB_BYTES])
        except (ValueError, UnicodeDecodeError):
            doc = None
        name = doc.get("name") if isinstance(doc, dict) else None
        pkg = _name(name) if isinstance(name, str) else None
        origin = Origin(OriginKind.LANGUAGE_PACKAGE, f"npm:{pkg or tail}")
        target = _norm(directory)
        if target is not None:
            self._claim(self._dirs, target, layer, origin, warn)

    def origin_of(self, path: str) -> Origin:
        """The package that shipped `path` (by its final claim), or the application."""
        target = _norm(path)
        if target is None:
            return APPLICATION
        hit = self._files.get(target)
        if hit is not None:
            return hit[1]
        if self._dirs:
            # The deepest claiming directory wins: a nested node_modules package is its own package.
            d = target
            while d not in ("", "/"):
                d = posixpath.dirname(d)
                hit = self._dirs.get(d)
                if hit is not None:
                    return hit[1]
        return APPLICATION


def is_database_path(path: str) -> bool:
    """Whether `feed` would read this file (checked for every file, so cheap)."""
    p = "/" + path.lstrip("/")
    return (
        (p.startswith("/var/lib/dpkg/info/") and p.endswith(".list"))
        or p in {"/lib/apk/db/installed", "/var/lib/dpkg/status"}
        or p.startswith("/var/lib/dpkg/status.d/")
        or p.endswith((".dist-info/RECORD", ".egg-info/installed-files.txt"))
        or (p.endswith("/package.json") and "/node_modules/" in p)
    )


def file_of(finding_path: str) -> str:
    """The image file a finding's path lies in (for a member of a nested archive: the outer archive)."""
    return finding_path.split("!", 1)[0]
