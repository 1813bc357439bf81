"""Benchmark of `secretsvc scan` against gitleaks, Kingfisher and detect-secrets, side by side in one run.

Builds (or reuses) the corpus of `scan_corpus.py`, then runs on the same image: ours (the real CLI in a
subprocess), Kingfisher's native docker-archive mode, gitleaks and Kingfisher on the unpacked layers,
gitleaks on the image file through its archive traversal (gitleaks has no image mode), detect-secrets 1.5 on
a sample directory, and `gzip -dc` of the same layers as the physical bound. For each it prints recall per
planted location, decoy hits, other findings, MB/s of uncompressed layer data and peak RSS, with ours as a
ratio to each, checks the targets, and writes the figures (never a secret) as JSON to bench/out/.

Peers are found in `--peers-venv` (default /tmp/peers-venv); see bench/README-scan.md for the install line.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import resource
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scan_corpus as sc  # the corpus generator next to this file

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "bench" / "out"
MB = 1_000_000
#: Shortest reported string credited by containment in a planted value: shorter ones match by accident.
MIN_OVERLAP_CHARS = 8
#: Peer reports are parsed whole; a report larger than this means something went badly wrong.
MAX_REPORT_BYTES = 512 * 1024 * 1024
#: Files the profile summary lists.
PROFILE_TOP = 25

# -- running one tool -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunStats:
    wall_s: float
    user_s: float
    sys_s: float
    max_rss_mb: float
    returncode: int


def run_measured(
    cmd: Sequence[str], *, stdout: Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> RunStats:
    """Run a command to completion; wall time and the peak RSS of it and its waited-for children (wait4)."""
    with stdout.open("wb") as out, (stdout.with_suffix(".stderr")).open("wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, cwd=cwd, env=env)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    return RunStats(wall, ru.ru_utime, ru.ru_stime, ru.ru_maxrss / 1024, proc.returncode)


# -- findings, normalised across tools --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hit:
    """One reported finding: where, and what the tool says it matched (None for ours and detect-secrets)."""

    path: str
    line: int | None
    rule: str
    text: str | None = None
    location: str | None = None  # ours only
    fingerprint: str | None = None  # ours only
    sha1: str | None = None  # detect-secrets only

    def __repr__(self) -> str:
        return f"Hit({self.rule!r}, {self.path!r}:{self.line})"


def _load_json(path: Path) -> object:
    if path.stat().st_size > MAX_REPORT_BYTES:
        raise ValueError(f"{path.name} is larger than MAX_REPORT_BYTES")
    text = path.read_text(errors="replace").strip()
    return json.loads(text) if text else None


def parse_ours(path: Path) -> list[Hit]:
    doc = _load_json(path)
    assert isinstance(doc, dict)
    return [
        Hit(f["path"], f["line"], f["rule_id"], location=f["location"], fingerprint=f["fingerprint"])
        for f in doc["findings"]
    ]


def parse_gitleaks(path: Path) -> list[Hit]:
    doc = _load_json(path) or []
    assert isinstance(doc, list)
    return [Hit(f["File"], f.get("StartLine"), f["RuleID"], text=f.get("Secret") or f.get("Match")) for f in doc]


def parse_kingfisher(path: Path) -> list[Hit]:
    doc = _load_json(path) or {}
    assert isinstance(doc, dict)
    out = []
    for f in doc.get("findings", []):
        fd = f["finding"]
        out.append(Hit(fd["path"].replace(" | ", "!"), fd.get("line"), f["rule"]["id"], text=fd.get("snippet")))
    return out


def parse_detect_secrets(path: Path) -> list[Hit]:
    doc = _load_json(path) or {}
    assert isinstance(doc, dict)
    return [
        Hit(name, f.get("line_number"), f["type"], sha1=f["hashed_secret"])
        for name, found in doc.get("results", {}).items()
        for f in found
    ]


# -- scoring ----------------------------------------------------------------------------------------------


def _norm(s: str) -> str:
    return re.sub(r"\s+|\\n", "", s)


def _texts(item: sc.Planted) -> list[str]:
    return [_norm(t) for t in (item.secret, *item.alts)]


def _overlaps(text: str | None, candidates: Iterable[str]) -> bool:
    if not text:
        return False
    t = _norm(text)
    return any(c in t or (len(t) >= MIN_OVERLAP_CHARS and t in c) for c in candidates)


_LAYER_DIR = re.compile(r"layers/(\d+)/")


def _path_key(item: sc.Planted) -> str:
    return item.path if "!" in item.path else item.file_path


def _path_matches(hit_path: str, key: str, layer_index: int | None) -> bool:
    if not key:
        return False
    m = _LAYER_DIR.search(hit_path)
    if m and layer_index is not None and int(m.group(1)) != layer_index:
        return False
    return hit_path == key or hit_path.endswith(("/" + key, "!" + key))


def _in_span(line: int | None, item: sc.Planted) -> bool:
    return line is not None and item.lines is not None and item.lines[0] <= line <= item.lines[1]


def expected_location(item: sc.Planted) -> str:
    """The location ours should report: a member of a nested archive is a `file`."""
    return "file" if item.location == "nested_archive" else item.location


_TAR_IN_GZIP = re.compile(r"(\.tar\.gz|\.tgz)![^!]*\.tar!")


def ours_path(path: str) -> str:
    """Ours names a tar.gz member `x.tar.gz!x.tar!member` (gzip, then tar); score it as `x.tar.gz!member`."""
    return _TAR_IN_GZIP.sub(r"\1!", path)


def matches_ours(item: sc.Planted, hit: Hit, fps: set[str]) -> bool:
    if hit.fingerprint in fps:
        return True
    return ours_path(hit.path) == item.path and (hit.rule == item.rule_id or _in_span(hit.line, item))


def matches_peer(item: sc.Planted, hit: Hit) -> bool:
    if hit.sha1 is not None:
        hashes = {hashlib.sha1(t.encode()).hexdigest() for t in (item.secret, *item.alts)}  # noqa: S324 - theirs
        if hit.sha1 in hashes:
            return True
    elif _overlaps(hit.text, _texts(item)):
        return True
    return _path_matches(hit.path, _path_key(item), item.layer_index) and _in_span(hit.line, item)


@dataclass(slots=True)
class Score:
    found: Counter[str] = field(default_factory=Counter)
    planted: Counter[str] = field(default_factory=Counter)
    missed: list[tuple[str, str, str]] = field(default_factory=list)  # (location, rule_id, path)
    wrong_location: list[tuple[str, str, str]] = field(default_factory=list)  # ours: (expected, got, path)
    decoy_hits: list[tuple[str, str]] = field(default_factory=list)  # (rule, path)
    other: int = 0
    other_by_rule: Counter[str] = field(default_factory=Counter)
    hits: int = 0

    def recall(self, location: str) -> float | None:
        n = self.planted[location]
        return self.found[location] / n if n else None


def score(
    plan: sc.Plan,
    hits: Sequence[Hit],
    *,
    ours_key: bytes | None,
    locations: Iterable[str] = sc.LOCATIONS,
    in_scope: Callable[[sc.Planted], bool] = lambda _: True,
    check_location: bool = True,
) -> Score:
    """Recall per location, decoy hits and other findings of one run. `ours_key` marks ours (fingerprints)."""
    s = Score(hits=len(hits))
    wanted = set(locations)
    used: set[int] = set()
    for item in plan.planted:
        if item.location not in wanted or not in_scope(item):
            continue
        s.planted[item.location] += 1
        if ours_key is not None:
            fps = {hmac.new(ours_key, t.encode(), hashlib.sha256).hexdigest() for t in (item.secret, *item.alts)}
            idx = [i for i, h in enumerate(hits) if matches_ours(item, h, fps)]
            right = [i for i in idx if not check_location or hits[i].location == expected_location(item)]
            if idx and not right:
                s.wrong_location.append((expected_location(item), str(hits[idx[0]].location), item.path))
            idx = right
        else:
            idx = [i for i, h in enumerate(hits) if matches_peer(item, h)]
        used.update(idx)
        if idx:
            s.found[item.location] += 1
        else:
            s.missed.append((item.location, item.rule_id, item.path))
    for i, h in enumerate(hits):
        if i in used:
            continue
        if _is_decoy_hit(plan, h, ours=ours_key is not None):
            s.decoy_hits.append((h.rule, h.path))
        else:
            s.other += 1
            s.other_by_rule[h.rule] += 1
    return s


def _is_decoy_hit(plan: sc.Plan, hit: Hit, *, ours: bool) -> bool:
    for d in plan.decoys:
        if d.path.startswith("config."):
            if ours:
                if hit.path == d.path:
                    return True
            elif _overlaps(hit.text, [_norm(d.text.split("=", 1)[1])]):
                return True
        elif _path_matches(hit.path, d.path, 0):
            return True
    return False


# -- the runs ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Result:
    name: str
    mode: str  # image, dir, archive, sample, baseline
    stats: RunStats | None
    data_bytes: int
    score: Score | None = None
    note: str = ""
    ref: Result | None = None  # the ours row this row's ratio is taken against (default: the main one)

    @property
    def mb_s(self) -> float | None:
        return self.data_bytes / MB / self.stats.wall_s if self.stats and self.stats.wall_s > 0 else None


def _best(runs: Sequence[RunStats]) -> RunStats:
    """Fastest run's times, with the largest peak RSS of all runs."""
    fastest = min(runs, key=lambda r: r.wall_s)
    return RunStats(fastest.wall_s, fastest.user_s, fastest.sys_s, max(r.max_rss_mb for r in runs), fastest.returncode)


def repeat(n: int, cmd: Sequence[str], out: Path, **kw: object) -> RunStats:
    return _best([run_measured(cmd, stdout=out, **kw) for _ in range(n)])  # type: ignore[arg-type]


def ours_cmd(venv_bin: Path, ref: str, key: bytes) -> list[str]:
    return [
        str(venv_bin / "secretsvc"),
        "scan",
        ref,
        "--format",
        "json",
        "--no-progress",
        "--fingerprint-key",
        key.hex(),
    ]


def gunzip_baseline(blobs: Sequence[Path], work: Path, n: int) -> RunStats:
    """Plain decompression of every layer, one after the other: `gzip -dc` (or `zstd -dc`) to /dev/null."""
    script = " && ".join(f"{'zstd -q' if b.name.endswith('.zst') else 'gzip'} -dc {b} > /dev/null" for b in blobs)
    return repeat(n, ["sh", "-c", script], work / "gunzip.out")


def _warm(paths: Iterable[Path]) -> None:
    """Read inputs once so every tool meets the same (hot) page cache."""
    for p in paths:
        subprocess.run(["sh", "-c", f"find {p} -type f -exec cat {{}} + > /dev/null"], check=True)


def profile_ours(venv_python: Path, ref: str, work: Path) -> list[str]:
    """Ours under cProfile, in process: the top functions by own time and by cumulative time."""
    prof = work / "ours.prof"
    code = "import cProfile, sys; from secretsvc.cli import main; cProfile.run('main(sys.argv[2:])', sys.argv[1])"
    scan_args = ["scan", ref, "--format", "json", "--no-progress", "--output", str(work / "ours-prof.json")]
    subprocess.run([str(venv_python), "-c", code, str(prof), *scan_args], check=False, capture_output=True)
    if not prof.exists():
        return ["(profile run failed)"]
    code = (
        "import pstats, sys; p = pstats.Stats(sys.argv[1]); "
        f"p.sort_stats('tottime').print_stats({PROFILE_TOP}); p.sort_stats('cumulative').print_stats({PROFILE_TOP})"
    )
    out = subprocess.run([str(venv_python), "-c", code, str(prof)], check=True, capture_output=True, text=True)
    return out.stdout.splitlines()


# -- reporting --------------------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "  -  " if x is None else f"{100 * x:5.1f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}x"


SHORT = {
    "file": "file",
    "deleted_file": "deleted",
    "overwritten_file": "overwr",
    "config_env": "env",
    "config_label": "label",
    "config_history": "history",
    "nested_archive": "nested",
}


def print_table(results: Sequence[Result], ours: Result) -> None:
    locs = list(sc.LOCATIONS)
    head = f"{'tool / mode':34} " + " ".join(f"{SHORT[loc]:>7}" for loc in locs)
    head += f" {'decoys':>6} {'other':>6} {'MB/s':>8} {'ours/x':>7} {'cpu s':>7} {'RSS MB':>7}"
    print(head)
    print("-" * len(head))
    for r in results:
        cells = []
        for loc in locs:
            cells.append(f"{_pct(r.score.recall(loc)) if r.score else '  -  ':>7}")
        dec = f"{len(r.score.decoy_hits):>6}" if r.score else f"{'-':>6}"
        oth = f"{r.score.other:>6}" if r.score else f"{'-':>6}"
        mbs = f"{r.mb_s:8.1f}" if r.mb_s else f"{'-':>8}"
        ref = r.ref or ours
        ratio = "" if r.name.startswith("secretsvc") else _ratio(ref.mb_s, r.mb_s)
        cpu = f"{r.stats.user_s + r.stats.sys_s:7.1f}" if r.stats else f"{'-':>7}"
        rss = f"{r.stats.max_rss_mb:7.0f}" if r.stats else f"{'-':>7}"
        print(f"{r.name:34} " + " ".join(cells) + f" {dec} {oth} {mbs} {ratio:>7} {cpu} {rss}")
    print("recall in %, per planted location; '-' where the mode cannot see that location or was not run.")


def _cpu(r: Result) -> float:
    return max(r.stats.user_s + r.stats.sys_s, 1e-6) if r.stats else float("nan")


def check_targets(ours: Result, by_name: dict[str, Result], mem: Result | None) -> list[tuple[str, bool | None, str]]:
    out: list[tuple[str, bool | None, str]] = []
    assert ours.score is not None
    worse = []
    for r in by_name.values():
        if r is ours or r.score is None or r.mode == "sample":
            continue
        for loc in sc.LOCATIONS:
            theirs, mine = r.score.recall(loc), ours.score.recall(loc)
            if theirs is not None and mine is not None and mine < theirs:
                worse.append(f"{loc} vs {r.name}")
    out.append(("recall >= every peer's in every location", not worse, ", ".join(worse) or "ok"))
    full = [loc for loc in sc.LOCATIONS if loc != "file"]
    short = [f"{loc} {_pct(ours.score.recall(loc)).strip()}%" for loc in full if ours.score.recall(loc) != 1.0]
    out.append(("100% in deleted/overwritten/config/nested", not short, ", ".join(short) or "ok"))
    out.append(("no decoy flagged", not ours.score.decoy_hits, f"{len(ours.score.decoy_hits)} decoy hits"))
    for name, factor in (("kingfisher dir (unpacked layers)", 2.0), ("gitleaks dir (unpacked layers)", 5.0)):
        peer = by_name.get(name)
        if peer and peer.mb_s and ours.mb_s:
            got = ours.mb_s / peer.mb_s
            detail = f"{got:.2f}x (by CPU seconds: {_cpu(peer) / _cpu(ours):.2f}x)"
            out.append((f"throughput >= {factor:g}x {name}", got >= factor, detail))
    g = next((r for r in by_name.values() if r.mode == "baseline" and r.ref is None), None)
    if g and g.mb_s and ours.mb_s:
        got = ours.mb_s / g.mb_s
        detail = f"{got:.2f}x (by CPU seconds: {_cpu(g) / _cpu(ours):.2f}x)"
        out.append((f"throughput >= 0.5x {g.name.split(' (')[0]}", got >= 0.5, detail))
    if mem and mem.stats:
        gb = mem.data_bytes / 1e9
        out.append(
            (f"peak RSS < 300 MB on a {gb:.2f} GB image", mem.stats.max_rss_mb < 300, f"{mem.stats.max_rss_mb:.0f} MB")
        )
    else:
        out.append(("peak RSS < 300 MB on a 1 GB image", None, "not run (use --memory-check)"))
    return out


# -- main -------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=float, default=300, help="noise in MB (default 300)")
    ap.add_argument("--seed", type=int, default=20241128)
    ap.add_argument("--compression", choices=sorted(sc.COMPRESSORS), default="gzip", help="of the layers")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/scan-bench"), help="corpus and raw peer reports")
    ap.add_argument("--peers-venv", type=Path, default=Path("/tmp/peers-venv"))
    ap.add_argument("--ours-venv", type=Path, default=ROOT / ".venv")
    ap.add_argument("--repeat", type=int, default=3, help="runs of ours and gunzip; the fastest counts")
    ap.add_argument("--peer-repeat", type=int, default=1, help="runs of each peer (slow); the fastest counts")
    ap.add_argument("--sample-mb", type=float, default=20, help="noise in the detect-secrets sample (MB)")
    ap.add_argument("--only-ours", action="store_true", help="skip the peers (ours and gunzip only)")
    ap.add_argument("--no-detect-secrets", action="store_true")
    ap.add_argument("--memory-check", action="store_true", help="also build a 1 GB image and measure ours' peak RSS")
    ap.add_argument("--memory-size", type=float, default=1000, help="noise in MB for --memory-check")
    ap.add_argument("--profile", action="store_true", help="also run ours under cProfile and print the top functions")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args(argv)

    peers = args.peers_venv / "bin"
    ours_bin = args.ours_venv / "bin"
    if not (ours_bin / "secretsvc").exists():
        ap.error(f"no secretsvc in {ours_bin}")
    if not args.only_ours:
        for tool in ("gitleaks", "kingfisher", "detect-secrets"):
            if not (peers / tool).exists():
                ap.error(f"{tool} not found in {peers}; see bench/README-scan.md for the install line")

    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    plan = sc.make_plan(args.seed)
    t0 = time.perf_counter()
    suffix = "" if args.compression == "gzip" else "-" + args.compression
    base = "zstd -dc" if args.compression == "zstd" else "gunzip -dc"
    corpus = sc.write_corpus(
        plan,
        work / f"corpus{suffix}",
        int(args.size * MB),
        sample_noise_bytes=int(args.sample_mb * MB),
        compression=args.compression,
    )
    stored = sum(b.stat().st_size for b in corpus.layer_blobs)
    print(
        f"corpus: {corpus.total_tar_bytes / MB:.0f} MB uncompressed in {len(corpus.layer_blobs)} "
        f"{args.compression} layers ({stored / MB:.0f} MB stored), {corpus.noise_files} noise files, "
        f"{len(plan.planted)} planted, {len(plan.decoys)} decoys ({time.perf_counter() - t0:.0f} s)"
    )
    image_ref = f"docker-archive:{corpus.image}"
    data = corpus.total_tar_bytes
    key = secrets.token_bytes(32)
    results: list[Result] = []
    raw = work / "reports"
    raw.mkdir(exist_ok=True)

    _warm([corpus.image])
    ours_stats = repeat(args.repeat, ours_cmd(ours_bin, image_ref, key), raw / "ours.json")
    ours = Result(
        "secretsvc scan (docker-archive)",
        "image",
        ours_stats,
        data,
        score(plan, parse_ours(raw / "ours.json"), ours_key=key),
    )
    results.append(ours)
    results.append(
        Result(f"{base} (same layers)", "baseline", gunzip_baseline(corpus.layer_blobs, raw, args.repeat), data)
    )

    if not args.only_ours:
        unpacked = sc.unpack(corpus, work / "unpacked")
        _warm([unpacked.root, corpus.sample_dir])
        offline = ["--no-validate", "--no-update-check", "--no-limits"]
        # Compile Kingfisher's rule database once so its cache, not the compile, is what the timed runs see.
        (work / "kf-warm").mkdir(exist_ok=True)
        (work / "kf-warm" / "a.txt").write_text("warm-up\n")
        subprocess.run(
            [str(peers / "kingfisher"), "scan", str(work / "kf-warm"), *offline, "-q", "-f", "json", "-o", "/dev/null"],
            check=False,
            capture_output=True,
        )
        runs: list[tuple[str, str, list[str], Callable[[Path], list[Hit]], Path | None]] = [
            (
                "kingfisher docker --archive",
                "image",
                [
                    str(peers / "kingfisher"),
                    "scan",
                    "docker",
                    "--archive",
                    str(corpus.image),
                    *offline,
                    "-q",
                    "-f",
                    "json",
                    "-o",
                    str(raw / "kf-img.json"),
                ],
                parse_kingfisher,
                raw / "kf-img.json",
            ),
            (
                "kingfisher dir (unpacked layers)",
                "dir",
                [
                    str(peers / "kingfisher"),
                    "scan",
                    str(unpacked.root),
                    *offline,
                    "-q",
                    "-f",
                    "json",
                    "-o",
                    str(raw / "kf-dir.json"),
                ],
                parse_kingfisher,
                raw / "kf-dir.json",
            ),
            (
                "kingfisher dir, --no-extract-archives",
                "dir",
                [
                    str(peers / "kingfisher"),
                    "scan",
                    str(unpacked.root),
                    *offline,
                    "--no-extract-archives",
                    "-q",
                    "-f",
                    "json",
                    "-o",
                    str(raw / "kf-dir-nx.json"),
                ],
                parse_kingfisher,
                raw / "kf-dir-nx.json",
            ),
            (
                "gitleaks dir (unpacked layers)",
                "dir",
                [
                    str(peers / "gitleaks"),
                    "dir",
                    str(unpacked.root),
                    "--max-archive-depth",
                    "3",
                    "--no-banner",
                    "-l",
                    "error",
                    "--exit-code",
                    "0",
                    "-f",
                    "json",
                    "-r",
                    str(raw / "gl-dir.json"),
                ],
                parse_gitleaks,
                raw / "gl-dir.json",
            ),
            (
                "gitleaks dir image.tar (archives)",
                "archive",
                [
                    str(peers / "gitleaks"),
                    "dir",
                    str(corpus.image),
                    "--max-archive-depth",
                    "5",
                    "--no-banner",
                    "-l",
                    "error",
                    "--exit-code",
                    "0",
                    "-f",
                    "json",
                    "-r",
                    str(raw / "gl-img.json"),
                ],
                parse_gitleaks,
                raw / "gl-img.json",
            ),
        ]
        for name, mode, cmd, parse, report in runs:
            st = repeat(args.peer_repeat, cmd, raw / (name.split()[0] + ".stdout"))
            hits = parse(report) if report and report.exists() else []
            results.append(Result(name, mode, st, data, score(plan, hits, ours_key=None)))
            print(f"  ran {name}: {st.wall_s:.1f} s", flush=True)

        if not args.no_detect_secrets:
            sample_bytes = sum(p.stat().st_size for p in corpus.sample_dir.rglob("*") if p.is_file())
            # The sample is layer 0's planted files as plain files, nested archives included: no config.
            on_sample = {"file", "deleted_file", "overwritten_file", "nested_archive"}

            def sample_loc(it: sc.Planted) -> bool:
                return it.location in on_sample

            st = run_measured(
                [str(peers / "detect-secrets"), "scan", "--all-files", "-n", "."],
                stdout=raw / "ds.json",
                cwd=corpus.sample_dir,
            )
            results.append(
                Result(
                    "detect-secrets 1.5 (sample dir)",
                    "sample",
                    st,
                    sample_bytes,
                    score(plan, parse_detect_secrets(raw / "ds.json"), ours_key=None, in_scope=sample_loc),
                    note="sample",
                )
            )
            st = run_measured(ours_cmd(ours_bin, str(corpus.sample_dir), key), stdout=raw / "ours-sample.json")
            # A plain directory has no layers: every file there is reported as `file`, so location is not checked.
            results.append(
                Result(
                    "secretsvc scan (sample dir)",
                    "sample",
                    st,
                    sample_bytes,
                    score(
                        plan,
                        parse_ours(raw / "ours-sample.json"),
                        ours_key=key,
                        in_scope=sample_loc,
                        check_location=False,
                    ),
                    note="sample",
                )
            )
            results[-2].ref = results[-1]

    mem: Result | None = None
    if args.memory_check:
        big = sc.write_corpus(
            plan,
            work / f"corpus-1g{suffix}",
            int(args.memory_size * MB),
            sample_noise_bytes=0,
            compression=args.compression,
        )
        _warm([big.image])
        st = run_measured(ours_cmd(ours_bin, f"docker-archive:{big.image}", key), stdout=raw / "ours-1g.json")
        mem = Result(
            "secretsvc scan, memory image",
            "image",
            st,
            big.total_tar_bytes,
            score(plan, parse_ours(raw / "ours-1g.json"), ours_key=key),
        )
        g = gunzip_baseline(big.layer_blobs, raw, 1)
        results.append(mem)
        results.append(Result(f"{base} (memory image)", "baseline", g, big.total_tar_bytes, ref=mem))

    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print_table(results, ours)
    sample = [r for r in results if r.mode == "sample"]
    if len(sample) == 2 and sample[0].mb_s and sample[1].mb_s:
        print(
            f"on the detect-secrets sample ({sample[0].data_bytes / MB:.0f} MB of files): ours "
            f"{sample[1].mb_s / sample[0].mb_s:.1f}x detect-secrets' rate"
        )
    _print_misses(ours)
    by_name = {r.name: r for r in results}
    targets = check_targets(ours, by_name, mem)
    print("\ntargets:")
    for what, ok, detail in targets:
        print(f"  {'MET   ' if ok else ('MISSED' if ok is False else 'n/a   ')} {what}: {detail}")
    prof_lines: list[str] = []
    if args.profile:
        try:
            prof_lines = profile_ours(ours_bin / "python", image_ref, raw)
        except subprocess.CalledProcessError as exc:  # the figures above still get written
            prof_lines = [f"(profile failed: exit {exc.returncode})"]
        print("\nprofile of ours (cProfile, in process):")
        print("\n".join(prof_lines))
    _write_json(args, corpus, results, targets, prof_lines)
    return 1 if args.strict and any(ok is False for _, ok, _ in targets) else 0


def _print_misses(ours: Result) -> None:
    assert ours.score is not None
    s = ours.score
    if s.missed:
        print("\nours missed:")
        for loc, rule, path in s.missed:
            print(f"  {loc:17} {rule:32} {path}")
    if s.wrong_location:
        print("ours found but with the wrong location:")
        for exp, got, path in s.wrong_location:
            print(f"  expected {exp}, got {got}: {path}")
    if s.decoy_hits:
        print("ours flagged decoys:")
        for rule, path in s.decoy_hits:
            print(f"  {rule:32} {path}")
    if s.other:
        print(f"ours' other findings (in the noise): {dict(s.other_by_rule.most_common(10))}")


def _write_json(
    args: argparse.Namespace,
    corpus: sc.Corpus,
    results: Sequence[Result],
    targets: Sequence[tuple[str, bool | None, str]],
    prof: Sequence[str],
) -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    doc = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "load_avg": os.getloadavg(), "uname": " ".join(os.uname())},
        "args": {k: str(v) for k, v in vars(args).items()},
        "corpus": {
            "uncompressed_layer_bytes": corpus.total_tar_bytes,
            "layers": len(corpus.layer_blobs),
            "stored_bytes": sum(b.stat().st_size for b in corpus.layer_blobs),
            "noise_files": corpus.noise_files,
        },
        "results": [
            {
                "name": r.name,
                "mode": r.mode,
                "data_bytes": r.data_bytes,
                "mb_s": r.mb_s,
                "wall_s": r.stats.wall_s if r.stats else None,
                "cpu_s": (r.stats.user_s + r.stats.sys_s) if r.stats else None,
                "max_rss_mb": r.stats.max_rss_mb if r.stats else None,
                "returncode": r.stats.returncode if r.stats else None,
                "recall": {loc: r.score.recall(loc) for loc in sc.LOCATIONS} if r.score else None,
                "found": dict(r.score.found) if r.score else None,
                "planted": dict(r.score.planted) if r.score else None,
                "decoy_hits": r.score.decoy_hits if r.score else None,
                "other_findings": r.score.other if r.score else None,
                "missed": r.score.missed if r.score else None,
                "wrong_location": r.score.wrong_location if r.score else None,
            }
            for r in results
        ],
        "targets": [{"target": t, "met": ok, "detail": d} for t, ok, d in targets],
        "profile": list(prof),
        "self_rusage_max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    path = OUT_DIR / f"scan_bench-{stamp}.json"
    path.write_text(json.dumps(doc, indent=1))
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    raise SystemExit(main())
