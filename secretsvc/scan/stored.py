"""Known-secret matching, the scanner's side: candidates out of every content, looked up in batches, and
the ones the secret service stores turned into `stored-secret` findings.

The lookup itself is a callable the caller supplies (`StoredLookup`: the CLI wraps `client.matching`), so the
scan library never talks gRPC. It receives candidate values and answers, per candidate index, the stored
secret versions equal to it; the values never come back, and nothing here logs or reports one: a finding
holds the redacted form and the run's keyed fingerprint like every other finding.

Bounds: candidates per content (candidates.MAX_CANDIDATES_PER_CONTENT), distinct values per scan
(`MAX_SCAN_CANDIDATES`), occurrences waiting for a lookup (`MAX_PENDING_OCCURRENCES`: reaching it forces
one) and places reported per matched value (`MAX_OCCURRENCES_PER_VALUE`). A cap that drops anything is a
`ScanWarning` (`limit.stored_candidates`, `limit.stored_occurrences`) that makes the scan incomplete, never
silent; so is an answer from a service that had not yet fingerprinted every stored version
(`stored.incomplete`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from secretsvc.scan.candidates import (
    MAX_CANDIDATE_BYTES,
    MAX_CANDIDATES_PER_CONTENT,
    MIN_CANDIDATE_BYTES,
    extract,
)
from secretsvc.scan.model import Content, Match, ScanWarning, Severity

RULE_ID = "stored-secret"
DESCRIPTION = "a value the secret service stores"
#: Distinct candidate values one scan looks up; past it, the rest are not looked up (with a warning).
MAX_SCAN_CANDIDATES = 200_000
#: Candidate values per lookup call (the service accepts at most 1000, and 256 KiB, per request; the client
#: splits further by size).
LOOKUP_BATCH = 1000
#: Occurrences (a value at a place) waiting for their value's lookup; reaching it forces a lookup.
MAX_PENDING_OCCURRENCES = 20_000
#: Occurrences kept per matched value once looked up: where else it appears is still reported, up to this.
MAX_OCCURRENCES_PER_VALUE = 1000
#: Secret versions named in one finding's description; the rest are counted.
MAX_NAMED_VERSIONS = 5


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """A stored secret version a candidate equals, as the service names it."""

    namespace: str
    path: str
    version: int
    current: bool
    deleted: bool

    def describe(self) -> str:
        state = "current" if self.current else "older version, deleted" if self.deleted else "older version"
        return f"{self.namespace}/{self.path} v{self.version}, {state}"


@dataclass(frozen=True, slots=True)
class LookupAnswer:
    matches: Sequence[tuple[int, StoredVersion]]  # (index into the candidates asked, what it equals)
    complete: bool  # False: the service had not fingerprinted every stored version yet


#: Asks the service about candidate values (each 6..1024 bytes, any number: the callable batches).
StoredLookup = Callable[[Sequence[bytes]], LookupAnswer]
Emit = Callable[[Content, Sequence[Match]], None]


def describe(versions: Sequence[StoredVersion]) -> str:
    named = "; ".join(v.describe() for v in versions[:MAX_NAMED_VERSIONS])
    more = len(versions) - MAX_NAMED_VERSIONS
    if more > 0:
        named += f"; and {more} more"
    return f"{DESCRIPTION}: {named}. Rotate it: the value leaked into the image."


def severity_of(versions: Sequence[StoredVersion]) -> Severity:
    return Severity.CRITICAL if any(v.current for v in versions) else Severity.HIGH


@dataclass(slots=True)
class StoredSecretMatcher:
    """Collects candidates from the contents of one scan and reports those equal to stored secrets.

    `offer` each content (and the rules' matches in it) as the walk goes; `flush` before the collector
    resolves an image's findings. `emit(content, matches)` receives each `stored-secret` match, in a small
    `Content` of its own holding only the value at its place (so a pending lookup never keeps a whole chunk
    alive); `descriptions` maps a finding's fingerprint to the description naming the secret versions.
    """

    lookup: StoredLookup = field(repr=False)
    emit: Emit = field(repr=False)
    on_warning: Callable[[ScanWarning], None]
    fingerprint: Callable[[bytes], str] = field(repr=False)  # the run's finding fingerprint of a value
    descriptions: dict[str, str] = field(default_factory=dict)
    lookups: int = 0  # calls made
    looked_up: int = 0  # distinct values asked about
    matched: int = 0  # distinct values that equal a stored version
    _dedup_key: bytes = field(default_factory=lambda: secrets.token_bytes(16), repr=False)
    _asked: set[bytes] = field(default_factory=set, repr=False)  # digests of values already asked or queued
    _found: dict[bytes, tuple[StoredVersion, ...]] = field(default_factory=dict, repr=False)
    _queued: dict[bytes, bytes] = field(default_factory=dict, repr=False)  # digest -> value, awaiting a lookup
    _waiting: list[tuple[bytes, Content]] = field(default_factory=list, repr=False)  # (digest, slim content)
    _reported: dict[bytes, int] = field(default_factory=dict, repr=False)  # occurrences emitted per value
    _overflowed: set[bytes] = field(default_factory=set, repr=False)  # values past MAX_OCCURRENCES_PER_VALUE
    _scan_cap_warned: bool = False
    _occurrence_cap_warned: bool = False
    _service_incomplete_warned: bool = False

    def offer(self, content: Content, rule_matches: Iterable[Match] = ()) -> None:
        spans = [
            (m.start, m.end) for m in rule_matches if MIN_CANDIDATE_BYTES <= m.end - m.start <= MAX_CANDIDATE_BYTES
        ]
        extraction = extract(content)
        spans.extend((s.start, s.end) for s in extraction.spans)
        if extraction.truncated:
            self.on_warning(
                ScanWarning(
                    "limit.stored_candidates",
                    f"over MAX_CANDIDATES_PER_CONTENT ({MAX_CANDIDATES_PER_CONTENT}) candidate values in the "
                    f"{len(content.data)}-byte block at byte {content.offset}; the rest were not compared with "
                    "stored secrets",
                    layer_index=content.layer_index,
                    path=content.path,
                )
            )
        # In order of place, so each line number is counted on from the last one: linear in the content.
        line, counted = content.first_line, 0
        for start, end in sorted(spans):
            line += content.data.count(b"\n", counted, start)
            counted = start
            self._occurrence(content, start, end, line)
            if len(self._queued) >= LOOKUP_BATCH or len(self._waiting) >= MAX_PENDING_OCCURRENCES:
                self.flush()

    def _occurrence(self, content: Content, start: int, end: int, line: int) -> None:
        value = content.data[start:end]
        digest = hashlib.blake2b(value, digest_size=16, key=self._dedup_key).digest()
        if digest in self._asked and digest not in self._queued and digest not in self._found:
            return  # asked already, and it equals nothing stored
        if digest not in self._asked:
            if len(self._asked) >= MAX_SCAN_CANDIDATES:
                self._warn_scan_cap(content)
                return
            self._asked.add(digest)
            self._queued[digest] = value
        if self._reported.get(digest, 0) >= MAX_OCCURRENCES_PER_VALUE:
            if digest in self._found:
                self._warn_occurrence_cap(found=True)
            else:
                self._overflowed.add(digest)  # decided when its lookup is answered
            return
        self._reported[digest] = self._reported.get(digest, 0) + 1
        slim = Content(
            data=value,
            path=content.path,
            layer_index=content.layer_index,
            location=content.location,
            offset=content.offset + start,
            first_line=line,
            binary=content.binary,
        )
        if digest in self._found:
            self._report(digest, slim)
        else:
            self._waiting.append((digest, slim))

    def flush(self) -> None:
        """Look up every queued value and report the occurrences of those that equal stored versions."""
        queued = list(self._queued.items())
        self._queued.clear()
        for start in range(0, len(queued), LOOKUP_BATCH):
            self._lookup(queued[start : start + LOOKUP_BATCH])
        waiting, self._waiting = self._waiting, []
        for digest, slim in waiting:
            if digest in self._found:
                self._report(digest, slim)
        self._warn_occurrence_cap()
        for digest in [d for d in self._reported if d not in self._found]:
            del self._reported[digest]  # equals nothing stored: no need to count where it appears
        self._overflowed.intersection_update(self._found)

    def _lookup(self, batch: list[tuple[bytes, bytes]]) -> None:
        values = [value for _, value in batch]
        answer = self.lookup(values)
        self.lookups += 1
        self.looked_up += len(values)
        by_index: dict[int, list[StoredVersion]] = {}
        for index, version in answer.matches:
            if 0 <= index < len(values):  # an index this batch did not send is not believed
                by_index.setdefault(index, []).append(version)
        for index, versions in by_index.items():
            ordered = sorted(set(versions), key=lambda v: (not v.current, v.namespace, v.path, -v.version))
            self._found[batch[index][0]] = tuple(ordered)
        self.matched += len(by_index)
        if not answer.complete and not self._service_incomplete_warned:
            self._service_incomplete_warned = True
            self.on_warning(
                ScanWarning(
                    "stored.incomplete",
                    "the secret service had not yet fingerprinted every stored version (it does so after an "
                    "upgrade, at start); a leak of an older version may have been missed: scan again later",
                )
            )

    def _report(self, digest: bytes, slim: Content) -> None:
        versions = self._found[digest]
        value = slim.data
        self.descriptions[self.fingerprint(value)] = describe(versions)
        self.emit(slim, [Match(RULE_ID, severity_of(versions), 0, len(value), value)])

    def _warn_occurrence_cap(self, *, found: bool = False) -> None:
        # Only a value that equals a stored secret loses anything by the cap: its further places go unreported.
        if self._occurrence_cap_warned or not (found or any(d in self._found for d in self._overflowed)):
            return
        self._occurrence_cap_warned = True
        self.on_warning(
            ScanWarning(
                "limit.stored_occurrences",
                f"a stored secret's value appears in over MAX_OCCURRENCES_PER_VALUE ({MAX_OCCURRENCES_PER_VALUE}) "
                "places; only the first are reported",
            )
        )

    def _warn_scan_cap(self, content: Content) -> None:
        if self._scan_cap_warned:
            return
        self._scan_cap_warned = True
        self.on_warning(
            ScanWarning(
                "limit.stored_candidates",
                f"over MAX_SCAN_CANDIDATES ({MAX_SCAN_CANDIDATES}) distinct candidate values in this scan; from here "
                "on, new values were not compared with stored secrets",
                layer_index=content.layer_index,
                path=content.path,
            )
        )
