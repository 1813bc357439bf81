"""Watch fan-out: N watchers on one server, and how long from a put until every one of them is told.

    .venv/bin/python bench/watch_bench.py                 # 500 watchers, 10 puts
    .venv/bin/python bench/watch_bench.py --watchers 1000 --rounds 20

One `secretsvc serve` on a fresh data directory (`--max-watches-per-caller` raised so one token may hold them
all). The watchers are asyncio gRPC streams spread over `--client-procs` processes, all on the one secret
`bench/watched`. Each round, the driver records CLOCK_MONOTONIC (shared by every process on Linux), puts a new
version, and each watcher records when its change arrived; the round's figures are the delay of the median,
the 99th percentile and the last watcher, counted from the start of the put (whose own latency, a durable
commit, is reported beside them). Between rounds it also times GetSecret calls, to show that open
watches leave unary calls their threads. Results go to stdout and bench/out/watch_bench-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import procs

from secretsvc.v1 import secrets_pb2, secrets_pb2_grpc

NAMESPACE, PATH = "bench", "watched"
OUT_DIR = procs.BENCH_DIR / "out"


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _watchers(target: str, token: str, count: int, ready: Any, arrivals: Any, stop: Any) -> None:
    metadata = (("authorization", f"Bearer {token}"),)
    request = secrets_pb2.WatchSecretsRequest(refs=[secrets_pb2.SecretRef(namespace=NAMESPACE, path=PATH)])
    async with grpc.aio.insecure_channel(target) as channel:
        stub = secrets_pb2_grpc.SecretsStub(channel)

        async def one() -> None:
            stream = stub.WatchSecrets(request, metadata=metadata)
            first = True
            async for response in stream:
                now = time.monotonic()
                if first:
                    first = False
                    ready.put(1)
                    continue
                arrivals.put((response.changes[0].current_version, now))

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        while not stop.is_set():
            await asyncio.sleep(0.2)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _client_main(target: str, token: str, count: int, ready: Any, arrivals: Any, stop: Any) -> None:
    asyncio.run(_watchers(target, token, count, ready, arrivals, stop))


def _unary_latency(stub: secrets_pb2_grpc.SecretsStub, metadata: Any, calls: int) -> list[float]:
    request = secrets_pb2.GetSecretRequest(ref=secrets_pb2.SecretRef(namespace=NAMESPACE, path=PATH))
    took = []
    for _ in range(calls):
        started = time.perf_counter()
        stub.GetSecret(request, metadata=metadata, timeout=30)
        took.append((time.perf_counter() - started) * 1000)
    return took


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--watchers", type=int, default=500)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--client-procs", type=int, default=2)
    p.add_argument("--workers", type=int, default=16, help="the server's --workers")
    p.add_argument("--out-dir", type=Path, default=OUT_DIR)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="watch-bench-") as tmp:
        env = {"SECRETSVC_MAX_WATCHES": str(max(1000, args.watchers)),
               "SECRETSVC_MAX_WATCHES_PER_CALLER": str(args.watchers)}
        server, token = procs.start_secretsvc(Path(tmp), args.workers, env)
        metadata = (("authorization", f"Bearer {token}"),)
        channel = grpc.insecure_channel(server.target)
        stub = secrets_pb2_grpc.SecretsStub(channel)
        ref = secrets_pb2.SecretRef(namespace=NAMESPACE, path=PATH)
        stub.PutSecret(secrets_pb2.PutSecretRequest(ref=ref, value=b"0"), metadata=metadata)
        before = _unary_latency(stub, metadata, 200)
        ready, arrivals, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
        shares = [args.watchers // args.client_procs + (i < args.watchers % args.client_procs)
                  for i in range(args.client_procs)]
        clients = [ctx.Process(target=_client_main, args=(server.target, token, n, ready, arrivals, stop))
                   for n in shares if n]
        try:
            for client in clients:
                client.start()
            for _ in range(args.watchers):
                ready.get(timeout=120)
            idle = procs.usage(server.pid)
            time.sleep(2)
            spent = procs.usage(server.pid).minus(idle)
            idle_cpu_pct = (spent.user_s + spent.sys_s) / 2 * 100  # of one core, over those 2 s
            rounds = []
            during: list[float] = []
            for number in range(args.rounds):
                started = time.monotonic()
                put = stub.PutSecret(secrets_pb2.PutSecretRequest(ref=ref, value=str(number).encode()),
                                     metadata=metadata)
                put_ms = (time.monotonic() - started) * 1000
                delays = []
                while len(delays) < args.watchers:
                    version, arrived = arrivals.get(timeout=60)
                    if version == put.version:
                        delays.append((arrived - started) * 1000)
                rounds.append({"put_ms": put_ms, "p50_ms": statistics.median(delays),
                               "p99_ms": _percentile(delays, 0.99), "all_ms": max(delays)})
                during.extend(_unary_latency(stub, metadata, 20))
        finally:
            stop.set()
            for client in clients:
                client.join(timeout=30)
                if client.is_alive():
                    client.terminate()
            channel.close()
            server.stop()
    summary = {
        "watchers": args.watchers,
        "rounds": len(rounds),
        "put_ms_median": statistics.median(r["put_ms"] for r in rounds),
        "notify_p50_ms": statistics.median(r["p50_ms"] for r in rounds),
        "notify_p99_ms": statistics.median(r["p99_ms"] for r in rounds),
        "all_notified_ms_median": statistics.median(r["all_ms"] for r in rounds),
        "all_notified_ms_worst": max(r["all_ms"] for r in rounds),
        "get_p50_ms_without_watches": statistics.median(before),
        "get_p50_ms_with_watches": statistics.median(during),
        "server_idle_cpu_pct_with_watches": idle_cpu_pct,
    }
    print(f"{args.watchers} watchers, {len(rounds)} puts")
    for key, value in summary.items():
        if isinstance(value, float):
            print(f"  {key:<36} {value:10.1f}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = args.out_dir / f"watch_bench-{stamp}.json"
    out.write_text(json.dumps({"summary": summary, "rounds": rounds, "args": {
        k: str(v) for k, v in vars(args).items()}}, indent=2))
    print(f"  written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
