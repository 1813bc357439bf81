"""The admission webhook under load: AdmissionReview requests per second and latency at concurrency 16.

    .venv/bin/python bench/webhook_bench.py                  # 10 s per case
    .venv/bin/python bench/webhook_bench.py --duration 20 --concurrency 32
    .venv/bin/python bench/webhook_bench.py --client python  # the Python client: pods of 1,000 service accounts

One run starts `secretsvc serve` (a policy binding the pods' service account to the secrets they name) and
`injector webhook` over HTTPS with a development PKI (`secretsvc pki init`), both on loopback, then sends real
AdmissionReview v1 requests for pods with five `secretsvc.io/secret-*` annotations, in three cases:

- checked, every pod: `--access-cache-seconds 0`, so every request makes one CheckAccess call to the service
  (the target's case);
- checked, a rollout: one pod over and over with the default 5 s memory of answers, as a Deployment's burst;
- check off: `--check-access off`, what the webhook costs without the service.

The load generator is h2load (Debian package nghttp2-client: `apt-get install nghttp2-client`), written in C:
one thread holding `--concurrency` HTTP/1.1 keep-alive TLS connections, each sending its next request as soon
as the last is answered (a closed loop), with every request's latency read from its --log-file. It shares the
machine's cores with the webhook and the service, so its CPU is reported beside theirs: about 0.07 ms per
request, where the Python client (`--client python`, the fallback when h2load is missing) takes about 0.3 ms.
h2load does not check the server's certificate; a preflight request through Python's ssl does, and checks
that the answer admits the pod with a patch and no warning.

h2load posts one body over and over, so with it every pod of a case has the same service account (and the same
AdmissionReview uid). That does not make the checked case cheaper than pods of many accounts: the webhook
remembers nothing per account with a cache of 0 s, and the service's policy engine remembers each caller's
resolved policies (up to MAX_CACHED_PRINCIPALS=4096 callers), so once each of 1,000 accounts has been seen it
costs what the only one does. `--client python` sends the pods of 1,000 accounts in turn to show it: the
service's CPU per CheckAccess is the same as with h2load's one account, within the run-to-run noise. The
"CheckAccess/req" column counts the service's audit records of CheckAccess per request: one per pod on the
first case, almost none on the rollout.

Target (issue 8): p99 under 50 ms with the access check, on the first case. Results: stdout and
bench/out/webhook_bench-*.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import re
import resource
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import procs

OUT_DIR = procs.BENCH_DIR / "out"
SECRETS = 5
POLICY = """\
version: 1
policies:
  - name: app
    rules:
      - paths: ["payments/**"]
        capabilities: [read]
        effect: allow
bindings:
  - identity: {kind: serviceaccount, pattern: "payments/*"}
    policies: [app]
"""
SERVICE_ACCOUNTS = 1000  # the Python client's pods, in turn, on the cases that vary them
CLIENT_START_SECONDS = 1.0  # for the Python client's processes to start, before their warm-up
H2LOAD = "h2load"
H2LOAD_MISSING = ("h2load is not installed; on Debian or Ubuntu: apt-get install nghttp2-client "
                  "(or run with --client python)")
# One CheckAccess call leaves one audit record naming this resource (secretsvc/rpc/auditing.py).
CHECK_ACCESS_RECORD = b'"resource":"access-review"'
_H2LOAD_REQUESTS = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed")


def review(number: int, service_account: str = "app") -> bytes:
    annotations = {"secretsvc.io/inject": "true",
                   **{f"secretsvc.io/secret-s{i}": f"payments/bench/s{i}" for i in range(SECRETS)}}
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"generateName": "api-", "namespace": "payments", "annotations": annotations},
           "spec": {"serviceAccountName": service_account,
                    "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 2000},
                    "containers": [{"name": "app", "image": "registry.example/app:1"}]}}
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.UUID(int=number)), "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "namespace": "payments",
        "operation": "CREATE", "userInfo": {"username": "bench"}, "object": pod, "dryRun": False}}).encode()


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    webhook_args: tuple[str, ...]
    vary: bool  # the Python client sends pods of SERVICE_ACCOUNTS accounts in turn (h2load cannot)


CASES = (
    Case("checked, every pod", ("--access-cache-seconds", "0"), vary=True),
    Case("checked, a rollout", (), vary=False),
    Case("check off", ("--check-access", "off"), vary=True),
)


@dataclass(frozen=True, slots=True)
class Measured:
    """What the client saw in the measured window, and the CPU it spent there."""

    latencies_ms: list[float]
    errors: int
    client_cpu_s: float


@dataclass(frozen=True, slots=True)
class Target:
    port: int
    ca: str
    pids: dict[str, int]  # whose CPU to count: webhook, service
    audit_dir: Path


class Window:
    """Server CPU and audited CheckAccess calls from `start()` to `stop()`, the client's measured window."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._before: dict[str, procs.ProcUsage] = {}
        self._checks_before = 0
        self.cpu_s: dict[str, float] = {}
        self.checks = 0

    def start(self) -> None:
        self._before = {who: procs.usage(pid) for who, pid in self._target.pids.items()}
        self._checks_before = audited_checks(self._target.audit_dir)

    def stop(self) -> None:
        for who, pid in self._target.pids.items():
            used = procs.usage(pid).minus(self._before[who])
            self.cpu_s[who] = used.user_s + used.sys_s
        self.checks = audited_checks(self._target.audit_dir) - self._checks_before


def audited_checks(audit_dir: Path) -> int:
    """CheckAccess records in the service's audit log files so far."""
    return sum(path.read_bytes().count(CHECK_ACCESS_RECORD) for path in audit_dir.glob("*") if path.is_file())


def percentile(ordered: Sequence[float], q: float) -> float:
    """The value at rank q% of sorted values (the rank rounded down), NaN when there are none."""
    if not ordered:
        return float("nan")
    return ordered[int(q / 100 * (len(ordered) - 1))]


# -- h2load ------------------------------------------------------------------------------------------------

def parse_h2load_log(text: str) -> tuple[list[float], int]:
    """(latency in ms of each request, how many were not answered 200) from h2load's --log-file, whose lines
    are: start time (us since the epoch), HTTP status, microseconds until the end of the response."""
    latencies: list[float] = []
    not_ok = 0
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) < 3:
            continue
        latencies.append(int(fields[2]) / 1000)
        not_ok += fields[1] != "200"
    return latencies, not_ok


def parse_h2load_failed(summary: str) -> int:
    """h2load's count of failed requests: answered with an error status, or not answered at all."""
    found = _H2LOAD_REQUESTS.search(summary)
    if found is None:
        raise RuntimeError(f"h2load printed no request counts:\n{summary[-2000:]}")
    return int(found.group(5))


def _millis(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"  # h2load's -D takes whole units only


def run_h2load(target: Target, window: Window, args: argparse.Namespace, work: Path, body: bytes) -> Measured:
    body_file, log_file = work / "review.json", work / "h2load-latency.tsv"
    body_file.write_bytes(body)
    log_file.unlink(missing_ok=True)
    command = [H2LOAD, "--h1", "-c", str(args.concurrency), "-t", "1", "-d", str(body_file),
               "-H", "Content-Type: application/json"]
    url = f"https://localhost:{target.port}/mutate"
    # A separate warm-up run, so that the measured run's CPU and log hold the measured requests only.
    subprocess.run([*command, "-D", _millis(args.warmup), url], check=True, capture_output=True)
    window.start()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([*command, "-D", _millis(args.duration), "--log-file", str(log_file), url],
                          check=True, capture_output=True, text=True)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    window.stop()
    latencies, not_ok = parse_h2load_log(log_file.read_text())
    failed = max(not_ok, parse_h2load_failed(done.stdout))
    client_cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    return Measured(latencies, failed, client_cpu)


# -- the Python client (without h2load, or to vary the service account per pod) -----------------------------

def _client(port: int, ca: str, threads: int, start_at: float, end_at: float, vary: bool, seed: int,
            results: Any) -> None:
    """Threads sending back to back until `end_at`; what was sent from `start_at` on is measured (both on the
    machine's monotonic clock, which every process shares)."""
    context = ssl.create_default_context(cafile=ca)
    # One pod over and over (a rollout), or pods of SERVICE_ACCOUNTS different service accounts in turn.
    bodies = [review(i, f"app-{i}" if vary else "app") for i in range(SERVICE_ACCOUNTS if vary else 1)]
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPSConnection("localhost", port, context=context, timeout=30)
        mine: list[float] = []
        failed = 0
        turn = seed
        while (now := time.monotonic()) < end_at:
            turn += 1
            body = bodies[turn % len(bodies)]
            conn.request("POST", "/mutate", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            answer = json.loads(response.read())
            took = time.monotonic() - now
            if now >= start_at:
                if response.status != 200 or not answer["response"]["allowed"]:
                    failed += 1
                mine.append(took * 1000)
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    time.sleep(max(0.0, start_at - time.monotonic()))
    used_before = resource.getrusage(resource.RUSAGE_SELF)
    for t in pool:
        t.join()
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (used.ru_utime + used.ru_stime) - (used_before.ru_utime + used_before.ru_stime)
    results.put((latencies, errors[0], cpu))


def run_python(target: Target, window: Window, args: argparse.Namespace, vary: bool) -> Measured:
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    shares = [args.concurrency // args.client_procs + (i < args.concurrency % args.client_procs)
              for i in range(args.client_procs)]
    # The window opens at the same moment for the clients and for the server's CPU and audit counts.
    start_at = time.monotonic() + CLIENT_START_SECONDS + args.warmup
    clients = [ctx.Process(target=_client, args=(target.port, target.ca, n, start_at, start_at + args.duration,
                                                 vary, 7919 * i, results))
               for i, n in enumerate(shares) if n]
    for c in clients:
        c.start()
    time.sleep(max(0.0, start_at - time.monotonic()))
    window.start()
    latencies: list[float] = []
    errors = 0
    cpu = 0.0
    for _ in clients:
        got, failed, spent = results.get(timeout=args.warmup + args.duration + 120)
        latencies.extend(got)
        errors += failed
        cpu += spent
    window.stop()
    for c in clients:
        c.join(timeout=30)
    return Measured(latencies, errors, cpu)


# -- one case -----------------------------------------------------------------------------------------------

def preflight(port: int, ca: str, body: bytes) -> None:
    """One review with the certificate checked: it must admit the pod with a patch and no warning (a warning
    would say the access check could not be made)."""
    conn = http.client.HTTPSConnection("localhost", port, context=ssl.create_default_context(cafile=ca), timeout=30)
    try:
        conn.request("POST", "/mutate", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    answer = json.loads(raw)["response"] if response.status == 200 else {}
    if not answer.get("allowed") or "patch" not in answer or answer.get("warnings"):
        raise RuntimeError(f"the webhook did not admit the bench's pod cleanly: {response.status} {raw[:500]!r}")


def run_case(case: Case, target: Target, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    body = review(1, "app-1")
    preflight(target.port, target.ca, body)
    window = Window(target)
    if args.client == "h2load":
        measured = run_h2load(target, window, args, work, body)
    else:
        measured = run_python(target, window, args, case.vary)
    ordered = sorted(measured.latencies_ms)
    n = max(1, len(ordered))
    cpu = {f"{who}_cpu_ms_per_request": round(1000 * spent / n, 3) for who, spent in window.cpu_s.items()}
    return {"case": case.name, "client": args.client,
            "service_accounts": SERVICE_ACCOUNTS if args.client == "python" and case.vary else 1,
            "requests": len(ordered), "errors": measured.errors, "per_second": len(ordered) / args.duration,
            "p50_ms": statistics.median(ordered) if ordered else float("nan"), "p99_ms": percentile(ordered, 99),
            "check_access_per_request": round(window.checks / n, 3), **cpu,
            "client_cpu_ms_per_request": round(1000 * measured.client_cpu_s / n, 3)}


def start_webhook(work: Path, service: procs.ServerProc, token_file: Path, pki_dir: Path, extra: Sequence[str]
                  ) -> tuple[subprocess.Popen[bytes], int]:
    port = procs.free_port()
    log = (work / f"webhook-{port}.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "injector.cli", "webhook", "--listen", f"127.0.0.1:{port}",
         "--tls-cert", str(pki_dir / "server.pem"), "--tls-key", str(pki_dir / "server-key.pem"),
         "--agent-image", "registry.example/secretsvc-agent:bench", "--service-addr", service.target,
         "--token-file", str(token_file), "--log-level", "warning", "--max-connections", "256", *extra],
        stdout=log, stderr=subprocess.STDOUT)
    context = ssl.create_default_context(cafile=str(pki_dir / "ca.pem"))
    deadline = time.monotonic() + procs.START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPSConnection("localhost", port, context=context, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return proc, port
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"injector webhook exited {proc.returncode}; see {log.name}")
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("injector webhook did not become ready")


def choose_client(wanted: str, which: Callable[[str], str | None] = shutil.which) -> str | None:
    """The client to use, or None when h2load was asked for and is missing (the caller exits 2)."""
    if wanted == "python" or which(H2LOAD) is not None:
        return wanted if wanted != "auto" else "h2load"
    if wanted == "h2load":
        return None
    print(f"WARNING: {H2LOAD_MISSING}. Falling back to the Python client, which spends about 0.5 ms of CPU per "
          "request on the cores it measures.", file=sys.stderr)
    return "python"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per case (default 10)")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--client", choices=("auto", "h2load", "python"), default="auto",
                   help="the load generator: h2load, or the Python client (threads in --client-procs processes, "
                        f"pods of {SERVICE_ACCOUNTS} service accounts); auto: h2load when installed (default)")
    p.add_argument("--client-procs", type=int, default=2, help="processes of the Python client (default 2)")
    p.add_argument("--out-dir", type=Path, default=OUT_DIR)
    p.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    return p.parse_args(argv)


def _print(cases: Sequence[dict[str, Any]]) -> None:
    print(f"{'case':<20} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'CheckAccess/req':>15} "
          f"{'CPU ms/req:':>11} {'webhook':>7} {'service':>7} {'client':>7} {'cores busy':>10}")
    for c in cases:
        cpu = [c["webhook_cpu_ms_per_request"], c["service_cpu_ms_per_request"], c["client_cpu_ms_per_request"]]
        busy = sum(cpu) * c["per_second"] / 1000
        print(f"{c['case']:<20} {c['per_second']:>7.0f} {c['p50_ms']:>7.1f} {c['p99_ms']:>7.1f} {c['errors']:>6} "
              f"{c['check_access_per_request']:>15.2f} {'':>11} {cpu[0]:>7.2f} {cpu[1]:>7.2f} {cpu[2]:>7.2f} "
              f"{busy:>10.2f}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    client = choose_client(args.client)
    if client is None:
        print(f"webhook_bench: {H2LOAD_MISSING}", file=sys.stderr)
        return 2
    args.client = client
    h2load_version = ""
    if client == "h2load":
        shown = subprocess.run([H2LOAD, "--version"], capture_output=True, text=True, check=False)
        h2load_version = shown.stdout.strip()
    cases = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="webhook-bench-") as tmp:
        work = Path(tmp)
        (work / "policy.yaml").write_text(POLICY)
        service, token = procs.start_secretsvc(work, 16, {"SECRETSVC_POLICY_PATHS": str(work / "policy.yaml")})
        token_file = work / "token"
        token_file.write_text(token)
        pki_dir = work / "pki"
        subprocess.run([sys.executable, "-m", "secretsvc.cli", "pki", "init", "--dir", str(pki_dir)],
                       check=True, capture_output=True)
        webhooks: list[subprocess.Popen[bytes]] = []
        try:
            env_cli = {"SECRETSVC_ADDR": service.target, "SECRETSVC_TOKEN": token}
            for i in range(SECRETS):
                subprocess.run([sys.executable, "-m", "secretsvc.cli", "put", f"payments/bench/s{i}"],
                               input=b"value", check=True, capture_output=True, env={**os.environ, **env_cli})
            for case in CASES:
                proc, port = start_webhook(work, service, token_file, pki_dir, case.webhook_args)
                webhooks.append(proc)
                target = Target(port, str(pki_dir / "ca.pem"), {"webhook": proc.pid, "service": service.pid},
                                work / "data" / "audit")
                cases.append(run_case(case, target, args, work))
                proc.terminate()
                proc.wait(timeout=30)
        finally:
            for proc in webhooks:
                if proc.poll() is None:
                    proc.kill()
            service.stop()
    print(f"client: {client}{' (' + h2load_version + ')' if h2load_version else ''}, concurrency "
          f"{args.concurrency}, {os.cpu_count()} cores, load average before {load_before[0]:.2f}")
    _print(cases)
    met = cases[0]["p99_ms"] < 50 and cases[0]["errors"] == 0
    print(f"  {'PASS' if met else 'MISS'}  p99 under 50 ms with the access check, at concurrency {args.concurrency}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"webhook_bench-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({"cases": cases, "h2load": h2load_version, "cores": os.cpu_count(),
                               "load_average_before": load_before[0],
                               "args": {k: str(v) for k, v in vars(args).items()}}, indent=2))
    print(f"  written to {out}")
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
