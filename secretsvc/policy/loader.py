"""Policy documents from files, a directory, or bytes with a source name -> a checked `PolicySet`.

Two ways in, one result:

- `check_paths` / `check_sources` never raise for a bad document: they return every problem found (each
  naming its file and line), and the set when there are none. `secretsvc policy check` prints them.
- `load_paths` (start-up configuration: raises `ConfigError`) and `load_sources` (documents sent over the
  API: raises `InvalidArgument`, or `LimitExceeded` when a named limit is what failed) return the set.

A directory contributes its `*.yaml`, `*.yml` and `*.json` files, in name order, not its subdirectories, and
not names starting with '.' (editor files, and the `..data` links of a mounted Kubernetes ConfigMap, whose
visible files are links to the same documents). A directory without any is refused: it is likely the wrong
directory. `.json` files are read as JSON, everything else as YAML.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from secretsvc.errors import ConfigError, InvalidArgument, LimitExceeded
from secretsvc.filestate import signature
from secretsvc.policy import limits, nodes, schema
from secretsvc.policy.engine import PolicySet, builtin_document
from secretsvc.policy.link import link
from secretsvc.policy.model import Document, Location, Problem

log = logging.getLogger(__name__)

SUFFIXES = (".yaml", ".yml", ".json")
MAX_PROBLEMS_IN_MESSAGE = 10


@dataclass(frozen=True, slots=True)
class Source:
    """A document's bytes and the name its problems are reported under."""

    name: str
    data: bytes
    declared_format: nodes.Format | None = None  # None: JSON for a `.json` name, else YAML

    @property
    def format(self) -> nodes.Format:
        if self.declared_format is not None:
            return self.declared_format
        return "json" if self.name.lower().endswith(".json") else "yaml"


@dataclass(frozen=True, slots=True)
class CheckResult:
    problems: tuple[Problem, ...]
    policy_set: PolicySet | None  # None when there are problems
    files: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def parse_document(data: bytes, source: str, fmt: nodes.Format | None = None) -> Document | list[Problem]:
    """One document, or every problem in it. `fmt` defaults to JSON for a `.json` source name, else YAML."""
    if len(data) > limits.MAX_POLICY_FILE_BYTES:
        return [Problem(Location(source, 0), "", f"is larger than MAX_POLICY_FILE_BYTES="
                                                 f"{limits.MAX_POLICY_FILE_BYTES} bytes", limit=True)]
    node = nodes.read(data, fmt or Source(source, b"").format)
    if isinstance(node, nodes.Unreadable):
        return [Problem(Location(source, node.line), "", node.message, node.limit)]
    return schema.read_document(node, source)


def _read_file(path: Path) -> bytes | Problem:
    try:
        with path.open("rb") as handle:
            data = handle.read(limits.MAX_POLICY_FILE_BYTES + 1)
    except OSError as exc:
        return Problem(Location(str(path), 0), "", f"cannot be read: {exc.strerror or exc}")
    if len(data) > limits.MAX_POLICY_FILE_BYTES:
        return Problem(Location(str(path), 0), "", f"is larger than MAX_POLICY_FILE_BYTES="
                                                    f"{limits.MAX_POLICY_FILE_BYTES} bytes", limit=True)
    return data


def _files_in(directory: Path) -> list[Path] | Problem:
    try:
        names = sorted(p for p in directory.iterdir()
                       if p.suffix.lower() in SUFFIXES and not p.name.startswith(".") and p.is_file())
    except OSError as exc:
        return Problem(Location(str(directory), 0), "", f"cannot be listed: {exc.strerror or exc}")
    if not names:
        return Problem(Location(str(directory), 0), "", f"holds no policy files ({', '.join(SUFFIXES)})")
    if len(names) > limits.MAX_POLICY_FILES:
        return Problem(Location(str(directory), 0), "", f"holds more than MAX_POLICY_FILES="
                                                         f"{limits.MAX_POLICY_FILES} policy files", limit=True)
    return names


def fingerprint(paths: Sequence[Path]) -> tuple[object, ...]:
    """What changes when any document `read_paths` would read changes: each file's identity, size and
    modification time (following links, so a Kubernetes ConfigMap's swapped `..data` link counts), and each
    directory's list of policy files. Cheap enough to take every few seconds."""
    marks: list[object] = []
    for path in paths:
        files = _files_in(path) if path.is_dir() else [path]
        marks.extend([str(files)] if isinstance(files, Problem) else [(str(files), signature(files))])
    return tuple(marks)


def read_paths(paths: Sequence[Path]) -> tuple[list[Source], list[Problem]]:
    """The documents named by files and directories, and the problems met reading them."""
    sources: list[Source] = []
    problems: list[Problem] = []
    for path in paths:
        files: list[Path] | Problem = _files_in(path) if path.is_dir() else [path]
        if isinstance(files, Problem):
            problems.append(files)
            continue
        for file in files:
            data = _read_file(file)
            if isinstance(data, Problem):
                problems.append(data)
            else:
                sources.append(Source(str(file), data))
    return sources, problems


def check_sources(sources: Sequence[Source], problems: Sequence[Problem] = ()) -> CheckResult:
    found = list(problems)
    documents: list[Document] = []
    for source in sources:
        document = parse_document(source.data, source.name, source.format)
        if isinstance(document, Document):
            documents.append(document)
        else:
            found.extend(document)
    names = tuple(s.name for s in sources)
    if not found:
        found.extend(link((builtin_document(), *documents)))
    if found:
        return CheckResult(tuple(found), None, names)
    return CheckResult((), PolicySet(documents), names)


def check_paths(paths: Sequence[Path]) -> CheckResult:
    sources, problems = read_paths(paths)
    return check_sources(sources, problems)


def summary(problems: Sequence[Problem]) -> str:
    shown = "\n".join(str(p) for p in problems[:MAX_PROBLEMS_IN_MESSAGE])
    more = len(problems) - MAX_PROBLEMS_IN_MESSAGE
    return f"invalid policy documents:\n{shown}" + (f"\n(and {more} more)" if more > 0 else "")


def _loaded(result: CheckResult) -> PolicySet:
    assert result.policy_set is not None
    for warning in result.policy_set.warnings:
        log.warning("policy binding matches every identity of its kind: %s", warning)
    return result.policy_set


def load_paths(paths: Sequence[Path]) -> PolicySet:
    """The policy set in these files and directories, or `ConfigError` listing what is wrong (file:line)."""
    result = check_paths(paths)
    if not result.ok:
        raise ConfigError(summary(result.problems))
    return _loaded(result)


def load_sources(sources: Sequence[Source]) -> PolicySet:
    """The policy set in these documents, or `InvalidArgument` (`LimitExceeded` if a limit failed first)."""
    result = check_sources(sources)
    if not result.ok:
        error = LimitExceeded if result.problems[0].limit else InvalidArgument
        raise error(summary(result.problems))
    return _loaded(result)
