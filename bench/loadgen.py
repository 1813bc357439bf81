"""Closed-loop load generation for the service benchmarks, in client processes separate from the server.

A case runs in P client processes with T threads each (concurrency N = P*T outstanding calls). Every thread
issues blocking unary calls back to back; the echo cases and the secretsvc cases use exactly this same loop
and the same channel settings, so the client's own cost is the same on both sides of a ratio. Only calls that
complete inside the measurement window (after the warm-up) are counted.

A worker's channel is plaintext, or TLS (`Tls`: the CA that signed the server's certificate, and a client
certificate for mutual TLS); its calls carry `authorization: Bearer TOKEN` with any token string (a static
token, a JWT), or no credentials at all when the token is None (a client certificate identifies the caller).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from echo_server import ECHO_METHOD

from secretsvc.service import limits
from secretsvc.v1 import secrets_pb2, secrets_pb2_grpc, transit_pb2, transit_pb2_grpc

NAMESPACE = "bench"
TRANSIT_KEY = "bench"
GET_PATH_FORMAT = "get/{:05d}"
# Per-process limits, so a typo on the command line cannot fork-bomb the machine.
MAX_THREADS_PER_PROCESS = 256
MAX_PROCESSES = 16
CHANNEL_READY_TIMEOUT_S = 20.0
CALL_TIMEOUT_S = 30.0
KINDS = ("echo", "get", "put", "encrypt")

Call = Callable[[], object]


@dataclass(frozen=True, slots=True)
class Case:
    kind: str  # one of KINDS
    payload: int  # bytes of value / plaintext / echo message
    concurrency: int

    @property
    def label(self) -> str:
        return f"{self.kind} {human_size(self.payload)} c{self.concurrency}"


@dataclass(frozen=True, slots=True)
class Tls:
    """A TLS channel's files (PEM), read in the client process. With `client_cert` and `client_key`, mutual
    TLS. `server_name` overrides the name the server's certificate is checked against (None: the target's
    host, which the certificate must name)."""

    ca_file: Path
    client_cert: Path | None = None
    client_key: Path | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("a client certificate needs its key, and a key its certificate")


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What one client process does; picklable, so it crosses the spawn boundary."""

    case: Case
    target: str
    token: str | None  # the bearer token, any string; None sends no authorization metadata
    process_index: int
    threads: int
    warmup_s: float
    duration_s: float
    seed: int
    get_paths: int
    tls: Tls | None = None  # None: plaintext


@dataclass(frozen=True, slots=True)
class WorkerResult:
    latencies_s: tuple[float, ...]
    errors: int
    first_error: str  # a status code name only: messages may echo request data
    cpu_s: float  # this client process's CPU time inside the window


@dataclass(frozen=True, slots=True)
class Stats:
    ops: int
    ops_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    first_error: str


def human_size(n: int) -> str:
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)}MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024}KiB"
    return f"{n}B"


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an ascending sequence; nan when empty."""
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(results: Sequence[WorkerResult], duration_s: float) -> Stats:
    latencies = sorted(x for r in results for x in r.latencies_s)
    errors = sum(r.errors for r in results)
    first = next((r.first_error for r in results if r.first_error), "")
    return Stats(
        ops=len(latencies),
        ops_per_s=len(latencies) / duration_s if duration_s > 0 else math.nan,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        errors=errors,
        first_error=first,
    )


def split_concurrency(concurrency: int, processes: int) -> list[int]:
    """Threads per process, as even as possible; never more processes than outstanding calls."""
    if concurrency < 1 or processes < 1:
        raise ValueError("concurrency and processes must be at least 1")
    if processes > MAX_PROCESSES:
        raise ValueError(f"at most MAX_PROCESSES={MAX_PROCESSES} client processes")
    processes = min(processes, concurrency)
    base, extra = divmod(concurrency, processes)
    threads = [base + (1 if i < extra else 0) for i in range(processes)]
    if max(threads) > MAX_THREADS_PER_PROCESS:
        raise ValueError(f"at most MAX_THREADS_PER_PROCESS={MAX_THREADS_PER_PROCESS} threads per process")
    return threads


def channel_options() -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", limits.MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", limits.MAX_MESSAGE_BYTES),
    ]


def open_channel(target: str, tls: Tls | None) -> grpc.Channel:
    """A plaintext channel, or a TLS one with the same options (and a client certificate for mutual TLS)."""
    if tls is None:
        return grpc.insecure_channel(target, options=channel_options())
    key = tls.client_key.read_bytes() if tls.client_key is not None else None
    cert = tls.client_cert.read_bytes() if tls.client_cert is not None else None
    credentials = grpc.ssl_channel_credentials(tls.ca_file.read_bytes(), key, cert)
    options: list[tuple[str, int | str]] = [*channel_options()]
    if tls.server_name is not None:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.secure_channel(target, credentials, options=options)


def call_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return () if token is None else (("authorization", f"Bearer {token}"),)


def make_call(spec: WorkerSpec, channel: grpc.Channel, thread_index: int) -> Call:
    """The zero-argument call one thread repeats. Request messages are built once where the case allows,
    so the client does the same work per call for echo and for secretsvc."""
    metadata = call_metadata(spec.token)
    rng = random.Random(spec.seed * 1_000_003 + spec.process_index * 1009 + thread_index)
    payload = rng.randbytes(spec.case.payload)
    kind = spec.case.kind
    if kind == "echo":
        echo = channel.unary_unary(ECHO_METHOD, request_serializer=None, response_deserializer=None)
        return lambda: echo(payload, metadata=metadata, timeout=CALL_TIMEOUT_S)
    if kind == "get":
        secrets = secrets_pb2_grpc.SecretsStub(channel)  # type: ignore[no-untyped-call]
        requests = [
            secrets_pb2.GetSecretRequest(
                ref=secrets_pb2.SecretRef(namespace=NAMESPACE, path=GET_PATH_FORMAT.format(i))
            )
            for i in range(spec.get_paths)
        ]
        return lambda: secrets.GetSecret(rng.choice(requests), metadata=metadata, timeout=CALL_TIMEOUT_S)
    if kind == "put":
        secrets = secrets_pb2_grpc.SecretsStub(channel)  # type: ignore[no-untyped-call]
        prefix = f"put/{spec.seed}/{spec.case.concurrency}/{spec.process_index}-{thread_index}/"
        counter = iter(range(1 << 62))
        # A fresh path per call: each put creates a secret, so no call waits on a version conflict.
        return lambda: secrets.PutSecret(
            secrets_pb2.PutSecretRequest(
                ref=secrets_pb2.SecretRef(namespace=NAMESPACE, path=f"{prefix}{next(counter)}"), value=payload
            ),
            metadata=metadata, timeout=CALL_TIMEOUT_S,
        )
    if kind == "encrypt":
        transit = transit_pb2_grpc.TransitStub(channel)  # type: ignore[no-untyped-call]
        request = transit_pb2.EncryptRequest(key_name=TRANSIT_KEY, plaintext=payload)
        return lambda: transit.Encrypt(request, metadata=metadata, timeout=CALL_TIMEOUT_S)
    raise ValueError(f"unknown case kind {kind!r}; expected one of {', '.join(KINDS)}")


def _drive(call: Call, window: tuple[float, float], out: list[float], errors: list[str]) -> None:
    start, end = window
    perf = time.perf_counter
    while True:
        t0 = perf()
        if t0 >= end:
            return
        try:
            call()
        except grpc.RpcError as exc:
            # The raised object is also a grpc.Call, but the type stubs cannot say so.
            code_of = getattr(exc, "code", None)
            code = code_of() if callable(code_of) else None
            errors.append(code.name if isinstance(code, grpc.StatusCode) else type(exc).__name__)
            continue
        t1 = perf()
        if start <= t1 < end:
            out.append(t1 - t0)


def run_worker(spec: WorkerSpec, ready: threading.Barrier | None = None) -> WorkerResult:
    """Run one client process's share of a case. `ready` (a multiprocessing barrier) lines processes up so
    their windows coincide; the window starts `warmup_s` after the barrier releases."""
    with open_channel(spec.target, spec.tls) as channel:
        grpc.channel_ready_future(channel).result(timeout=CHANNEL_READY_TIMEOUT_S)
        calls = [make_call(spec, channel, i) for i in range(spec.threads)]
        if ready is not None:
            ready.wait()
        begin = time.perf_counter()
        window = (begin + spec.warmup_s, begin + spec.warmup_s + spec.duration_s)
        outs: list[list[float]] = [[] for _ in calls]
        errs: list[list[str]] = [[] for _ in calls]
        threads = [
            threading.Thread(target=_drive, args=(c, window, o, e), daemon=True)
            for c, o, e in zip(calls, outs, errs, strict=True)
        ]
        for t in threads:
            t.start()
        time.sleep(max(0.0, window[0] - time.perf_counter()))
        cpu0 = time.process_time()
        time.sleep(max(0.0, window[1] - time.perf_counter()))
        cpu1 = time.process_time()
        for t in threads:
            t.join(CALL_TIMEOUT_S + 5)
    all_errors = [x for e in errs for x in e]
    return WorkerResult(
        latencies_s=tuple(x for o in outs for x in o),
        errors=len(all_errors),
        first_error=all_errors[0] if all_errors else "",
        cpu_s=cpu1 - cpu0,
    )
