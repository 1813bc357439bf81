"""How the rule engine scales with the number of rules: the built-in rules against ten times as many.

The 10x set is the built-in rules plus nine times as many synthetic ones, written as a rule file and read
by the real loader, in the shapes the real rules have: a fake vendor prefix (a keyword) followed by a
random body of a real alphabet and length, a token shape as a `trigger`, a secret assigned to a
vendor-named key, some with entropy, context or a checksum validator. Every synthetic keyword and trigger
is checked against the noise and replaced if it occurs there, so the noise fires the same built-in rules in
both runs and the difference is what the extra rules cost: a larger Hyperscan database.

The noise is real files of this machine (`/usr/lib/python3*`, `/usr/share/doc`), each one `Content`,
binaries as raw bytes, scanned with `RuleSet.scan` as docs/scan-rules.md's "Engine and speed" measures it.
CPU time of the scanning process, best of `--repeat` runs, the two sets alternating.

    .venv/bin/python bench/rules_scale_bench.py              # ~200 MB of noise, 5 runs each
    .venv/bin/python bench/rules_scale_bench.py --mb 50 --repeat 3

Prints MB/s of each set and their ratio (target: the 10x set loses at most 15%) and writes JSON to
bench/out/. No credential-shaped value is written anywhere: example templates are filled at check time.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from secretsvc.scan.model import Content, Location
from secretsvc.scan.rules import RuleSet
from secretsvc.scan.rules.engine import TriggerEngine, build_engine
from secretsvc.scan.rules.loader import LoadedRule, builtin_rules, keyword_trigger, parse_rules
from secretsvc.scan.rules.selfcheck import check_examples

MB = 1_000_000
NOISE_GLOBS = ("/usr/lib/python3*", "/usr/share/doc")
MAX_NOISE_FILE_BYTES = 16 * 1024 * 1024
OUT = Path(__file__).resolve().parent / "out"
TARGET_LOSS = 0.15
SCALE = 10

# Bodies real tokens have: (placeholder for the examples, regex class, lengths).
BODIES = (
    ("alnum", "[A-Za-z0-9]", (32, 36, 40, 48)),
    ("hex", "[a-f0-9]", (32, 40, 64)),
    ("b64url", "[A-Za-z0-9_-]", (32, 43, 64)),
    ("lowernum", "[a-z0-9]", (24, 32, 40)),
    ("uppernum", "[A-Z0-9]", (20, 26, 32)),
)


# -- the noise ---------------------------------------------------------------------------------------------


def noise(limit_bytes: int) -> list[Content]:
    """Real files in a fixed order until `limit_bytes`, each one `Content` (raw bytes, as the doc measures)."""
    out: list[Content] = []
    total = 0
    for root in sorted(p for g in NOISE_GLOBS for p in glob.glob(g)):
        for path in _files(Path(root)):
            try:
                size = path.stat().st_size
                if not 0 < size <= MAX_NOISE_FILE_BYTES:
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            out.append(Content(data=data, path=str(path).lstrip("/"), layer_index=0, location=Location.FILE,
                               binary=b"\0" in data[:8192]))  # fmt: skip
            total += len(data)
            if total >= limit_bytes:
                return out
    return out


def _files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                yield path


# -- the synthetic rules -----------------------------------------------------------------------------------


def _word(rng: random.Random, n: int) -> str:
    # Consonant-heavy letters: vendor-like, yet with no English word for the noise to contain.
    return "".join(rng.choice("bcdfghjkmnpqrstvwxz") for _ in range(n))


def vendors(count: int, rng: random.Random, contents: Sequence[Content]) -> list[tuple[str, str]]:
    """`count` distinct (vendor name, token prefix) pairs, neither of which occurs in the noise."""
    used: set[str] = set()
    out: list[tuple[str, str]] = []
    while len(out) < count:
        batch: list[tuple[str, str]] = []
        while len(batch) < (count - len(out)) * 5 // 4 + 8:
            vendor = _word(rng, rng.choice((6, 7, 8)))
            prefix = vendor[: rng.choice((3, 4, 5))] + rng.choice(("_", "-", "_live_", "pat_", "_sk_"))
            if vendor not in used and prefix not in used:
                used |= {vendor, prefix}
                batch.append((vendor, prefix))
        present = present_in(contents, [w for pair in batch for w in pair])
        out += [pair for pair in batch if not present & set(pair)][: count - len(out)]
    return out


def synthetic_rules_toml(pairs: Sequence[tuple[str, str]], rng: random.Random) -> str:
    """One rule of a realistic shape per (vendor, prefix)."""
    tables = []
    for i, (vendor, prefix) in enumerate(pairs):
        placeholder, cls, lengths = rng.choice(BODIES)
        n = rng.choice(lengths)
        esc = prefix.replace("-", "\\-")
        kind = i % 10
        extra = ""
        if kind < 6:  # a prefixed token, found by its prefix
            keywords = [prefix]
            pattern = f"(?<![A-Za-z0-9_-])(?P<secret>{esc}{cls}{{{n}}})(?![A-Za-z0-9_-])"
            positive = [f"{vendor.upper()}_TOKEN={prefix}{{{placeholder}:{n}}}"]
            negative = [f"{vendor.upper()}_TOKEN={prefix}{{{placeholder}:{n // 2}}}"]
            if kind < 2:
                extra = "min_entropy = 3.0\n"
        elif kind < 8:  # a token shape as the trigger (the prefix alone is too short to be a keyword)
            keywords = [prefix]
            extra = f"trigger = '{esc}{cls}{{{n}}}'\n"
            pattern = f"(?<![A-Za-z0-9_-])(?P<secret>{esc}{cls}{{{n}}})(?![A-Za-z0-9_-])"
            positive = [f'"{vendor}": "{prefix}{{{placeholder}:{n}}}"']
            negative = [f'"{vendor}": "{prefix}{{{placeholder}:{n - 4}}}"']
        elif kind < 9:  # a bare secret assigned to a vendor-named key
            keywords = [vendor]
            pattern = (
                f"(?i:{vendor}[a-z0-9_.-]{{0,20}}?(?:secret|token|key)[a-z0-9_.-]{{0,8}})"
                f"[\"']?[ \\t]{{0,4}}(?::=|=|:)[ \\t]{{0,4}}[\"']?(?P<secret>{cls}{{{n}}})(?![A-Za-z0-9_-])"
            )
            extra = "min_entropy = 2.5\n"
            positive = [f"{vendor.upper()}_API_SECRET={{{placeholder}:{n}}}"]
            negative = [f"{vendor.upper()}_API_NAME={{{placeholder}:{n}}}"]
        else:  # a prefixed token that needs its vendor's name nearby
            keywords = [prefix]
            pattern = f"(?<![A-Za-z0-9_-])(?P<secret>{esc}{cls}{{{n}}})(?![A-Za-z0-9_-])"
            extra = f'context = ["{vendor}"]\ncontext_bytes = 128\n'
            positive = [f"{vendor}:\n  token: {prefix}{{{placeholder}:{n}}}"]
            negative = [f"other:\n  token: {prefix}{{{placeholder}:{n}}}"]
        tables.append(
            "[[rule]]\n"
            f'id = "synthetic-{i}-{vendor}"\n'
            f'family = "Synthetic {vendor.capitalize()}"\n'
            f'severity = "{rng.choice(("medium", "high", "critical"))}"\n'
            f'description = "Synthetic {vendor} token for the scale benchmark"\n'
            f"keywords = {json.dumps(keywords)}\n"
            f"pattern = '''{pattern}'''\n"
            f"{extra}"
            "[rule.examples]\n"
            f"positive = {json.dumps(positive)}\n"
            f"negative = {json.dumps(negative)}\n"
        )
    return "\n".join(tables)


def present_in(contents: Sequence[Content], words: Sequence[str]) -> set[str]:
    """The words that occur in the noise, case-insensitively (as keywords match): one Hyperscan pass."""
    import hyperscan

    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    flags = hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH
    db.compile(expressions=[keyword_trigger([w]).encode() for w in words], ids=list(range(len(words))),
               elements=len(words), flags=[flags] * len(words))  # fmt: skip
    scratch = hyperscan.Scratch(db)
    found: set[int] = set()

    def on_hit(ident: int, *_: object) -> None:
        found.add(ident)

    for c in contents:
        db.scan(c.data, match_event_handler=on_hit, scratch=scratch)
    return {words[i] for i in found}


# -- measuring ---------------------------------------------------------------------------------------------


def scan_all(rules: RuleSet, contents: Sequence[Content]) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, matches) of one pass over the noise."""
    cpu, wall = time.process_time(), time.perf_counter()
    found = 0
    for c in contents:
        found += len(rules.scan(c))
    return time.process_time() - cpu, time.perf_counter() - wall, found


def trigger_pass(engine: TriggerEngine, contents: Sequence[Content]) -> float:
    """CPU seconds of the Hyperscan pass alone (no confirmation), the part the extra rules make larger."""
    cpu = time.process_time()
    for c in contents:
        engine.hits(c.data)
    return time.process_time() - cpu


def engine_of(rules: Sequence[LoadedRule]) -> TriggerEngine:
    return build_engine([(d.trigger, d.caseless, d.multiline) for r in rules for d in r.rule.detectors], cache=None)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=200, help="noise to scan, in MB (default 200)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each set; the fastest counts (default 5)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the synthetic rules (default 1)")
    ap.add_argument("--check-examples", type=int, default=60, help="synthetic rules whose examples are checked")
    ap.add_argument("--strict", action="store_true", help="exit 1 when the 10x set loses more than 15%%")
    args = ap.parse_args(argv)

    contents = noise(int(args.mb * MB))
    total = sum(len(c.data) for c in contents)
    print(f"noise: {total / MB:.0f} MB in {len(contents)} files from {', '.join(NOISE_GLOBS)}")

    builtin = list(builtin_rules())
    extra_count = (SCALE - 1) * len(builtin)
    started = time.perf_counter()
    rng = random.Random(args.seed)
    text = synthetic_rules_toml(vendors(extra_count, rng, contents), rng)
    synthetic = parse_rules(text, "synthetic.toml")
    load_s = time.perf_counter() - started
    print(f"rules: {len(builtin)} built-in, {len(synthetic)} synthetic ({len(text) / 1e6:.1f} MB of TOML, "
          f"generated and loaded in {load_s:.1f} s)")  # fmt: skip

    one = RuleSet([r.rule for r in builtin])
    started = time.process_time()
    ten = _uncached(lambda: RuleSet([r.rule for r in (*builtin, *synthetic)]))
    compile_s = time.process_time() - started
    sample: list[LoadedRule] = synthetic[: args.check_examples]
    failures = check_examples(ten, sample, seeds=(1,))
    for f in failures[:5]:
        print(f"  synthetic example failed: {f}")
    print(f"10x set compiled in {compile_s:.2f} s CPU (no cache); examples of {len(sample)} synthetic rules: "
          f"{len(failures)} failures")  # fmt: skip

    runs: dict[str, list[tuple[float, float, int]]] = {"1x": [], "10x": []}
    passes: dict[str, list[float]] = {"1x": [], "10x": []}
    engines = {"1x": engine_of(builtin), "10x": engine_of([*builtin, *synthetic])}
    for i in range(args.repeat):
        for name, rules in (("1x", one), ("10x", ten)) if i % 2 == 0 else (("10x", ten), ("1x", one)):
            runs[name].append(scan_all(rules, contents))
            passes[name].append(trigger_pass(engines[name], contents))
    best = {name: min(r[0] for r in rs) for name, rs in runs.items()}
    mbs = {name: total / MB / cpu for name, cpu in best.items()}
    trigger_mbs = {name: total / MB / min(ps) for name, ps in passes.items()}
    found = {name: rs[0][2] for name, rs in runs.items()}
    ratio = mbs["10x"] / mbs["1x"]
    loss = 1 - ratio
    ok = loss <= TARGET_LOSS
    print(f"{'set':<5} {'rules':>6} {'triggers':>9} {'best CPU s':>11} {'MB/s':>8} {'matches':>8} {'HS pass MB/s':>13}")
    for name, rules in (("1x", one), ("10x", ten)):
        triggers = sum(len(r.rule.detectors) for r in (builtin if name == "1x" else (*builtin, *synthetic)))
        print(f"{name:<5} {len(rules.rules):>6} {triggers:>9} {best[name]:>11.2f} {mbs[name]:>8.0f} {found[name]:>8}"
              f" {trigger_mbs[name]:>13.0f}")  # fmt: skip
    verdict = "met" if ok else "MISSED"
    print(f"10x / 1x throughput: {ratio:.3f} (loss {loss:.1%}; target <= {TARGET_LOSS:.0%}: {verdict})")

    OUT.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    out = OUT / f"rules_scale_bench-{stamp}.json"
    out.write_text(json.dumps({
        "noise_bytes": total, "noise_files": len(contents), "repeat": args.repeat, "seed": args.seed,
        "rules": {"1x": len(one.rules), "10x": len(ten.rules)},
        "cpu_s": {n: [r[0] for r in rs] for n, rs in runs.items()},
        "wall_s": {n: [r[1] for r in rs] for n, rs in runs.items()},
        "mb_s": mbs, "trigger_pass_mb_s": trigger_mbs, "ratio": ratio, "loss": loss, "target_met": ok, "matches": found,
        "compile_10x_s": compile_s, "synthetic_example_failures": len(failures),
    }, indent=2) + "\n")  # fmt: skip
    print(f"wrote {out}")
    return 1 if args.strict and not ok else 0


def _uncached(build: Callable[[], RuleSet]) -> RuleSet:
    """Build with the on-disk cache off, so the compile time printed is a compile."""
    before = os.environ.get("SECRETSVC_RULE_CACHE")
    os.environ["SECRETSVC_RULE_CACHE"] = "0"
    try:
        return build()
    finally:
        if before is None:
            del os.environ["SECRETSVC_RULE_CACHE"]
        else:
            os.environ["SECRETSVC_RULE_CACHE"] = before


if __name__ == "__main__":
    sys.exit(main())
