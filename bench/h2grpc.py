"""h2load as a load generator for gRPC unary calls and for HTTP APIs: request bodies, runs and their output.

h2load (Debian `nghttp2-client`) posts one file as the body of every request. A gRPC unary call over HTTP/2 is
such a POST: `content-type: application/grpc`, `te: trailers`, and a body holding one length-prefixed message
(one flag byte, 0 for uncompressed, then the message length as a big-endian 32-bit integer, then the
serialized protobuf). h2load cannot read the `grpc-status` trailer, so a refused call looks like a success to
it (gRPC answers HTTP 200 either way); callers check outcomes another way, e.g. the server's own counters
(`rpc_counts` reads secretsvc's Prometheus text).

A case may run several h2load processes at once (each with its own body, e.g. each writing its own secret);
`start` launches one, `H2loadRun.finish` waits for it and reads its summary and per-request log.
"""

from __future__ import annotations

import re
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

H2LOAD = "h2load"
H2LOAD_MISSING = "h2load is not installed; on Debian or Ubuntu: apt-get install nghttp2-client"
GRPC_PREFIX = struct.Struct(">BI")  # compressed flag, message length
# The format allows 4 GiB - 1; no case here sends more than a few MiB.
MAX_GRPC_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_LOG_BYTES = 512 * 1024 * 1024  # h2load writes about 25 bytes per request
MAX_SUMMARY_CHARS = 64 * 1024
MAX_HEADERS = 16
_REQUESTS = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout"
)
_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
# secretsvc_rpc_requests_total{code="OK",method="GetSecret"} 200.0 (labels in any order)
_COUNTER = re.compile(r"^secretsvc_rpc_requests_total\{([^}]*)\} ([0-9.e+]+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="([^"]*)"')
MAX_METRICS_CHARS = 4 * 1024 * 1024


class FrameError(ValueError):
    """A gRPC length-prefixed message that is cut short, compressed, too long, or followed by junk."""


def grpc_frame(message: bytes) -> bytes:
    """One uncompressed gRPC length-prefixed message: what a unary call's request body is."""
    if len(message) > MAX_GRPC_MESSAGE_BYTES:
        raise FrameError(f"message of {len(message)} bytes is over MAX_GRPC_MESSAGE_BYTES={MAX_GRPC_MESSAGE_BYTES}")
    return GRPC_PREFIX.pack(0, len(message)) + message


def parse_grpc_frames(data: bytes) -> list[bytes]:
    """The messages of a body of length-prefixed messages (the inverse of grpc_frame, several in a row)."""
    messages = []
    at = 0
    while at < len(data):
        if len(data) - at < GRPC_PREFIX.size:
            raise FrameError(f"{len(data) - at} bytes at offset {at} are too few for a message prefix")
        flag, length = GRPC_PREFIX.unpack_from(data, at)
        if flag != 0:
            raise FrameError(f"message at offset {at} has compressed flag {flag}; only uncompressed is handled")
        if length > MAX_GRPC_MESSAGE_BYTES:
            raise FrameError(f"message at offset {at} claims {length} bytes, over MAX_GRPC_MESSAGE_BYTES")
        at += GRPC_PREFIX.size
        if len(data) - at < length:
            raise FrameError(
                f"message at offset {at - GRPC_PREFIX.size} claims {length} bytes, {len(data) - at} follow"
            )
        messages.append(data[at : at + length])
        at += length
    return messages


def grpc_headers(token: str | None) -> list[str]:
    """The headers h2load adds to make its POST a gRPC call (with a bearer token when given)."""
    headers = ["content-type: application/grpc", "te: trailers"]
    if token is not None:
        headers.append(f"authorization: Bearer {token}")
    return headers


@dataclass(frozen=True, slots=True)
class Request:
    """What one h2load process sends over and over: a URL, optional body file, headers, and HTTP/1.1 or h2c."""

    url: str
    body: Path | None
    headers: tuple[str, ...]
    http1: bool

    def __post_init__(self) -> None:
        if len(self.headers) > MAX_HEADERS or any("\n" in h or ":" not in h for h in self.headers):
            raise ValueError(f"headers must be at most {MAX_HEADERS} single-line 'name: value' strings")


@dataclass(frozen=True, slots=True)
class Summary:
    """h2load's own counts for the measured window (the warm-up is not in them)."""

    done: int
    succeeded: int
    failed: int
    errored: int
    timeout: int
    status_2xx: int
    status_other: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """One h2load process's measured requests: latencies from its log, its summary."""

    latencies_ms: tuple[float, ...]
    not_2xx: dict[int, int]  # HTTP status -> log lines with it, for answered requests not 2xx
    unanswered: int  # log lines with no status: requests cut off when the window closed
    summary: Summary


def parse_summary(text: str) -> Summary:
    text = text[-MAX_SUMMARY_CHARS:]
    requests, status = _REQUESTS.search(text), _STATUS.search(text)
    if requests is None or status is None:
        raise RuntimeError(f"h2load printed no request or status counts:\n{text[-2000:]}")
    done, succeeded, failed, errored, timeout = (int(requests.group(i)) for i in (3, 4, 5, 6, 7))
    s2, s3, s4, s5 = (int(status.group(i)) for i in (1, 2, 3, 4))
    return Summary(done, succeeded, failed, errored, timeout, s2, s3 + s4 + s5)


def parse_log(text: str) -> tuple[list[float], dict[int, int], int]:
    """(latency in ms per answered request, {status: count} of those not 2xx, requests with no status) from
    h2load's --log-file, whose lines are: start time (us since the epoch), HTTP status, microseconds until the
    end of the response. A status of 0 (or below) means no response came: h2load logs the requests still in
    flight when its window closes that way, and they are not counted as answered."""
    latencies: list[float] = []
    not_2xx: dict[int, int] = {}
    unanswered = 0
    for number, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) < 3 or not fields[2].isdigit() or not fields[1].lstrip("-").isdigit():
            raise RuntimeError(f"h2load log line {number} is not 'start<TAB>status<TAB>micros': {line[:80]!r}")
        status = int(fields[1])
        if status <= 0:
            unanswered += 1
            continue
        latencies.append(int(fields[2]) / 1000)
        if not 200 <= status < 300:
            not_2xx[status] = not_2xx.get(status, 0) + 1
    return latencies, not_2xx, unanswered


def version(h2load: str = H2LOAD) -> str:
    shown = subprocess.run([h2load, "--version"], capture_output=True, text=True, check=False, timeout=30)
    return shown.stdout.strip()[:200]


def duration_arg(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"  # h2load takes whole units only


@dataclass
class H2loadRun:
    proc: subprocess.Popen[str]
    log_file: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def finish(self, timeout_s: float) -> Outcome:
        try:
            stdout, stderr = self.proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise RuntimeError(f"h2load did not finish within {timeout_s:.0f} s") from None
        if self.proc.returncode != 0:
            raise RuntimeError(f"h2load exited {self.proc.returncode}: {(stderr or stdout)[-2000:]}")
        size = self.log_file.stat().st_size
        if size > MAX_LOG_BYTES:
            raise RuntimeError(f"h2load log {self.log_file} is {size} bytes, over MAX_LOG_BYTES={MAX_LOG_BYTES}")
        latencies, not_2xx, unanswered = parse_log(self.log_file.read_text())
        return Outcome(tuple(latencies), not_2xx, unanswered, parse_summary(stdout))


def start(
    request: Request, *, connections: int, warmup_s: float, duration_s: float, log_file: Path, h2load: str = H2LOAD
) -> H2loadRun:
    """One h2load process: `connections` connections, one request outstanding on each (`-m 1`: with HTTP/1.1
    a connection carries one at a time anyway, so both protocols see the same N outstanding requests), one
    thread, a warm-up and then a timed window whose requests alone are counted and logged."""
    command = [
        h2load,
        "-c",
        str(connections),
        "-m",
        "1",
        "-t",
        "1",
        "--warm-up-time",
        duration_arg(warmup_s),
        "-D",
        duration_arg(duration_s),
        "--log-file",
        str(log_file),
    ]
    if request.http1:
        command.append("--h1")
    if request.body is not None:
        command += ["-d", str(request.body)]
    for header in request.headers:
        command += ["-H", header]
    command.append(request.url)
    log_file.unlink(missing_ok=True)
    # The command line holds the bearer token (h2load has no header file): the benchmark's throwaway servers'
    # tokens only, and the command is never printed or recorded.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return H2loadRun(proc, log_file)


@dataclass(frozen=True, slots=True)
class Merged:
    """A case's h2load processes together."""

    latencies_ms: list[float]  # answered requests, sorted
    not_2xx: int  # answered, but not 2xx
    statuses: dict[int, int]  # those, by status
    broken: int  # what h2load counted as failed, errored or timed out
    unanswered: int  # cut off by the end of the window


def merge(outcomes: Sequence[Outcome]) -> Merged:
    latencies = sorted(x for o in outcomes for x in o.latencies_ms)
    # The log and the summary count the same requests: take the larger, not the sum.
    not_2xx = sum(max(sum(o.not_2xx.values()), o.summary.status_other) for o in outcomes)
    statuses: dict[int, int] = {}
    for o in outcomes:
        for status, n in o.not_2xx.items():
            statuses[status] = statuses.get(status, 0) + n
    broken = sum(o.summary.failed + o.summary.errored + o.summary.timeout for o in outcomes)
    return Merged(latencies, not_2xx, statuses, broken, sum(o.unanswered for o in outcomes))


def counter_total(metrics_text: str, name: str) -> float:
    """The sum of one counter's samples (every label set) in Prometheus text; 0 when it is absent."""
    if len(metrics_text) > MAX_METRICS_CHARS:
        raise RuntimeError(f"metrics text of {len(metrics_text)} chars is over MAX_METRICS_CHARS")
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([0-9.e+]+)$", re.MULTILINE)
    return sum(float(found.group(1)) for found in pattern.finditer(metrics_text))


def rpc_counts(metrics_text: str) -> dict[tuple[str, str], float]:
    """secretsvc's `secretsvc_rpc_requests_total` counters from its Prometheus text: (method, code) -> count."""
    if len(metrics_text) > MAX_METRICS_CHARS:
        raise RuntimeError(f"metrics text of {len(metrics_text)} chars is over MAX_METRICS_CHARS")
    counts: dict[tuple[str, str], float] = {}
    for found in _COUNTER.finditer(metrics_text):
        labels = dict(_LABEL.findall(found.group(1)))
        if "method" in labels and "code" in labels:
            # Several worker processes each report their own series (a worker label): they add up.
            key = (labels["method"], labels["code"])
            counts[key] = counts.get(key, 0.0) + float(found.group(2))
    return counts
