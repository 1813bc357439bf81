"""The scan config file: path and rule ignores, disabled rules, and which incomplete reads to accept.

A small TOML file, checked strictly so that a misspelt key or rule id is an error rather than a silently
ignored allowlist:

    [ignore]
    paths = ["usr/share/doc/**", "*.md"]   # globs; a glob without "/" matches the file name anywhere
    rules = ["jwt"]                        # findings of these rules are dropped from the report

    [rules]
    disabled = ["generic-secret-assignment"]  # these rules are not run at all
    files = ["scan-rules/acme.toml"]       # more rule files (docs/scan-rules.md), relative to this file

    [scan]
    allow_incomplete = false               # true: a scan that could not read everything still exits 0
    accept_warnings = ["limit.file_size"]  # these warning codes never make the scan fail as incomplete
    min_confidence = "medium"              # low, medium or high; findings below it are hidden and counted

Warning codes in `accept_warnings` are checked for their shape only: a code this version does not know
(from a newer release, or misspelt) accepts nothing, so a typo fails safe (the scan still fails).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from secretsvc.boundedio import read_bounded
from secretsvc.errors import ConfigError
from secretsvc.scan.model import Finding
from secretsvc.scan.origin import Confidence

MAX_CONFIG_FILE_BYTES = 1024 * 1024
MAX_CONFIG_PATTERNS = 10_000
MAX_PATTERN_CHARS = 4096
MAX_RULE_ID_CHARS = 128
MAX_RULE_FILES = 64
MAX_PATH_CHARS = 4096
MAX_WARNING_CODE_CHARS = 64

_KNOWN_KEYS: dict[str, frozenset[str]] = {
    "ignore": frozenset({"paths", "rules"}),
    "rules": frozenset({"disabled", "files"}),
    "scan": frozenset({"allow_incomplete", "accept_warnings", "min_confidence"}),
}
_WARNING_CODE = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)+")


@dataclass(frozen=True, slots=True)
class ScanConfig:
    ignore_paths: tuple[str, ...] = ()
    ignore_rules: frozenset[str] = frozenset()
    disabled_rules: frozenset[str] = frozenset()
    allow_incomplete: bool = False
    accepted_warnings: frozenset[str] = frozenset()
    min_confidence: Confidence | None = None  # None: not set (the CLI default applies)
    rule_files: tuple[Path, ...] = ()  # user rule files, resolved against the config file's directory

    def rule_ids(self) -> frozenset[str]:
        """Every rule id the config names, so the caller can refuse unknown ones."""
        return self.ignore_rules | self.disabled_rules

    def ignores(self, finding: Finding) -> bool:
        """Whether the config drops this finding."""
        if finding.rule_id in self.ignore_rules or finding.rule_id in self.disabled_rules:
            return True
        return path_ignored(finding.path, self.ignore_paths)

    def check_rule_ids(self, known: Iterable[str]) -> None:
        unknown = sorted(self.rule_ids() - frozenset(known))
        if unknown:
            raise ConfigError(f"scan config names unknown rule ids: {', '.join(unknown)}")


def path_ignored(path: str, patterns: Iterable[str]) -> bool:
    """Glob match in the style of .gitignore.

    A pattern with a "/" is anchored at the layer root and also covers everything below a directory it names
    ("*" crosses "/"); a pattern without one matches any single path component ("*.md", "node_modules").
    A member of a nested archive ("a/b.jar!c/d.properties") is matched as the whole path, as the archive's
    path and as the member's path, so either can be ignored.
    """
    candidates = [path, *path.split("!")] if "!" in path else [path]
    for pattern in patterns:
        anchored = pattern.strip("/")
        if "/" in anchored:
            if any(fnmatchcase(c, anchored) or fnmatchcase(c, anchored + "/*") for c in candidates):
                return True
        elif any(fnmatchcase(part, anchored) for c in candidates for part in c.split("/")):
            return True
    return False


def load_config(path: Path) -> ScanConfig:
    """Read and check a scan config file; `ConfigError` names the file and what is wrong with it."""
    raw = read_bounded(
        path, MAX_CONFIG_FILE_BYTES, what="scan config", limit_name="MAX_CONFIG_FILE_BYTES", error=ConfigError
    )
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"scan config {path} is not valid TOML: {exc}") from None
    return parse_config(document, source=str(path), base=path.parent)


def parse_config(document: dict[str, Any], *, source: str = "scan config", base: Path | None = None) -> ScanConfig:
    """`base` is the directory relative `[rules] files` are taken from (the config file's; else as given)."""
    for table, value in document.items():
        if table not in _KNOWN_KEYS:
            raise ConfigError(f"{source}: unknown table [{table}] (expected: {', '.join(_KNOWN_KEYS)})")
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: [{table}] must be a table")
        extra = sorted(set(value) - _KNOWN_KEYS[table])
        if extra:
            raise ConfigError(f"{source}: unknown key(s) in [{table}]: {', '.join(extra)}")
    ignore = document.get("ignore", {})
    rules = document.get("rules", {})
    scan = document.get("scan", {})
    allow_incomplete = scan.get("allow_incomplete", False)
    if not isinstance(allow_incomplete, bool):
        raise ConfigError(f"{source}: scan.allow_incomplete must be true or false")
    accepted = _strings(scan, "accept_warnings", f"{source}: scan.accept_warnings", MAX_WARNING_CODE_CHARS)
    for code in accepted:
        if not _WARNING_CODE.fullmatch(code):
            raise ConfigError(f"{source}: scan.accept_warnings: {code!r} is not a warning code (e.g. limit.file_size)")
    min_confidence = scan.get("min_confidence")
    try:
        level = None if min_confidence is None else Confidence.parse(str(min_confidence))
    except ValueError as e:
        raise ConfigError(f"{source}: scan.min_confidence: {e}") from None
    files = _strings(rules, "files", f"{source}: rules.files", MAX_PATH_CHARS)
    if len(files) > MAX_RULE_FILES:
        raise ConfigError(f"{source}: rules.files has more than MAX_RULE_FILES ({MAX_RULE_FILES}) entries")
    rule_files = tuple(base / f if base is not None else Path(f) for f in files)
    return ScanConfig(
        ignore_paths=tuple(_strings(ignore, "paths", f"{source}: ignore.paths", MAX_PATTERN_CHARS)),
        ignore_rules=frozenset(_strings(ignore, "rules", f"{source}: ignore.rules", MAX_RULE_ID_CHARS)),
        disabled_rules=frozenset(_strings(rules, "disabled", f"{source}: rules.disabled", MAX_RULE_ID_CHARS)),
        allow_incomplete=allow_incomplete,
        accepted_warnings=frozenset(accepted),
        min_confidence=level,
        rule_files=rule_files,
    )


def _strings(table: dict[str, Any], key: str, where: str, max_chars: int) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{where} must be a list of strings")
    if len(value) > MAX_CONFIG_PATTERNS:
        raise ConfigError(f"{where} has more than MAX_CONFIG_PATTERNS ({MAX_CONFIG_PATTERNS}) entries")
    for item in value:
        if not item.strip():
            raise ConfigError(f"{where} contains an empty entry")
        if len(item) > max_chars:
            raise ConfigError(f"{where} has an entry longer than {max_chars} characters")
    return list(value)
