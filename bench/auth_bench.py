"""What identity, policy and audit cost: GetSecret of 1 KiB at concurrency 16, each feature against a plain
baseline measured in the same run.

    .venv/bin/python bench/auth_bench.py                     # 2 rounds, 5 s per case (~3 minutes)
    .venv/bin/python bench/auth_bench.py --rounds 3 --duration 8 --strict

Every case starts its own `secretsvc serve` on a fresh data directory (`--log-level warning`, metrics off) with
100 secrets of 1 KiB, then drives GetSecret on them at random from `--client-procs` processes of threads (16
calls outstanding in all), after a warm-up:

| case | server | caller |
|---|---|---|
| baseline | plaintext, `--audit-enabled no`, no policy files | the admin token |
| tls | `--tls-cert/--tls-key` (a `secretsvc pki init` CA) | the admin token over TLS |
| mtls | TLS and `--client-ca` | a client certificate alone (URI SAN), bound to a policy |
| sa-jwt | `--k8s-issuer`, `--k8s-jwks-file` | a projected-style service-account JWT (RS256), bound to a policy |
| policy-1000 | a policy file of 1,000 rules and 100 bindings | a token made with `--policy` |
| audit | the audit log on (the default: a record per call, fsync'd) | the admin token |
| audit-ckpt | the audit log fsync'd at checkpoints only (`--audit-durability checkpoint`) | the admin token |
| all | mtls + sa-jwt + policy-1000 + audit | a service-account JWT over mutual TLS |

The whole sequence runs `--rounds` times; each case's ratio is its rate over the baseline's in the same round,
and the median over rounds is reported. Targets (issue 7): each feature costs under 15% of the baseline rate
(ratio at least 0.85), all together under 35% (at least 0.65). Results: stdout and bench/out/auth_bench-*.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import jwt
import procs
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: TID251 - a stand-in cluster signing key

from secretsvc.v1 import secrets_pb2, secrets_pb2_grpc

OUT_DIR = procs.BENCH_DIR / "out"
ISSUER = "https://kubernetes.default.svc.cluster.local"
AUDIENCE = "secretsvc"
SPIFFE = "spiffe://cluster.local/ns/bench/sa/client"
PATHS = 100
VALUE_BYTES = 1024
TARGET_EACH, TARGET_ALL = 0.85, 0.65


@dataclass(frozen=True, slots=True)
class Caller:
    """How the load generator reaches one server: channel credentials and the call's metadata."""

    target: str
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    bearer: str | None = None


@dataclass
class Setup:
    env: dict[str, str] = field(default_factory=dict)
    tls: bool = False
    mtls: bool = False
    jwt: bool = False
    policies: bool = False
    audit: bool = False


CASES: dict[str, Setup] = {
    "baseline": Setup(),
    "tls": Setup(tls=True),
    "mtls": Setup(tls=True, mtls=True),
    "sa-jwt": Setup(jwt=True),
    "policy-1000": Setup(policies=True),
    "audit": Setup(audit=True),
    # Not a target: the same log fsync'd only at its signed checkpoints, to show what the fsyncs cost.
    "audit-ckpt": Setup(audit=True, env={"SECRETSVC_AUDIT_DURABILITY": "checkpoint"}),
    "all": Setup(tls=True, mtls=True, jwt=True, policies=True, audit=True),
}


# -- load -------------------------------------------------------------------------------------------------------

def _channel(caller: Caller) -> grpc.Channel:
    options = [("grpc.max_receive_message_length", 16 * 1024 * 1024)]
    if caller.ca is None:
        return grpc.insecure_channel(caller.target, options=options)
    read = Path.read_bytes
    creds = grpc.ssl_channel_credentials(
        read(Path(caller.ca)), read(Path(caller.key)) if caller.key else None,
        read(Path(caller.cert)) if caller.cert else None)
    return grpc.secure_channel(caller.target, creds, options=[*options, ("grpc.ssl_target_name_override",
                                                                         "localhost")])


def _client(caller: Caller, threads: int, warmup: float, duration: float, seed: int, results: Any) -> None:
    metadata = (("authorization", f"Bearer {caller.bearer}"),) if caller.bearer else ()
    counts, latencies, errors = [0], [], [0]
    lock = threading.Lock()
    with _channel(caller) as channel:
        stub = secrets_pb2_grpc.SecretsStub(channel)
        requests = [secrets_pb2.GetSecretRequest(ref=secrets_pb2.SecretRef(namespace="bench", path=f"s{i}"))
                    for i in range(PATHS)]
        start_at = time.monotonic() + warmup
        end_at = start_at + duration

        def worker(index: int) -> None:
            rng = random.Random(seed * 1000 + index)
            mine, done, failed = [], 0, 0
            while (now := time.monotonic()) < end_at:
                try:
                    stub.GetSecret(rng.choice(requests), metadata=metadata, timeout=30)
                except grpc.RpcError:
                    failed += 1
                    continue
                if now >= start_at:
                    done += 1
                    mine.append(time.monotonic() - now)
            with lock:
                counts[0] += done
                latencies.extend(mine)
                errors[0] += failed

        pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    results.put((counts[0], latencies, errors[0]))


def drive(caller: Caller, args: argparse.Namespace, pid: int) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    shares = [args.concurrency // args.client_procs + (i < args.concurrency % args.client_procs)
              for i in range(args.client_procs)]
    clients = [ctx.Process(target=_client, args=(caller, n, args.warmup, args.duration, i, results))
               for i, n in enumerate(shares) if n]
    for c in clients:
        c.start()
    time.sleep(args.warmup)
    before = procs.usage(pid)
    done, latencies, errors = 0, [], 0
    for _ in clients:
        n, lat, err = results.get(timeout=args.warmup + args.duration + 120)
        done, errors = done + n, errors + err
        latencies.extend(lat)
    spent = procs.usage(pid).minus(before)
    for c in clients:
        c.join(timeout=30)
    ordered = sorted(latencies)
    return {"ops_per_s": done / args.duration, "p50_ms": 1000 * statistics.median(ordered),
            "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))], "errors": errors,
            "server_cpu_ms_per_op": 1000 * (spent.user_s + spent.sys_s) / max(1, done)}


# -- servers ----------------------------------------------------------------------------------------------------

def policy_document(rules: int = 1000, bindings: int = 100) -> str:
    """A realistic large document: 100 teams' policies of 10 rules each over their own namespaces, one
    policy ("reader") that grants the bench paths, and bindings of every kind."""
    lines = ["version: 1", "policies:"]
    per_team = rules // 100
    for team in range(100):
        lines += [f"  - name: team-{team}", "    rules:"]
        for r in range(per_team - (1 if team == 0 else 0)):
            effect = "deny" if r % 7 == 6 else "allow"
            lines += [f'      - paths: ["team-{team}/svc-{r}/**", "team-{team}/shared/{r}-*"]',
                      "        capabilities: [read, list]", f"        effect: {effect}"]
    lines += ["  - name: reader", "    rules:", '      - paths: ["bench/**"]', "        capabilities: [read]",
              "        effect: allow"]
    lines.append("bindings:")
    for b in range(bindings - 3):
        kind, pattern = [("serviceaccount", f"team-{b}/*"), ("token", f"team-{b}-ci-*"),
                         ("mtls-uri", f"spiffe://cluster.local/ns/team-{b}/sa/*")][b % 3]
        lines += [f'  - identity: {{kind: {kind}, pattern: "{pattern}"}}', f"    policies: [team-{b % 100}]"]
    lines += ['  - identity: {kind: serviceaccount, pattern: "bench/client"}', "    policies: [reader]",
              f'  - identity: {{kind: mtls-uri, pattern: "{SPIFFE}"}}', "    policies: [reader]",
              '  - identity: {kind: token, pattern: "bench-reader"}', "    policies: [reader]"]
    return "\n".join(lines) + "\n"


@dataclass
class Material:
    pki: Path
    client_cert: Path
    client_key: Path
    jwks: Path
    sa_token: str
    small_policy: Path
    large_policy: Path


def make_material(work: Path) -> Material:
    pki = work / "pki"
    cli = [sys.executable, "-m", "secretsvc.cli", "pki"]
    subprocess.run([*cli, "init", "--dir", str(pki)], check=True, capture_output=True)
    subprocess.run([*cli, "issue", "--dir", str(pki), "client", "--uri", SPIFFE], check=True, capture_output=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    public_jwk.update({"kid": "bench", "alg": "RS256", "use": "sig"})
    (work / "jwks.json").write_text(json.dumps({"keys": [public_jwk]}))
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": [AUDIENCE], "iat": now, "nbf": now, "exp": now + 3600,
              "sub": "system:serviceaccount:bench:client",
              "kubernetes.io": {"namespace": "bench", "serviceaccount": {"name": "client", "uid": "u-1"},
                                "pod": {"name": "client-0", "uid": "u-2"}}}
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench"})
    small = work / "small-policy.yaml"
    small.write_text("version: 1\npolicies:\n  - name: reader\n    rules:\n      - paths: [\"bench/**\"]\n"
                     "        capabilities: [read]\n        effect: allow\nbindings:\n"
                     '  - identity: {kind: serviceaccount, pattern: "bench/client"}\n    policies: [reader]\n'
                     f'  - identity: {{kind: mtls-uri, pattern: "{SPIFFE}"}}\n    policies: [reader]\n')
    large = work / "large-policy.yaml"
    large.write_text(policy_document())
    return Material(pki, pki / "client.pem", pki / "client-key.pem", work / "jwks.json", token, small, large)


def start_case(name: str, setup: Setup, m: Material, work: Path) -> tuple[procs.ServerProc, Caller]:
    case_dir = work / f"{name}-{time.monotonic_ns()}"
    case_dir.mkdir()
    env = {"SECRETSVC_AUDIT_ENABLED": "yes" if setup.audit else "no", **setup.env}
    if setup.tls:
        env |= {"SECRETSVC_TLS_CERT": str(m.pki / "server.pem"), "SECRETSVC_TLS_KEY": str(m.pki / "server-key.pem")}
    if setup.mtls:
        env["SECRETSVC_CLIENT_CA"] = str(m.pki / "ca.pem")
    if setup.jwt:
        env |= {"SECRETSVC_K8S_ISSUER": ISSUER, "SECRETSVC_K8S_AUDIENCES": AUDIENCE,
                "SECRETSVC_K8S_JWKS_FILE": str(m.jwks)}
    if setup.policies:
        env["SECRETSVC_POLICY_PATHS"] = str(m.large_policy)
    elif setup.mtls or setup.jwt:
        env["SECRETSVC_POLICY_PATHS"] = str(m.small_policy)
    server, admin = procs.start_secretsvc(case_dir, 16, env, ca_file=m.pki / "ca.pem" if setup.tls else None,
                                          client_cert=(m.client_cert, m.client_key) if setup.mtls else None)
    target = f"localhost:{server.port}" if setup.tls else server.target
    populate = Caller(target, ca=str(m.pki / "ca.pem") if setup.tls else None,
                      cert=str(m.client_cert) if setup.mtls else None, key=str(m.client_key) if setup.mtls else None,
                      bearer=admin)
    with _channel(populate) as channel:
        stub = secrets_pb2_grpc.SecretsStub(channel)
        md = (("authorization", f"Bearer {admin}"),)
        rng = random.Random(11)
        for i in range(PATHS):
            stub.PutSecret(secrets_pb2.PutSecretRequest(ref=secrets_pb2.SecretRef(namespace="bench", path=f"s{i}"),
                                                        value=rng.randbytes(VALUE_BYTES)), metadata=md)
    bearer: str | None = admin
    if setup.jwt:
        bearer = m.sa_token
    elif setup.mtls:
        bearer = None  # the certificate identifies the caller
    elif setup.policies:
        made = subprocess.run([sys.executable, "-m", "secretsvc.cli", "token", "create", "bench-reader", "--policy",
                               "reader"], capture_output=True, check=True,
                              env={**os.environ, "SECRETSVC_ADDR": server.target, "SECRETSVC_TOKEN": admin})
        bearer = made.stdout.decode().strip()
    return server, Caller(target, ca=populate.ca, cert=populate.cert, key=populate.key, bearer=bearer)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=2, help="times the whole sequence runs (default 2)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds measured per case (default 5)")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--client-procs", type=int, default=2)
    p.add_argument("--only", default="", help="comma-separated cases besides the baseline (default: all)")
    p.add_argument("--out-dir", type=Path, default=OUT_DIR)
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = ["baseline", *[c for c in CASES if c != "baseline" and (not args.only or c in args.only.split(","))]]
    rounds: list[dict[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="auth-bench-") as tmp:
        work = Path(tmp)
        material = make_material(work)
        for number in range(args.rounds):
            measured = {}
            for name in chosen:
                server, caller = start_case(name, CASES[name], material, work)
                try:
                    measured[name] = drive(caller, args, server.pid)
                finally:
                    server.stop()
                print(f"round {number + 1} {name:<12} {measured[name]['ops_per_s']:8.0f} ops/s", flush=True)
            rounds.append(measured)
    summary = {}
    for name in chosen:
        ratios = [r[name]["ops_per_s"] / r["baseline"]["ops_per_s"] for r in rounds]
        summary[name] = {key: statistics.median(r[name][key] for r in rounds)
                         for key in ("ops_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_op")}
        summary[name]["ratio"] = statistics.median(ratios)
        summary[name]["errors"] = sum(r[name]["errors"] for r in rounds)
    print(f"\n{'case':<12} {'ops/s':>8} {'x base':>7} {'p50 ms':>7} {'p99 ms':>7} {'srv CPU ms/op':>14} {'errors':>6}")
    for name, s in summary.items():
        print(f"{name:<12} {s['ops_per_s']:>8.0f} {s['ratio']:>7.2f} {s['p50_ms']:>7.1f} {s['p99_ms']:>7.1f} "
              f"{s['server_cpu_ms_per_op']:>14.3f} {s['errors']:>6.0f}")
    misses = []
    for name, s in summary.items():
        if name in ("baseline", "audit-ckpt"):
            continue
        target = TARGET_ALL if name == "all" else TARGET_EACH
        ok = s["ratio"] >= target and s["errors"] == 0
        print(f"  {'PASS' if ok else 'MISS'}  {name}: {s['ratio']:.2f} x baseline (target at least {target})")
        if not ok:
            misses.append(name)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"auth_bench-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({"summary": summary, "rounds": rounds, "misses": misses,
                               "args": {k: str(v) for k, v in vars(args).items()}}, indent=2))
    print(f"  written to {out}")
    return 1 if misses and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
