"""The admission webhook under load: AdmissionReview requests per second and latency at concurrency 16.

    .venv/bin/python bench/webhook_bench.py                  # 10 s per case
    .venv/bin/python bench/webhook_bench.py --duration 20 --concurrency 32

One run starts `secretsvc serve` (a policy binding the pods' service account to the secrets they name) and
`injector webhook` over HTTPS with a development PKI (`secretsvc pki init`), both on loopback, then sends real
AdmissionReview v1 requests for pods with five `secretsvc.io/secret-*` annotations, in three cases:

- checked, every pod: pods of 1,000 service accounts in turn and `--access-cache-seconds 0`, so every request
  makes one CheckAccess call to the service (the target's case);
- checked, a rollout: one pod over and over with the default 5 s memory of answers, as a Deployment's burst;
- check off: `--check-access off`, what the webhook costs without the service.

Each of `--concurrency` client threads (spread over `--client-procs` processes) keeps one TLS keep-alive
connection and sends requests back to back. Target (issue 8): p99 under 50 ms with the access check, on the
first case. Results: stdout and bench/out/webhook_bench-*.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
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
SERVICE_ACCOUNTS = 1000


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


def _client(port: int, ca: str, threads: int, warmup: float, duration: float, vary: bool, seed: int,
            results: Any) -> None:
    context = ssl.create_default_context(cafile=ca)
    # One pod over and over (a rollout), or pods of SERVICE_ACCOUNTS different service accounts in turn.
    bodies = [review(i, f"app-{i}" if vary else "app") for i in range(SERVICE_ACCOUNTS if vary else 1)]
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    start_at = time.monotonic() + warmup
    end_at = start_at + duration

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
    for t in pool:
        t.join()
    results.put((latencies, errors[0]))


def run_case(name: str, port: int, ca: str, args: argparse.Namespace, pids: dict[str, int], *, vary: bool
             ) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    shares = [args.concurrency // args.client_procs + (i < args.concurrency % args.client_procs)
              for i in range(args.client_procs)]
    clients = [ctx.Process(target=_client, args=(port, ca, n, args.warmup, args.duration, vary, 7919 * i, results))
               for i, n in enumerate(shares) if n]
    for c in clients:
        c.start()
    time.sleep(args.warmup)
    before = {name: procs.usage(pid) for name, pid in pids.items()}
    latencies: list[float] = []
    errors = 0
    for _ in clients:
        got, failed = results.get(timeout=args.warmup + args.duration + 120)
        latencies.extend(got)
        errors += failed
    for c in clients:
        c.join(timeout=30)
    ordered = sorted(latencies)
    cpu = {f"{who}_cpu_ms_per_request": round(1000 * (u.user_s + u.sys_s) / max(1, len(ordered)), 3)
           for who, u in ((who, procs.usage(pid).minus(before[who])) for who, pid in pids.items())}
    return {"case": name, "requests": len(ordered), "errors": errors, "per_second": len(ordered) / args.duration,
            "p50_ms": statistics.median(ordered), "p99_ms": ordered[int(0.99 * (len(ordered) - 1))], **cpu}


def start_webhook(work: Path, service: procs.ServerProc, token_file: Path, pki_dir: Path, extra: list[str]
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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per case (default 10)")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--client-procs", type=int, default=2)
    p.add_argument("--out-dir", type=Path, default=OUT_DIR)
    p.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cases = []
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
            for name, extra, vary in (
                    ("checked, every pod", ["--access-cache-seconds", "0"], True),
                    ("checked, a rollout", [], False),
                    ("check off", ["--check-access", "off"], True)):
                proc, port = start_webhook(work, service, token_file, pki_dir, extra)
                webhooks.append(proc)
                cases.append(run_case(name, port, str(pki_dir / "ca.pem"), args,
                                      {"webhook": proc.pid, "service": service.pid}, vary=vary))
                proc.terminate()
                proc.wait(timeout=30)
        finally:
            for proc in webhooks:
                if proc.poll() is None:
                    proc.kill()
            service.stop()
    print(f"{'case':<20} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'webhook CPU ms/req':>19} "
          f"{'service CPU ms/req':>19}")
    for c in cases:
        print(f"{c['case']:<20} {c['per_second']:>8.0f} {c['p50_ms']:>8.1f} {c['p99_ms']:>8.1f} {c['errors']:>7} "
              f"{c['webhook_cpu_ms_per_request']:>19.2f} {c['service_cpu_ms_per_request']:>19.2f}")
    met = cases[0]["p99_ms"] < 50 and cases[0]["errors"] == 0
    print(f"  {'PASS' if met else 'MISS'}  p99 under 50 ms with the access check, at concurrency {args.concurrency}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"webhook_bench-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({"cases": cases, "args": {k: str(v) for k, v in vars(args).items()}}, indent=2))
    print(f"  written to {out}")
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
