"""What identity, policy and audit cost: GetSecret of 1 KiB at concurrency 16, each configuration's rate as a
ratio to a plain baseline measured beside it in the same run.

    .venv/bin/python bench/auth_bench.py                       # 2 rounds, 5 s per case, about 3.5 minutes
    .venv/bin/python bench/auth_bench.py --rounds 3 --strict   # exit 1 when a target is missed
    .venv/bin/python bench/auth_bench.py --only audit,audit-checkpoint --duration 3

Each configuration runs on its own `python -m secretsvc.cli serve` (a fresh temporary data directory,
`--log-level warning`, metrics off) holding 100 secrets of 1 KiB, which `loadgen.py`'s client processes read
at random (16 calls outstanding, 2 processes of 8 threads, one channel per process):

  configuration     server flags                                          the calls carry
  baseline          plaintext, --audit-enabled no, no --policy-path       the admin token
  tls               + --tls-cert/--tls-key (`secretsvc pki init`)         the admin token, over TLS
  mtls              + --client-ca, a small policy file                     a client certificate only (URI SAN
                                                                           spiffe://...), bound to read
  sa-jwt            + --k8s-issuer/--k8s-audiences/--k8s-jwks-file,        a projected-style service-account
                      a small policy file                                  JWT (RS256) signed here, bound to read
  policy-1000       + --policy-path: 1,000 rules, 100 bindings             a token from `secretsvc token create
                                                                           --policy` holding the read policy
  audit             --audit-enabled yes (durability: record, the default)  the admin token
  all               mtls + sa-jwt + policy-1000 + audit                    the JWT, over mutual TLS
  audit-checkpoint  --audit-durability checkpoint (only with --only;       the admin token
                      no target): how much of audit's cost is fsync

Keys, certificates, the JWT and the static token are made at run time in the temporary directory.

Noise control: one round starts a baseline server and measures it before and after every configuration
(baseline, tls, baseline, mtls, baseline, ...), each configuration on a server of its own started just for
it; every other round runs the configurations in reverse order. A configuration's ratio in a round is its
rate over the mean of the two baselines beside it; the table gives the median over rounds. Server CPU per call
(user + system, all threads, from /proc) is the column to compare first when rates disagree between runs:
"+srv" is what the configuration adds to the baseline's.

Targets (from the issue; PASS or MISS, exit 1 only with --strict): every single feature costs under 15% of
the baseline rate (ratio at least 0.85), all together under 35% (at least 0.65), with no failed call.
Output: a table on stdout and bench/out/auth_bench-*.json (gitignored).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
import jwt
import loadgen
import procs
import service_bench
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: TID251 - a stand-in cluster's signing key
from loadgen import Case, Tls
from service_bench import CaseResult

from secretsvc.v1 import secrets_pb2, secrets_pb2_grpc

KIB = 1024
CASE = Case("get", KIB, 16)
GET_PATHS = 100
POPULATE_THREADS = 8
CALL_TIMEOUT_S = 30.0
CLI_TIMEOUT_S = 60.0
MAX_ROUNDS = 20
MAX_DURATION_S = 600.0
MAX_WORKERS = 256
OUT_DIR = procs.BENCH_DIR / "out"

TARGET_EACH = 0.85
TARGET_ALL = 0.65

# The stand-in cluster: its issuer, secretsvc's audience, and the one workload the bench calls as.
ISSUER = "https://kubernetes.default.svc.cluster.local"
AUDIENCE = "secretsvc"
SA_NAMESPACE = "bench"
SA_NAME = "client"
SPIFFE = f"spiffe://cluster.local/ns/{SA_NAMESPACE}/sa/{SA_NAME}"
JWT_ALGORITHM = "RS256"
JWT_LIFETIME_S = 3600  # longer than any run: the token must not expire mid-measurement
RSA_BITS = 2048
READER_POLICY = "bench-reader"  # grants read on bench/**; bound to the workload, held by the static token
TOKEN_NAME = "bench-reader"

# The large document: 99 team policies of 10 rules and the reader's 10 rules (1,000), 98 team bindings and
# the workload's two (100).
TEAMS = 99
RULES_PER_POLICY = 10
TEAM_BINDINGS = 98


@dataclass(frozen=True, slots=True)
class Config:
    """One server configuration and how its calls identify themselves."""

    name: str
    description: str
    tls: bool = False
    mtls: bool = False  # needs tls; the calls carry the client certificate and, unless sa_jwt, no token
    sa_jwt: bool = False
    large_policy: bool = False
    audit_durability: str | None = None  # None: audit off
    min_ratio: float | None = None  # the target; None: reported only
    default: bool = True  # part of a run without --only


BASELINE = Config("baseline", "plaintext, admin token, no policy files, audit off")
FEATURES = (
    Config("tls", "TLS, admin token", tls=True, min_ratio=TARGET_EACH),
    Config("mtls", "mutual TLS, the certificate alone identifies the caller", tls=True, mtls=True,
           min_ratio=TARGET_EACH),
    Config("sa-jwt", "service-account JWT (RS256, JWKS file)", sa_jwt=True, min_ratio=TARGET_EACH),
    Config("policy-1000", "1,000 rules, 100 bindings, token with --policy", large_policy=True,
           min_ratio=TARGET_EACH),
    Config("audit", "audit log on (durability record)", audit_durability="record", min_ratio=TARGET_EACH),
    Config("all", "mTLS + SA JWT + 1,000 rules + audit", tls=True, mtls=True, sa_jwt=True, large_policy=True,
           audit_durability="record", min_ratio=TARGET_ALL),
    Config("audit-checkpoint", "audit log, fsync at checkpoints only", audit_durability="checkpoint",
           default=False),
)
CONFIGS = {c.name: c for c in (BASELINE, *FEATURES)}


@dataclass(frozen=True, slots=True)
class Material:
    """Everything the configurations share, made once per run in its temporary directory."""

    pki: Path  # ca.pem, server.pem, server-key.pem from `secretsvc pki init`
    client_cert: Path
    client_key: Path
    jwks: Path
    sa_token: str
    small_policy: Path
    large_policy: Path


@dataclass(frozen=True, slots=True)
class Measurement:
    config: str
    round: int  # from 1
    position: int  # order within the round, from 0
    result: CaseResult


@dataclass(frozen=True, slots=True)
class Summary:
    config: str
    description: str
    ops_per_s: float  # medians over rounds, as are the latencies and CPU figures
    p50_ms: float
    p99_ms: float
    server_user_ms_per_op: float
    server_sys_ms_per_op: float
    server_cpu_ms_per_op: float
    server_cpu_added_ms_per_op: float  # over the baselines beside it
    client_cpu_ms_per_op: float
    ratio: float  # median over rounds of the rate over the neighbouring baselines' mean
    ratios: tuple[float, ...]
    errors: int
    min_ratio: float | None
    passed: bool | None  # None: no target


# -- material: PKI, the issuer's key and JWT, policy documents ----------------------------------------------

def policy_document() -> str:
    """A policy set grown large: 99 teams' policies over their own namespaces (literal prefixes, `*` and `**`,
    patterns starting with a wildcard, which every decision must test, deny rules, transit keys), the reader
    policy, and bindings of every identity kind. Exactly 1,000 rules and 100 bindings."""
    lines = ["version: 1", "policies:"]
    for t in range(TEAMS):
        ns = f"team{t:02d}"
        lines += [
            f"  - name: {ns}-app",
            f"    description: what the services of {ns} may do",
            "    rules:",
            f"      - {{paths: ['{ns}/**'], capabilities: [read, list], effect: allow}}",
            f"      - {{paths: ['{ns}/app/*'], capabilities: [create, update], effect: allow}}",
            f"      - {{paths: ['{ns}/app/*/config'], capabilities: [delete], effect: allow}}",
            f"      - {{paths: ['{ns}/root/**'], capabilities: [read, update], effect: deny}}",
            f"      - {{paths: ['{ns}/db-*/password'], capabilities: [read], effect: allow}}",
            f"      - {{paths: ['shared/{ns}/**'], capabilities: [read], effect: allow}}",
            f"      - {{paths: ['*/handoff/{ns}'], capabilities: [read], effect: allow}}",
            f"      - {{paths: ['**/{ns}-break-glass'], capabilities: [read], effect: deny}}",
            f"      - {{keys: ['{ns}-*'], capabilities: [encrypt, decrypt], effect: allow}}",
            f"      - {{keys: ['{ns}-legacy'], capabilities: [encrypt], effect: deny}}",
        ]
    lines += [
        f"  - name: {READER_POLICY}",
        "    description: the benchmark's workload",
        "    rules:",
        f"      - {{paths: ['{loadgen.NAMESPACE}/**'], capabilities: [read], effect: allow}}",
        f"      - {{paths: ['{loadgen.NAMESPACE}/root/**'], capabilities: [read], effect: deny}}",
        f"      - {{paths: ['{loadgen.NAMESPACE}/app/*'], capabilities: [list], effect: allow}}",
        "      - {paths: ['shared/**'], capabilities: [read, list], effect: allow}",
        "      - {paths: ['shared/**/private'], capabilities: [read], effect: deny}",
        "      - {paths: ['*/handoff/bench'], capabilities: [read], effect: allow}",
        "      - {paths: ['**/break-glass'], capabilities: [read], effect: deny}",
        "      - {keys: ['bench-*'], capabilities: [encrypt, decrypt], effect: allow}",
        "      - {keys: ['bench-legacy'], capabilities: [encrypt], effect: deny}",
        "      - {keys: ['shared-*'], capabilities: [decrypt], effect: allow}",
        "bindings:",
    ]
    for t in range(TEAM_BINDINGS):
        ns = f"team{t:02d}"
        kind, pattern = (
            ("mtls-uri", f"spiffe://cluster.local/ns/{ns}/sa/*"),
            ("mtls-dns", f"*.{ns}.svc.cluster.local"),
            ("serviceaccount", f"{ns}/*"),
            ("token", f"ci-{ns}-*"),
            ("mtls-subject", f"{ns}-batch-*"),
            ("serviceaccount", f"*/{ns}-deployer"),
        )[t % 6]
        held = f"{ns}-app, team{(t + 1) % TEAMS:02d}-app" if t % 3 == 0 else f"{ns}-app"
        lines += [f"  - identity: {{kind: {kind}, pattern: '{pattern}'}}", f"    policies: [{held}]"]
    lines += [
        f"  - identity: {{kind: serviceaccount, pattern: '{SA_NAMESPACE}/{SA_NAME}'}}",
        f"    policies: [{READER_POLICY}]",
        f"  - identity: {{kind: mtls-uri, pattern: '{SPIFFE}'}}",
        f"    policies: [{READER_POLICY}]",
    ]
    return "\n".join(lines) + "\n"


def small_policy_document() -> str:
    """Just the reader policy, bound to the workload's service account and SPIFFE ID."""
    return "\n".join([
        "version: 1",
        "policies:",
        f"  - name: {READER_POLICY}",
        "    rules:",
        f"      - {{paths: ['{loadgen.NAMESPACE}/**'], capabilities: [read], effect: allow}}",
        "bindings:",
        f"  - identity: {{kind: serviceaccount, pattern: '{SA_NAMESPACE}/{SA_NAME}'}}",
        f"    policies: [{READER_POLICY}]",
        f"  - identity: {{kind: mtls-uri, pattern: '{SPIFFE}'}}",
        f"    policies: [{READER_POLICY}]",
    ]) + "\n"


def issuer_jwks(key: rsa.RSAPrivateKey) -> tuple[str, dict[str, Any]]:
    """The key id and the public JWKS an API server would publish for `key` (the kid, as Kubernetes makes it,
    is a hash of the public key; here of its modulus)."""
    member: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    kid = base64.urlsafe_b64encode(hashlib.sha256(member["n"].encode()).digest()).decode().rstrip("=")
    member.update({"kid": kid, "alg": JWT_ALGORITHM, "use": "sig"})
    return kid, {"keys": [member]}


def mint_service_account_jwt(key: rsa.RSAPrivateKey, kid: str, now: int) -> str:
    """A token shaped like a kubelet's projected service-account token for a pod (Kubernetes 1.29+)."""
    claims = {
        "aud": [AUDIENCE],
        "exp": now + JWT_LIFETIME_S,
        "iat": now,
        "nbf": now,
        "iss": ISSUER,
        "jti": str(uuid.uuid4()),
        "sub": f"system:serviceaccount:{SA_NAMESPACE}:{SA_NAME}",
        "kubernetes.io": {
            "namespace": SA_NAMESPACE,
            "serviceaccount": {"name": SA_NAME, "uid": str(uuid.uuid4())},
            "pod": {"name": f"{SA_NAME}-5d8f7c9b4-x2k9q", "uid": str(uuid.uuid4())},
            "node": {"name": "node-1", "uid": str(uuid.uuid4())},
        },
    }
    return jwt.encode(claims, key, algorithm=JWT_ALGORITHM, headers={"kid": kid})


def _cli(*argv: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "secretsvc.cli", *argv], capture_output=True, timeout=CLI_TIMEOUT_S,
                          cwd=procs.BENCH_DIR.parent, env={**os.environ, **(env or {})}, check=False)
    if done.returncode != 0:
        # stderr names the failure; stdout may hold a token, so it is not shown.
        raise RuntimeError(f"secretsvc {argv[0]} {argv[1]} failed ({done.returncode}): "
                           f"{done.stderr.decode(errors='replace')[-2000:]}")
    return done.stdout.decode()


def make_material(work: Path) -> Material:
    pki = work / "pki"
    _cli("pki", "init", "--dir", str(pki))
    _cli("pki", "issue", "--dir", str(pki), "client", "--uri", SPIFFE)
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    kid, keyset = issuer_jwks(key)
    jwks = work / "jwks.json"
    jwks.write_text(json.dumps(keyset))
    small, large = work / "policy-small.yaml", work / "policy-large.yaml"
    small.write_text(small_policy_document())
    large.write_text(policy_document())
    return Material(pki=pki, client_cert=pki / "client.pem", client_key=pki / "client-key.pem", jwks=jwks,
                    sa_token=mint_service_account_jwt(key, kid, int(time.time())), small_policy=small,
                    large_policy=large)


# -- servers and callers ----------------------------------------------------------------------------------

def server_flags(config: Config, m: Material) -> list[str]:
    flags = ["--audit-enabled", "yes" if config.audit_durability else "no"]
    if config.audit_durability:
        flags += ["--audit-durability", config.audit_durability]
    if config.tls:
        flags += ["--tls-cert", str(m.pki / "server.pem"), "--tls-key", str(m.pki / "server-key.pem")]
    if config.mtls:
        flags += ["--client-ca", str(m.pki / "ca.pem")]
    if config.sa_jwt:
        flags += ["--k8s-issuer", ISSUER, "--k8s-audiences", AUDIENCE, "--k8s-jwks-file", str(m.jwks)]
    if config.large_policy:
        flags += ["--policy-path", str(m.large_policy)]
    elif config.mtls or config.sa_jwt:
        flags += ["--policy-path", str(m.small_policy)]
    return flags


def channel_tls(config: Config, m: Material) -> Tls | None:
    if not config.tls:
        return None
    if config.mtls:
        return Tls(m.pki / "ca.pem", m.client_cert, m.client_key)
    return Tls(m.pki / "ca.pem")


def start_server(config: Config, m: Material, work: Path, workers: int) -> tuple[procs.ServerProc, str]:
    case_dir = Path(tempfile.mkdtemp(prefix=f"{config.name}-", dir=work))
    tls = channel_tls(config, m)
    client_cert = (tls.client_cert, tls.client_key) if tls and tls.client_cert and tls.client_key else None
    return procs.start_secretsvc(case_dir, workers, {}, ca_file=tls.ca_file if tls else None,
                                 client_cert=client_cert, extra_args=server_flags(config, m))


def populate(server: procs.ServerProc, admin: str, tls: Tls | None, seed: int) -> None:
    """The secrets the calls read: GET_PATHS values of 1 KiB, written with the admin token."""
    md = loadgen.call_metadata(admin)
    rng = random.Random(seed)
    values = [rng.randbytes(KIB) for _ in range(GET_PATHS)]
    with loadgen.open_channel(server.target, tls) as channel:
        secrets = secrets_pb2_grpc.SecretsStub(channel)  # type: ignore[no-untyped-call]

        def put(i: int) -> None:
            ref = secrets_pb2.SecretRef(namespace=loadgen.NAMESPACE, path=loadgen.GET_PATH_FORMAT.format(i))
            secrets.PutSecret(secrets_pb2.PutSecretRequest(ref=ref, value=values[i]), metadata=md,
                              timeout=CALL_TIMEOUT_S)

        with ThreadPoolExecutor(POPULATE_THREADS) as pool:
            list(pool.map(put, range(GET_PATHS)))


def create_token(server: procs.ServerProc, admin: str, tls: Tls | None) -> str:
    """A static token holding the reader policy, made the way an operator makes one."""
    argv = ["token", "create", TOKEN_NAME, "--policy", READER_POLICY, "--addr", server.target]
    if tls is not None:
        argv += ["--ca-file", str(tls.ca_file)]
        if tls.client_cert and tls.client_key:
            argv += ["--cert", str(tls.client_cert), "--key", str(tls.client_key)]
    token = _cli(*argv, env={"SECRETSVC_TOKEN": admin}).strip()
    if not token or len(token.splitlines()) != 1:
        raise RuntimeError("secretsvc token create did not print one token")
    return token


def caller_token(config: Config, m: Material, server: procs.ServerProc, admin: str) -> str | None:
    """What the measured calls carry: None when the client certificate alone identifies them."""
    if config.sa_jwt:
        return m.sa_token
    if config.large_policy:
        return create_token(server, admin, channel_tls(config, m))
    if config.mtls:
        return None
    return admin


def check_caller(server: procs.ServerProc, token: str | None, tls: Tls | None) -> None:
    """One read as the measured caller, so a wrong policy or credential stops the run instead of being timed
    as a stream of refusals."""
    ref = secrets_pb2.SecretRef(namespace=loadgen.NAMESPACE, path=loadgen.GET_PATH_FORMAT.format(0))
    with loadgen.open_channel(server.target, tls) as channel:
        secrets = secrets_pb2_grpc.SecretsStub(channel)  # type: ignore[no-untyped-call]
        try:
            secrets.GetSecret(secrets_pb2.GetSecretRequest(ref=ref), metadata=loadgen.call_metadata(token),
                              timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as exc:
            code_of = getattr(exc, "code", None)
            code = code_of() if callable(code_of) else exc
            raise RuntimeError(f"the benchmark's caller cannot read on {server.name}: {code}") from None


# -- the run --------------------------------------------------------------------------------------------------

def measure(config: Config, m: Material, work: Path, args: argparse.Namespace) -> CaseResult:
    """Start `config`'s server, fill it, check the caller, run the case, stop the server."""
    server, admin = start_server(config, m, work, args.workers)
    try:
        tls = channel_tls(config, m)
        populate(server, admin, tls, args.seed)
        token = caller_token(config, m, server, admin)
        check_caller(server, token, tls)
        return service_bench.run_case(CASE, server, token, args, tls=tls)
    finally:
        server.stop()


def run_round(number: int, features: Sequence[Config], m: Material, work: Path,
              args: argparse.Namespace) -> list[Measurement]:
    """Baseline, feature, baseline, feature, ..., baseline; the baseline's server stays up for the round."""
    out: list[Measurement] = []

    def note(config: Config, result: CaseResult) -> None:
        out.append(Measurement(config.name, number, len(out), result))
        s = result.stats
        print(f"round {number} {config.name:<17}{s.ops_per_s:7.0f} ops/s  p99 {s.p99_ms:5.1f} ms  "
              f"srv {result.server_cpu_ms_per_op:.2f} ms/op" + (f"  errors {s.errors}" if s.errors else ""),
              file=sys.stderr, flush=True)

    baseline, admin = start_server(BASELINE, m, work, args.workers)
    try:
        populate(baseline, admin, None, args.seed)
        note(BASELINE, service_bench.run_case(CASE, baseline, admin, args))
        for config in features:
            note(config, measure(config, m, work, args))
            baseline.check_alive()
            note(BASELINE, service_bench.run_case(CASE, baseline, admin, args))
    finally:
        baseline.stop()
    return out


def ratios_in_round(measurements: Sequence[Measurement]) -> dict[str, float]:
    """Each configuration's rate over the mean rate of the baselines just before and after it."""
    out = {}
    for i, x in enumerate(measurements):
        if x.config == BASELINE.name:
            continue
        beside = [measurements[j].result.stats.ops_per_s for j in (i - 1, i + 1)
                  if 0 <= j < len(measurements) and measurements[j].config == BASELINE.name]
        base = statistics.fmean(beside) if beside else math.nan
        out[x.config] = x.result.stats.ops_per_s / base if base > 0 else math.nan
    return out


def _baseline_cpu_beside(measurements: Sequence[Measurement], i: int) -> float:
    beside = [measurements[j].result.server_cpu_ms_per_op for j in (i - 1, i + 1)
              if 0 <= j < len(measurements) and measurements[j].config == BASELINE.name]
    return statistics.fmean(beside) if beside else math.nan


def _median(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return statistics.median(finite) if finite else math.nan


def summarize(rounds: Sequence[Sequence[Measurement]], names: Sequence[str]) -> list[Summary]:
    per_round = [ratios_in_round(r) for r in rounds]
    out = []
    for name in names:
        config = CONFIGS[name]
        runs = [x for r in rounds for x in r if x.config == name]
        if name == BASELINE.name:
            ratios: list[float] = [1.0 for _ in runs]
            added = [0.0 for _ in runs]
        else:
            ratios = [pr.get(name, math.nan) for pr in per_round]
            added = [x.result.server_cpu_ms_per_op - _baseline_cpu_beside(r, x.position)
                     for r in rounds for x in r if x.config == name]
        ratio = _median(ratios)
        errors = sum(x.result.stats.errors for x in runs)
        passed = None if config.min_ratio is None else (ratio >= config.min_ratio and errors == 0)
        out.append(Summary(
            config=name, description=config.description,
            ops_per_s=_median([x.result.stats.ops_per_s for x in runs]),
            p50_ms=_median([x.result.stats.p50_ms for x in runs]),
            p99_ms=_median([x.result.stats.p99_ms for x in runs]),
            server_user_ms_per_op=_median([x.result.server_user_ms_per_op for x in runs]),
            server_sys_ms_per_op=_median([x.result.server_sys_ms_per_op for x in runs]),
            server_cpu_ms_per_op=_median([x.result.server_cpu_ms_per_op for x in runs]),
            server_cpu_added_ms_per_op=_median(added),
            client_cpu_ms_per_op=_median([x.result.client_cpu_ms_per_op for x in runs]),
            ratio=ratio, ratios=tuple(ratios), errors=errors, min_ratio=config.min_ratio, passed=passed,
        ))
    return out


def _fmt(x: float, spec: str) -> str:
    return "-" if math.isnan(x) else format(x, spec)


def print_table(summaries: Sequence[Summary]) -> None:
    header = (f"{'config':<18}{'ops/s':>7}{'p50 ms':>8}{'p99 ms':>8}{'x base':>8}{'srv usr+sys ms/op':>19}"
              f"{'+srv ms/op':>11}{'cli ms/op':>10}{'errors':>7}")
    print(header)
    print("-" * len(header))
    for s in summaries:
        cpu = f"{s.server_user_ms_per_op:.2f}+{s.server_sys_ms_per_op:.2f}"
        added = "" if s.config == BASELINE.name else _fmt(s.server_cpu_added_ms_per_op, "+.2f")
        print(f"{s.config:<18}{_fmt(s.ops_per_s, '.0f'):>7}{_fmt(s.p50_ms, '.2f'):>8}{_fmt(s.p99_ms, '.2f'):>8}"
              f"{_fmt(s.ratio, '.2f'):>8}{cpu:>19}{added:>11}{_fmt(s.client_cpu_ms_per_op, '.2f'):>10}"
              f"{s.errors:>7}")
    print()
    for s in summaries:
        if s.min_ratio is None:
            continue
        per_round = ", ".join(_fmt(r, ".2f") for r in s.ratios)
        print(f"{'PASS' if s.passed else 'MISS'}  {s.config} >= {s.min_ratio} x baseline: {_fmt(s.ratio, '.2f')}"
              f" (rounds: {per_round})" + (f", {s.errors} failed calls" if s.errors else ""))


def write_json(args: argparse.Namespace, machine: dict[str, Any], m: Material, names: Sequence[str],
               rounds: Sequence[Sequence[Measurement]], summaries: Sequence[Summary]) -> Path:
    args.out.mkdir(parents=True, exist_ok=True)
    path: Path = args.out / f"auth_bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    tmp = str(m.pki.parent)
    doc = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {**machine, "loadavg_at_end": os.getloadavg()},
        "settings": {"case": CASE.label, "get_paths": GET_PATHS, "rounds": args.rounds, "duration_s": args.duration,
                     "warmup_s": args.warmup, "server_workers": args.workers, "client_procs": args.client_procs,
                     "seed": args.seed, "jwt_algorithm": JWT_ALGORITHM,
                     "large_policy": {"rules": TEAMS * RULES_PER_POLICY + RULES_PER_POLICY,
                                      "bindings": TEAM_BINDINGS + 2}},
        # Paths in the run's temporary directory are shown relative to it.
        "configs": {n: {**asdict(CONFIGS[n]), "server_flags": [f.replace(tmp, "$TMP")
                                                               for f in server_flags(CONFIGS[n], m)]}
                    for n in names},
        "measurements": [{"config": x.config, "round": x.round, "position": x.position, "label": x.result.case.label,
                          **asdict(x.result), "server_cpu_ms_per_op": x.result.server_cpu_ms_per_op}
                         for r in rounds for x in r],
        "summary": {s.config: asdict(s) for s in summaries},
        "targets": [{"config": s.config, "min_ratio": s.min_ratio, "ratio": s.ratio, "passed": s.passed}
                    for s in summaries if s.min_ratio is not None],
    }
    # NaN is not JSON; a missing figure is null.
    path.write_text(json.dumps(doc, indent=2, default=str).replace("NaN", "null") + "\n")
    return path


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per case (default 5)")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each case (default 1)")
    p.add_argument("--rounds", type=int, default=2,
                   help="times the whole sequence runs; ratios are medians over rounds (default 2)")
    p.add_argument("--only", default="",
                   help="comma-separated configurations to run besides the baseline (default: all but "
                        f"audit-checkpoint); known: {', '.join(c.name for c in FEATURES)}")
    p.add_argument("--workers", type=int, default=16, help="server worker threads (default 16)")
    p.add_argument("--client-procs", type=int, default=2, help="client processes sharing the 16 calls (default 2)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=OUT_DIR, help="directory for the JSON result (default bench/out)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args(argv)
    if not 0 < args.duration <= MAX_DURATION_S or not 0 <= args.warmup <= MAX_DURATION_S:
        p.error(f"--duration must be in (0, {MAX_DURATION_S}] and --warmup in [0, {MAX_DURATION_S}]")
    if not 1 <= args.rounds <= MAX_ROUNDS:
        p.error(f"--rounds must be 1..{MAX_ROUNDS}")
    if not 1 <= args.workers <= MAX_WORKERS:
        p.error(f"--workers must be 1..{MAX_WORKERS}")
    if not 1 <= args.client_procs <= loadgen.MAX_PROCESSES:
        p.error(f"--client-procs must be 1..{loadgen.MAX_PROCESSES}")
    chosen = [n for n in args.only.split(",") if n]
    if unknown := set(chosen) - {c.name for c in FEATURES}:
        p.error(f"--only: unknown configurations {', '.join(sorted(unknown))}; "
                f"known: {', '.join(c.name for c in FEATURES)}")
    args.features = [c for c in FEATURES if (c.name in chosen if chosen else c.default)]
    args.get_paths = GET_PATHS  # what service_bench.run_case reads
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    machine = service_bench.machine_note()
    names = [BASELINE.name, *(c.name for c in args.features)]
    rounds: list[list[Measurement]] = []
    with tempfile.TemporaryDirectory(prefix="secretsvc-auth-bench-") as tmp:
        work = Path(tmp)
        material = make_material(work)
        for number in range(1, args.rounds + 1):
            # Every other round backwards, so a drift in the machine's load does not always favour the same end.
            order = args.features if number % 2 else args.features[::-1]
            rounds.append(run_round(number, order, material, work, args))
        summaries = summarize(rounds, names)
        print_table(summaries)
        path = write_json(args, machine, material, names, rounds, summaries)
    print(f"\nresults written to {path}")
    missed = any(s.passed is False for s in summaries)
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
