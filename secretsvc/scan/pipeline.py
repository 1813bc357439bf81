"""The scan use case: image reference in, `ScanReport` out.

    open_source -> walk_image (Contents) -> RuleSet.scan (Matches) -> FindingCollector (Findings)
                -> names redacted -> config ignores -> baseline -> sorted report

Every warning is counted by code; one that lost content (`model.loses_content`) makes the scan incomplete,
and an incomplete scan that the options do not accept exits 3 (`model.EXIT_INCOMPLETE`), unless a finding
already makes it exit 1. Every secret a rule matched is also replaced in every name the report prints
(finding and warning paths, warning messages, created_by lines), wherever in the image it was found.

Everything a run needs arrives in `ScanOptions`; nothing is read from the environment or kept between runs.
The fingerprint key is random per run unless one is given, so fingerprints can be compared across runs only
when the caller chooses to.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from secretsvc import errors
from secretsvc.scan.baseline import Baseline, load_baseline, write_baseline
from secretsvc.scan.config import ScanConfig, load_config
from secretsvc.scan.findings import (
    FindingCollector,
    LocationResolver,
    NameRedactor,
    fingerprint,
    identity,
    redact,
    sort_key,
)
from secretsvc.scan.limits import ScanLimits
from secretsvc.scan.model import (
    EXIT_CLEAN,
    EXIT_FINDINGS,
    EXIT_INCOMPLETE,
    EXIT_USAGE,
    Content,
    Finding,
    LayerInfo,
    LayerSummary,
    Match,
    RuleSummary,
    ScanReport,
    ScanStats,
    ScanWarning,
    Severity,
    loses_content,
)
from secretsvc.scan.origin import (
    APPLICATION,
    MAX_DB_BYTES,
    Confidence,
    OwnershipIndex,
    PathKind,
    confidence,
    file_of,
    is_database_path,
    path_kind,
)
from secretsvc.scan.rules import RuleSet
from secretsvc.scan.sources import open_source
from secretsvc.scan.stored import DESCRIPTION as STORED_DESCRIPTION
from secretsvc.scan.stored import RULE_ID as STORED_RULE_ID
from secretsvc.scan.stored import StoredLookup, StoredSecretMatcher
from secretsvc.scan.walk import LayerIndex, walk_image, walk_path

FINGERPRINT_KEY_BYTES = 32
MIN_FINGERPRINT_KEY_BYTES = 16
MAX_FINGERPRINT_KEY_BYTES = 1024
#: created_by lines are shown in reports; longer ones are cut (they are often whole shell scripts).
MAX_CREATED_BY_CHARS = 300
#: A scan that trips over this many warnings stops recording them (and says so): a hostile image must not
#: grow the report without bound.
MAX_WARNINGS = 1000

__all__ = [
    "EXIT_CLEAN",
    "EXIT_FINDINGS",
    "EXIT_INCOMPLETE",
    "EXIT_USAGE",
    "LayerSummary",
    "RuleSummary",
    "ScanOptions",
    "ScanReport",
    "ScanStats",
    "scan",
]


@dataclass(frozen=True, slots=True)
class ScanOptions:
    platform: str | None = None  # "os/arch[/variant]"; None scans every platform of an index
    creds: str | None = field(default=None, repr=False)  # "USER:PASS" for a registry
    docker_config: Path | None = None  # the file to read registry credentials from (the caller picks it)
    insecure_registry: bool = False
    fingerprint_key: bytes | None = field(default=None, repr=False)  # None: random per run
    fail_on: Severity = Severity.LOW
    baseline: Path | None = None
    write_baseline: Path | None = None
    config: Path | ScanConfig | None = None
    limits: ScanLimits = field(default_factory=ScanLimits)
    progress: Callable[[int], None] | None = None  # uncompressed layer bytes consumed since the last call
    rules: RuleSet | None = None  # None: RuleSet.default()
    allow_incomplete: bool = False  # an incomplete read never makes exit_code 3 (the report still says it)
    accept_warnings: frozenset[str] = frozenset()  # warning codes that never make exit_code 3
    # Known-secret matching (scan/stored.py): asks the secret service which candidate values it stores. The
    # caller (the CLI) supplies it, so this library needs no gRPC; None: no matching.
    match_stored: StoredLookup | None = field(default=None, repr=False)
    # Findings below this confidence (scan/origin.py) are left out of the list and counted by reason. None:
    # the config's [scan] min_confidence, else MEDIUM (package docs and tests hidden).
    min_confidence: Confidence | None = None

    def __post_init__(self) -> None:
        key = self.fingerprint_key
        if key is not None and not MIN_FINGERPRINT_KEY_BYTES <= len(key) <= MAX_FINGERPRINT_KEY_BYTES:
            raise errors.InvalidArgument(
                f"fingerprint key must be {MIN_FINGERPRINT_KEY_BYTES} to {MAX_FINGERPRINT_KEY_BYTES} bytes"
            )


def scan(ref: str, options: ScanOptions = ScanOptions()) -> ScanReport:
    """Scan an image reference (or a plain directory or file) for leaked credentials.

    Raises `errors.InvalidArgument` for a bad reference, baseline or unreadable image, `errors.NotFound` for
    an absent one, `errors.ConfigError` for a bad config file, `sources.RegistryUnavailable` for a registry
    that stays unavailable through the retries; problems inside layers become warnings, and a
    warning that lost content makes `report.complete` false.
    """
    started = time.monotonic()
    config = _config(options.config)
    ruleset = options.rules if options.rules is not None else RuleSet.default()
    config.check_rule_ids(info.rule_id for info in ruleset.rules)
    if config.disabled_rules:
        ruleset = ruleset.without(config.disabled_rules)
    baseline = load_baseline(options.baseline) if options.baseline is not None else None
    baseline_key: bytes | None = None
    if baseline is not None:
        baseline_key = baseline.key
    elif options.write_baseline is not None:
        baseline_key = Baseline.new().key
    run = _Run(
        ruleset=ruleset,
        collector=FindingCollector(
            fingerprint_key=options.fingerprint_key or secrets.token_bytes(FINGERPRINT_KEY_BYTES),
            baseline_key=baseline_key,
            descriptions={info.rule_id: info.description for info in ruleset.rules},
        ),
        progress=options.progress,
    )
    if options.match_stored is not None:
        key = run.collector.fingerprint_key
        run.stored = StoredSecretMatcher(
            lookup=options.match_stored, emit=run.emit_stored, on_warning=run.on_warning,
            fingerprint=lambda value: fingerprint(key, value),
        )
    try:
        run.scan_source(ref, options)
        # Names are final from here on: ignores, the baseline and the report all see them redacted.
        found = run.findings()
        warnings = tuple(run.final_warnings())
        layers = tuple(run.final_layers())
    finally:
        run.names.clear()

    kept: list[tuple[Finding, str | None]] = []
    suppressed_config = 0
    for finding, baseline_id in found:
        if config.ignores(finding):
            suppressed_config += 1
        else:
            kept.append((finding, baseline_id))
    written: int | None = None
    if options.write_baseline is not None and baseline_key is not None:
        written = write_baseline(options.write_baseline, baseline_key, [(f, b) for f, b in kept if b is not None])
    reported = [f for f, b in kept if baseline is None or not baseline.suppresses(f, b)]
    # After the baseline: a baselined finding stays baselined whatever its confidence. --fail-on sees only
    # what is shown.
    min_confidence = options.min_confidence or config.min_confidence or Confidence.MEDIUM
    hidden: dict[str, int] = {}
    shown: list[Finding] = []
    for f in reported:
        if f.confidence >= min_confidence:
            shown.append(f)
        else:
            reason = f"{f.origin.kind.value} {path_kind(f.path).value}"
            hidden[reason] = hidden.get(reason, 0) + 1
    stats = ScanStats(
        bytes_scanned=run.bytes_scanned,
        files_scanned=len(run.files),
        layers=run.layer_count,
        images=run.image_count,
        duration_s=time.monotonic() - started,
        findings=len(shown),
        suppressed_by_baseline=len(kept) - len(reported),
        suppressed_by_config=suppressed_config,
        warnings=run.warning_count,
        not_read=tuple(sorted(run.not_read.items())),
        hidden=tuple(sorted(hidden.items())),
        min_confidence=min_confidence,
    )
    return ScanReport(
        image=ref,
        findings=tuple(shown),
        warnings=warnings,
        stats=stats,
        layers=layers,
        rules=tuple(RuleSummary(i.rule_id, i.severity, i.description) for i in ruleset.rules)
        + ((RuleSummary(STORED_RULE_ID, Severity.CRITICAL, STORED_DESCRIPTION),) if run.stored else ()),
        fail_on=options.fail_on,
        baseline_written=written,
        allow_incomplete=options.allow_incomplete or config.allow_incomplete,
        accepted_warnings=options.accept_warnings | config.accepted_warnings,
    )


def _config(value: Path | ScanConfig | None) -> ScanConfig:
    if value is None:
        return ScanConfig()
    if isinstance(value, ScanConfig):
        return value
    return load_config(value)


@dataclass(slots=True)
class _Run:
    """The mutable state of one scan: counters, warnings and the collector. Lives for one `scan` call."""

    ruleset: RuleSet
    collector: FindingCollector
    progress: Callable[[int], None] | None
    bytes_scanned: int = 0
    layer_count: int = 0
    image_count: int = 0
    warning_count: int = 0
    files: set[tuple[str | None, int | None, str]] = field(default_factory=set)
    warnings: list[ScanWarning] = field(default_factory=list)
    not_read: dict[str, int] = field(default_factory=dict)  # code -> count, every content-losing warning
    layers: list[tuple[LayerInfo, str | None]] = field(default_factory=list)  # with its image's platform
    resolved: dict[tuple[object, ...], tuple[Finding, str | None]] = field(default_factory=dict)
    names: NameRedactor = field(default_factory=NameRedactor, repr=False)
    last_truncated: tuple[str | None, int | None, str] | None = None  # one limit.matches warning per file
    stored: StoredSecretMatcher | None = None  # known-secret matching, when asked for
    owners: OwnershipIndex = field(default_factory=OwnershipIndex)  # per image; reset by resolve
    databases: dict[tuple[int, str], bytearray] = field(default_factory=dict)  # package databases, per image

    def on_warning(self, warning: ScanWarning) -> None:
        self.warning_count += 1
        if loses_content(warning.code):
            # Counted before the list is capped: a warning dropped from the report still made it incomplete.
            self.not_read[warning.code] = self.not_read.get(warning.code, 0) + 1
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(warning)
        elif len(self.warnings) == MAX_WARNINGS:
            self.warnings.append(
                ScanWarning("limit.warnings", f"over MAX_WARNINGS ({MAX_WARNINGS}) warnings; the rest dropped")
            )

    def on_progress(self, consumed: int) -> None:
        self.bytes_scanned += consumed
        if self.progress is not None:
            self.progress(consumed)

    def match(self, contents: Iterable[Content], image_key: str | None) -> None:
        for content in contents:
            if content.layer_index is None:
                self.bytes_scanned += len(content.data)
            elif content.offset == 0:
                self.files.add((image_key, content.layer_index, content.path))
            if content.layer_index is not None and "!" not in content.path and is_database_path(content.path):
                self.buffer_database(content)
            matches, truncated = self.ruleset.match(content)
            if truncated:
                self.warn_truncated(content, image_key)
            if self.stored is not None:
                self.stored.offer(content, matches)
            if not matches:
                continue
            for m in matches:
                self.names.add(m.secret, redact(m.secret))
            self.collector.add(content, matches)

    def warn_truncated(self, content: Content, image_key: str | None) -> None:
        """The rules stopped examining `content` part way: a secret after that point would go unseen."""
        key = (image_key, content.layer_index, content.path)
        if key == self.last_truncated:
            return  # the next chunk of a file already reported: one warning per file is enough
        self.last_truncated = key
        self.on_warning(
            ScanWarning(
                "limit.matches",
                f"more than {self.ruleset.max_hits} rule trigger hits in the {len(content.data)}-byte block at"
                f" byte {content.offset}; the rest of that block (and of any later block as dense) was not examined",
                layer_index=content.layer_index,
                path=content.path,
            )
        )

    def emit_stored(self, content: Content, matches: Sequence[Match]) -> None:
        for m in matches:
            self.names.add(m.secret, redact(m.secret))
        self.collector.add(content, matches)

    def resolve(self, layers: Sequence[LayerInfo] | None, resolver: LocationResolver | None) -> None:
        if self.stored is not None:
            self.stored.flush()  # every lookup answered before the image's findings are resolved
        self.keep(self.attribute(self.collector.resolve(layers, resolver)))

    def buffer_database(self, content: Content) -> None:
        """Keep a package database's bytes until the image is walked: ownership may arrive after the file."""
        assert content.layer_index is not None
        buf = self.databases.setdefault((content.layer_index, content.path), bytearray())
        # Chunks overlap; append only what is past what we hold, up to one byte over the bound so the parser
        # sees (and warns about) an oversized database.
        start = len(buf) - content.offset
        if start >= 0 and len(buf) <= MAX_DB_BYTES:
            buf += content.data[start : start + MAX_DB_BYTES + 1 - len(buf)]

    def attribute(self, pairs: Iterable[tuple[Finding, str | None]]) -> Iterator[tuple[Finding, str | None]]:
        """Give each finding its origin and confidence, from every package database the image held."""
        owners = self.owners
        for (layer, path), data in self.databases.items():

            def warn(code: str, message: str, layer: int = layer, path: str = path) -> None:
                self.on_warning(ScanWarning(code, message, layer_index=layer, path=path))

            owners.feed(path, bytes(data), layer, warn)
        self.databases.clear()
        self.owners = OwnershipIndex()
        for finding, baseline_id in pairs:
            if finding.layer_index is None:
                yield finding, baseline_id  # the image config: the application's own
                continue
            path = file_of(finding.path)
            origin = owners.origin_of(path)
            kind = path_kind(path)
            level = confidence(origin, kind)
            if finding.documentation_example and (kind is not PathKind.APPLICATION or origin != APPLICATION):
                level = Confidence.LOW  # an example credential where examples live; elsewhere it counts
            yield replace(finding, origin=origin, confidence=level), baseline_id

    def keep(self, pairs: Iterable[tuple[Finding, str | None]]) -> None:
        for finding, baseline_id in pairs:
            shown = finding
            if finding.rule_id == STORED_RULE_ID and self.stored is not None:
                # Each stored-secret finding names its own secret versions, not one text per rule.
                shown = replace(finding, description=self.stored.descriptions.get(finding.fingerprint, ""))
            self.resolved.setdefault(identity(shown), (shown, baseline_id))

    def findings(self) -> list[tuple[Finding, str | None]]:
        """Every finding with its name redacted, sorted. De-duplicated before redaction, so two places whose
        names differ only by a secret stay two findings."""
        named = [(replace(f, path=self.names(f.path)), b) for f, b in self.resolved.values()]
        return sorted(named, key=lambda pair: sort_key(pair[0]))

    def final_warnings(self) -> Iterator[ScanWarning]:
        for w in self.warnings:
            yield replace(w, message=self.names(w.message), path=None if w.path is None else self.names(w.path))

    def final_layers(self) -> Iterator[LayerSummary]:
        for layer, platform in self.layers:
            yield LayerSummary(
                index=layer.index,
                diff_id=layer.diff_id or None,
                created_by=self._shown_created_by(layer.created_by),
                platform=platform,
            )

    def scan_source(self, ref: str, options: ScanOptions) -> None:
        with open_source(
            ref,
            platform=options.platform,
            creds=options.creds,
            docker_config=options.docker_config,
            limits=options.limits,
            insecure_registry=options.insecure_registry,
        ) as source:
            if source.tree is not None:
                self.scan_plain(source.tree, options.limits)
                return
            for image in source.images():
                self.image_count += 1
                self.layer_count += len(image.layers)
                index = LayerIndex()
                contents = walk_image(
                    image,
                    limits=options.limits,
                    index=index,
                    on_warning=self.on_warning,
                    on_progress=self.on_progress,
                )
                self.match(contents, image.platform)
                self.resolve(image.layers, index.location_of)
                self.layers.extend((layer, image.platform) for layer in image.layers)

    def scan_plain(self, path: Path, limits: ScanLimits) -> None:
        contents = walk_path(path, limits=limits, on_warning=self.on_warning, on_progress=self.on_progress)
        self.match(contents, None)
        self.resolve(None, None)
        self.image_count = 0
        self.layer_count = 0

    def _shown_created_by(self, text: str | None) -> str | None:
        if text is None:
            return None
        # Redact before cutting, so a secret across the cut leaves none of its characters behind.
        shown = self.names.head(text, MAX_CREATED_BY_CHARS + 1)
        if len(shown) > MAX_CREATED_BY_CHARS:
            shown = shown[: MAX_CREATED_BY_CHARS - 1] + "…"
        return shown
