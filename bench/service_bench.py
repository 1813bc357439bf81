"""Service benchmark: secretsvc's get, put and Transit encrypt as ratios to a plain gRPC echo server.

One run, on loopback, measures the echo server's unary call rate for the payload sizes used (the ceiling),
then GetSecret and PutSecret of 1 KiB values at concurrency 1, 16 and 64 and Transit Encrypt of 1 KiB and
1 MiB, each reported as ops/s, p50 and p99 latency, server CPU per call, and the ratio to echo for the same
payload and concurrency. Results go to stdout as a table with a target check, and to bench/out/ as JSON.

Run: .venv/bin/python bench/service_bench.py [--duration 5] [--warmup 1] [--strict]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing
import os
import platform
import random
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from queue import Empty
from typing import Any

import grpc
import loadgen
import procs
from loadgen import Case, Stats, WorkerResult, WorkerSpec

from secretsvc.v1 import secrets_pb2, secrets_pb2_grpc, transit_pb2, transit_pb2_grpc

KIB = 1024
MIB = 1024 * 1024
MAX_DURATION_S = 600.0
MAX_GET_PATHS = 100_000
SPAWN_TIMEOUT_S = 60.0
POPULATE_THREADS = 8
OUT_DIR = procs.BENCH_DIR / "out"

# Each echo baseline runs right before the cases compared with it, so slow drift in the machine's load (other
# processes on a shared box) hits both sides of a ratio alike.
DEFAULT_CASES = (
    Case("echo", KIB, 1), Case("get", KIB, 1), Case("put", KIB, 1), Case("encrypt", KIB, 1),
    Case("echo", KIB, 16), Case("get", KIB, 16), Case("put", KIB, 16), Case("encrypt", KIB, 16),
    Case("echo", KIB, 64), Case("get", KIB, 64), Case("put", KIB, 64), Case("encrypt", KIB, 64),
    Case("echo", MIB, 1), Case("encrypt", MIB, 1),
    Case("echo", MIB, 4), Case("encrypt", MIB, 4),
)
MAX_SERVER_ENV = 32


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: Case
    stats: Stats
    client_processes: int
    server_user_ms_per_op: float
    server_sys_ms_per_op: float
    server_minor_faults_per_op: float
    client_cpu_ms_per_op: float
    loadavg_1m: float  # at the end of the case: how busy the machine was besides us
    ratio_to_echo: float  # nan for the echo cases themselves

    @property
    def server_cpu_ms_per_op(self) -> float:
        return self.server_user_ms_per_op + self.server_sys_ms_per_op


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    kind: str
    payload: int
    concurrency: int
    min_ratio: float
    max_p99_ms: float | None = None


TARGETS = (
    Target("get 1KiB c16 >= 0.5 x echo, p99 < 20 ms", "get", KIB, 16, 0.5, 20.0),
    Target("put 1KiB c16 >= 0.3 x echo", "put", KIB, 16, 0.3),
    Target("encrypt 1MiB c1 >= 0.7 x echo", "encrypt", MIB, 1, 0.7),
    Target("encrypt 1MiB c4 >= 0.7 x echo", "encrypt", MIB, 4, 0.7),
)


@dataclass(frozen=True, slots=True)
class Verdict:
    target: Target
    passed: bool
    ratio: float
    p99_ms: float


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per case (default 5)")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each case (default 1)")
    p.add_argument("--workers", type=int, default=16, help="server worker threads, both servers (default 16)")
    p.add_argument("--client-procs", type=int, default=2,
                   help="client processes for concurrency >= 4 (default 2; concurrency 1 always uses one)")
    p.add_argument("--get-paths", type=int, default=1000, help="secrets pre-populated for get (default 1000)")
    p.add_argument("--only", default="", help="comma-separated case kinds to run (echo always runs)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=OUT_DIR, help="directory for the JSON result")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                   help="environment for both servers, e.g. malloc tunables (repeatable)")
    args = p.parse_args(argv)
    if len(args.server_env) > MAX_SERVER_ENV or not all(
        "=" in kv and kv.split("=", 1)[0].isidentifier() for kv in args.server_env
    ):
        p.error(f"--server-env takes NAME=VALUE, at most {MAX_SERVER_ENV} times")
    if not 0 < args.duration <= MAX_DURATION_S or not 0 <= args.warmup <= MAX_DURATION_S:
        p.error(f"--duration must be in (0, {MAX_DURATION_S}] and --warmup in [0, {MAX_DURATION_S}]")
    if not 1 <= args.get_paths <= MAX_GET_PATHS:
        p.error(f"--get-paths must be 1..{MAX_GET_PATHS}")
    if not 1 <= args.client_procs <= loadgen.MAX_PROCESSES:
        p.error(f"--client-procs must be 1..{loadgen.MAX_PROCESSES}")
    kinds = {k for k in args.only.split(",") if k}
    if unknown := kinds - set(loadgen.KINDS):
        p.error(f"--only: unknown kinds {', '.join(sorted(unknown))}; known: {', '.join(loadgen.KINDS)}")
    return args


def _worker_main(spec: WorkerSpec, ready: Any, results: Any) -> None:
    try:
        results.put((spec.process_index, loadgen.run_worker(spec, ready)))
    except Exception as exc:  # any failure must reach the parent, or it waits on the barrier
        ready.abort()
        results.put((spec.process_index, f"{type(exc).__name__}: {exc}"))


def run_case(case: Case, server: procs.ServerProc, token: str | None, args: argparse.Namespace, *,
             tls: loadgen.Tls | None = None) -> CaseResult:
    """Run one case against `server` and read the server's CPU use over the window. `token` None sends no
    credentials; `tls` makes the channels TLS. `args` gives warmup, duration, client_procs, seed, get_paths."""
    ctx = multiprocessing.get_context("spawn")
    threads = loadgen.split_concurrency(case.concurrency, args.client_procs if case.concurrency >= 4 else 1)
    ready = ctx.Barrier(len(threads) + 1)
    queue = ctx.Queue()
    specs = [WorkerSpec(case=case, target=server.target, token=token, process_index=i, threads=t,
                        warmup_s=args.warmup, duration_s=args.duration, seed=args.seed, get_paths=args.get_paths,
                        tls=tls)
             for i, t in enumerate(threads)]
    workers = [ctx.Process(target=_worker_main, args=(s, ready, queue), daemon=True) for s in specs]
    for w in workers:
        w.start()
    try:
        try:
            ready.wait(timeout=SPAWN_TIMEOUT_S)
        except threading.BrokenBarrierError:
            # A client process failed before the start line; it reported why on the queue.
            try:
                index, why = queue.get(timeout=SPAWN_TIMEOUT_S)
            except Empty:
                index, why = -1, "no report (timed out or died)"
            raise RuntimeError(f"client process {index} of {case.label} failed: {why}") from None
        time.sleep(args.warmup)
        before = procs.usage(server.pid)
        time.sleep(args.duration)
        used = procs.usage(server.pid).minus(before)
        results: list[WorkerResult] = []
        for _ in workers:
            index, got = queue.get(timeout=SPAWN_TIMEOUT_S + args.duration)
            if isinstance(got, str):
                raise RuntimeError(f"client process {index} of {case.label} failed: {got}")
            results.append(got)
    finally:
        for w in workers:
            w.join(timeout=10)
            if w.is_alive():
                w.terminate()
    server.check_alive()
    stats = loadgen.summarize(results, args.duration)
    ops = max(stats.ops, 1)
    return CaseResult(case=case, stats=stats, client_processes=len(threads),
                      server_user_ms_per_op=used.user_s * 1000 / ops,
                      server_sys_ms_per_op=used.sys_s * 1000 / ops,
                      server_minor_faults_per_op=used.minor_faults / ops,
                      client_cpu_ms_per_op=sum(r.cpu_s for r in results) * 1000 / ops,
                      loadavg_1m=os.getloadavg()[0], ratio_to_echo=math.nan)


def with_ratios(results: Sequence[CaseResult]) -> list[CaseResult]:
    echo = {(r.case.payload, r.case.concurrency): r.stats.ops_per_s for r in results if r.case.kind == "echo"}
    out = []
    for r in results:
        base = echo.get((r.case.payload, r.case.concurrency), math.nan)
        ratio = math.nan if r.case.kind == "echo" or not base else r.stats.ops_per_s / base
        out.append(dataclasses.replace(r, ratio_to_echo=ratio))
    return out


def check_targets(results: Sequence[CaseResult]) -> list[Verdict]:
    """One verdict per target whose case ran; a missing echo baseline counts as a miss."""
    by_case = {(r.case.kind, r.case.payload, r.case.concurrency): r for r in results}
    verdicts = []
    for t in TARGETS:
        r = by_case.get((t.kind, t.payload, t.concurrency))
        if r is None:
            continue
        ok = r.ratio_to_echo >= t.min_ratio and r.stats.errors == 0
        if t.max_p99_ms is not None:
            ok = ok and r.stats.p99_ms < t.max_p99_ms
        verdicts.append(Verdict(t, ok, r.ratio_to_echo, r.stats.p99_ms))
    return verdicts


def _fmt(x: float, spec: str) -> str:
    return "-" if math.isnan(x) else format(x, spec)


def print_table(results: Sequence[CaseResult], verdicts: Sequence[Verdict]) -> None:
    header = (f"{'case':<18}{'ops/s':>7}{'p50 ms':>8}{'p99 ms':>8}{'x echo':>7}"
              f"{'srv usr+sys ms/op':>19}{'faults/op':>10}{'cli ms/op':>10}{'load':>6}{'errors':>7}")
    print(header)
    print("-" * len(header))
    for r in results:
        s = r.stats
        cpu = f"{r.server_user_ms_per_op:.2f}+{r.server_sys_ms_per_op:.2f}"
        print(f"{r.case.label:<18}{s.ops_per_s:>7.0f}{_fmt(s.p50_ms, '.2f'):>8}{_fmt(s.p99_ms, '.2f'):>8}"
              f"{_fmt(r.ratio_to_echo, '.2f'):>7}{cpu:>19}{r.server_minor_faults_per_op:>10.0f}"
              f"{r.client_cpu_ms_per_op:>10.2f}{r.loadavg_1m:>6.1f}{s.errors:>7}"
              + (f"  first error: {s.first_error}" if s.errors else ""))
    print()
    for v in verdicts:
        extra = f", p99 {v.p99_ms:.1f} ms" if v.target.max_p99_ms is not None else ""
        print(f"{'PASS' if v.passed else 'MISS'}  {v.target.name}: ratio {_fmt(v.ratio, '.2f')}{extra}")


def setup_data(target: str, token: str, get_paths: int, seed: int) -> None:
    """Create the Transit key and the secrets the get cases read (1 KiB each, random bytes)."""
    md = (("authorization", f"Bearer {token}"),)
    rng = random.Random(seed)
    values = [rng.randbytes(KIB) for _ in range(get_paths)]
    with grpc.insecure_channel(target, options=loadgen.channel_options()) as channel:
        transit = transit_pb2_grpc.TransitStub(channel)  # type: ignore[no-untyped-call]
        transit.CreateKey(transit_pb2.CreateKeyRequest(name=loadgen.TRANSIT_KEY), metadata=md, timeout=30)
        secrets = secrets_pb2_grpc.SecretsStub(channel)  # type: ignore[no-untyped-call]

        def put(i: int) -> None:
            ref = secrets_pb2.SecretRef(namespace=loadgen.NAMESPACE, path=loadgen.GET_PATH_FORMAT.format(i))
            secrets.PutSecret(secrets_pb2.PutSecretRequest(ref=ref, value=values[i]), metadata=md, timeout=30)

        with ThreadPoolExecutor(POPULATE_THREADS) as pool:
            list(pool.map(put, range(get_paths)))


def machine_note() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "loadavg_at_start": os.getloadavg(),
    }


def write_json(out_dir: Path, args: argparse.Namespace, machine: dict[str, Any],
               results: Sequence[CaseResult], verdicts: Sequence[Verdict]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = out_dir / f"service_bench-{stamp}.json"
    doc = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {**machine, "loadavg_at_end": os.getloadavg()},
        "settings": {"duration_s": args.duration, "warmup_s": args.warmup, "server_workers": args.workers,
                     "client_procs": args.client_procs, "get_paths": args.get_paths, "seed": args.seed,
                     "server_env": args.server_env},
        "cases": [{**asdict(r), "label": r.case.label, "server_cpu_ms_per_op": r.server_cpu_ms_per_op}
                  for r in results],
        "targets": [{"name": v.target.name, "passed": v.passed, "ratio": v.ratio, "p99_ms": v.p99_ms}
                    for v in verdicts],
    }
    # NaN is not JSON; a missing ratio is null.
    text = json.dumps(doc, indent=2, default=str).replace("NaN", "null")
    path.write_text(text + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    kinds = {k for k in args.only.split(",") if k} | {"echo"} if args.only else set(loadgen.KINDS)
    cases = [c for c in DEFAULT_CASES if c.kind in kinds]
    machine = machine_note()
    results: list[CaseResult] = []
    env = dict(kv.split("=", 1) for kv in args.server_env)
    with tempfile.TemporaryDirectory(prefix="secretsvc-bench-") as tmp:
        workdir = Path(tmp)
        echo = procs.start_echo(workdir, args.workers, env)
        try:
            svc, token = procs.start_secretsvc(workdir, args.workers, env)
            try:
                setup_data(svc.target, token, args.get_paths, args.seed)
                for case in cases:
                    server = echo if case.kind == "echo" else svc
                    print(f"running {case.label} ...", file=sys.stderr, flush=True)
                    results.append(run_case(case, server, token, args))
            finally:
                svc.stop()
        finally:
            echo.stop()
    results = with_ratios(results)
    verdicts = check_targets(results)
    print_table(results, verdicts)
    path = write_json(args.out, args, machine, results, verdicts)
    print(f"\nresults written to {path}")
    return 1 if args.strict and not all(v.passed for v in verdicts) else 0


if __name__ == "__main__":
    sys.exit(main())
