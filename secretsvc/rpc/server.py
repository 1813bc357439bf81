"""Assemble and run the gRPC server: data directory, keyring, store, services, interceptors, shutdown."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from secretsvc.atomicfile import write_atomically
from secretsvc.audit.writer import AuditLog
from secretsvc.auth.certs import IdentitySource, principal_from_auth_context
from secretsvc.auth.tokens import MintedToken, mint_token
from secretsvc.boundedio import read_bounded
from secretsvc.config import ServerConfig
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.datadir import DataDir
from secretsvc.errors import ConfigError, KeyringError
from secretsvc.netaddr import parse_host_port
from secretsvc.rpc import tls
from secretsvc.rpc.access_servicer import AccessServicer
from secretsvc.rpc.authn import CertificateIdentity
from secretsvc.rpc.interceptors import server_interceptors
from secretsvc.rpc.matching_servicer import MatchingServicer
from secretsvc.rpc.metrics import RpcMetrics
from secretsvc.rpc.policy_servicer import PoliciesServicer
from secretsvc.rpc.servicers import AdminServicer, SecretsServicer, TokensServicer, TransitServicer
from secretsvc.rpc.streamslots import StreamSlots
from secretsvc.rpc.workers import WorkerRole
from secretsvc.service import limits
from secretsvc.service.accessreview import AccessReviewService
from secretsvc.service.fingerprints import FingerprintBackfill, FingerprintKeys
from secretsvc.service.livepolicies import ReloadLoop
from secretsvc.service.matching import MatchService
from secretsvc.service.policies import PolicyService
from secretsvc.service.rootkey import RootKeyService
from secretsvc.service.secrets import SecretService
from secretsvc.service.tokens import TokenService
from secretsvc.service.transit import TransitService
from secretsvc.service.watch import WatchService
from secretsvc.store._sqlite_changes import SqliteChangeSource
from secretsvc.store.sqlite import SqliteStore
from secretsvc.v1 import (
    access_pb2,
    access_pb2_grpc,
    admin_pb2,
    admin_pb2_grpc,
    matching_pb2,
    matching_pb2_grpc,
    policies_pb2,
    policies_pb2_grpc,
    secrets_pb2,
    secrets_pb2_grpc,
    tokens_pb2,
    tokens_pb2_grpc,
    transit_pb2,
    transit_pb2_grpc,
)
from secretsvc.wiring import Backends, open_audit, open_authenticators, open_backends

if TYPE_CHECKING:
    from secretsvc.kek.probe import KekProbe

log = logging.getLogger("secretsvc.server")

MAX_PASSPHRASE_BYTES = 4096
KEEPALIVE_SECONDS = 60
KEEPALIVE_TIMEOUT_SECONDS = 20
WATCH_METHODS = frozenset({"/secretsvc.v1.Secrets/WatchSecrets"})
_SERVICE_NAMES = (
    secrets_pb2.DESCRIPTOR.services_by_name["Secrets"].full_name,
    transit_pb2.DESCRIPTOR.services_by_name["Transit"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
    tokens_pb2.DESCRIPTOR.services_by_name["Tokens"].full_name,
    policies_pb2.DESCRIPTOR.services_by_name["Policies"].full_name,
    access_pb2.DESCRIPTOR.services_by_name["Access"].full_name,
    matching_pb2.DESCRIPTOR.services_by_name["Matching"].full_name,
)


def _read_passphrase(path: Path | None) -> SecretBytes | None:
    if path is None:
        env = os.environ.get("SECRETSVC_KEYRING_PASSPHRASE")
        return SecretBytes(env.encode()) if env else None
    raw = read_bounded(path, MAX_PASSPHRASE_BYTES, what="keyring passphrase file", limit_name="MAX_PASSPHRASE_BYTES",
                       error=ConfigError)
    passphrase = raw.rstrip(b"\r\n")
    if not passphrase:
        raise ConfigError(f"keyring passphrase file {path} is empty")
    return SecretBytes(passphrase)


def _announce_admin_token(minted: MintedToken, token_file: Path | None) -> None:
    if token_file is not None:
        write_atomically(token_file, minted.token.encode() + b"\n", mode=0o600)
        print(f"secretsvc: initial admin token written to {token_file} (mode 0600)", file=sys.stderr)
        return
    print(
        "\nsecretsvc: first start. This is the initial admin token; it is shown once and stored only as a hash:\n\n"
        f"    {minted.token}\n\n"
        "Use it with: export SECRETSVC_TOKEN=<token>  (or --token-file FILE)\n",
        file=sys.stderr,
    )


def _certificate_identity(config: ServerConfig) -> CertificateIdentity | None:
    if config.client_auth != "required":
        return None
    source = cast(IdentitySource, config.client_identity)  # one of CLIENT_IDENTITY_SOURCES, checked at load
    return lambda auth_context: principal_from_auth_context(auth_context, source)


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    close: Callable[[], None]
    reload_policies: Callable[[], None]  # now, on the reload thread (SIGHUP)
    metrics_port: int = 0  # where /metrics is served, 0 for nowhere

    def stop(self, grace: float) -> None:
        for name in ("", *_SERVICE_NAMES):
            self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.server.stop(grace).wait()
        self.close()


def start(config: ServerConfig, role: WorkerRole | None = None) -> RunningServer:
    """Start serving. `role`: this is one of several worker processes (rpc/workers.py), which share the port,
    the audit chain and the store's change notices with the others."""
    datadir = DataDir.held_by_supervisor(config.data_dir) if role is not None else DataDir.open(config.data_dir)
    backends: Backends | None = None
    audit: AuditLog | None = None
    reloads: ReloadLoop | None = None
    # Ends the start-up fingerprint backfill (service/fingerprints.py) before the store closes.
    stop_backfill = threading.Event()
    sqlite_changes: SqliteChangeSource | None = None
    try:
        backends = open_backends(datadir, _read_passphrase(config.keyring_passphrase_file), config.policy_paths,
                                 config.kek, config.store_config)
        store, keyring = backends.store, backends.kek
        reloads = ReloadLoop(backends.policies, config.policy_reload_seconds)
        if config.audit_enabled:
            audit = open_audit(config, datadir, shared=role is not None,
                               start_checkpoint=role is None or not role.joins)
        else:
            log.warning("the audit log is off (audit_enabled=no): no record is kept of who did what")
        if store.count_tokens() == 0:
            minted = mint_token("admin", now=time.time(), policies=("admin",))
            store.put_token(minted.record)
            _announce_admin_token(minted, config.admin_token_file)

        metrics = RpcMetrics.create()
        if backends.remote_kek is not None and backends.remote_kek.cache is not None:
            from secretsvc.kek.cachemetrics import DataKeyCacheCollector

            metrics.registry.register(DataKeyCacheCollector(backends.remote_kek.cache))
        authenticators = open_authenticators(config, store, backends.relay)
        token_auth = authenticators.tokens
        watches = None
        if config.max_watches:
            watches = StreamSlots(max_total=config.max_watches, max_per_peer=config.max_watches_per_caller,
                                  settings=("max_watches", "max_watches_per_caller"))
        server = grpc.server(
            # Threads are made on demand: unary calls take at most `workers` turns at once (the interceptor
            # holds the others back), streams at most `stream_limit`, watches at most `max_watches`.
            futures.ThreadPoolExecutor(max_workers=config.workers + config.stream_limit + config.max_watches,
                                       thread_name_prefix="rpc"),
            interceptors=server_interceptors(
                authenticators.callers, metrics,
                streams=StreamSlots(max_total=config.stream_limit, max_per_peer=config.max_streams_per_peer),
                certificate_identity=_certificate_identity(config), audit=audit,
                watches=watches, watch_methods=WATCH_METHODS,
                unary_turns=threading.BoundedSemaphore(config.workers),
            ),
            options=[
                ("grpc.max_receive_message_length", limits.MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", limits.MAX_MESSAGE_BYTES),
                # Worker processes listen on one port and the kernel spreads connections over them; a lone
                # server refuses a port another process holds.
                ("grpc.so_reuseport", 1 if role is not None else 0),
                # A ping every KEEPALIVE_SECONDS on every connection, even one that only holds a quiet watch:
                # the server learns of a client that vanished (and frees its watch slot) within a minute and a
                # half instead of TCP's two hours, and the client learns that a silent stream is still alive.
                ("grpc.keepalive_time_ms", KEEPALIVE_SECONDS * 1000),
                ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_SECONDS * 1000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.max_pings_without_data", 0),
            ],
        )
        authorizer = backends.policies
        changes = backends.changes  # also fed by other replicas' writes (wiring.py)
        backends.policies.add_listener(changes.recheck_all)
        fingerprint_keys = FingerprintKeys(store, keyring, time.time)
        backfill = FingerprintBackfill(store, keyring, fingerprint_keys)
        secrets_pb2_grpc.add_SecretsServicer_to_server(
            SecretsServicer(SecretService(store, keyring, time.time, authorizer, config.default_max_versions,
                                          changes, fingerprint_keys),
                            WatchService(store, authorizer, changes)),
            server,
        )
        transit_pb2_grpc.add_TransitServicer_to_server(
            TransitServicer(TransitService(store, keyring, time.time, authorizer)), server
        )
        admin_pb2_grpc.add_AdminServicer_to_server(AdminServicer(RootKeyService(store, keyring, authorizer)),
                                                   server)
        tokens_pb2_grpc.add_TokensServicer_to_server(
            TokensServicer(TokenService(store, authorizer, time.time, token_auth.forget_token)), server
        )
        policies_pb2_grpc.add_PoliciesServicer_to_server(
            PoliciesServicer(PolicyService(store, backends.policies, authorizer, time.time)), server
        )
        access_pb2_grpc.add_AccessServicer_to_server(
            AccessServicer(AccessReviewService(store, backends.policies, authorizer)), server
        )
        matching_pb2_grpc.add_MatchingServicer_to_server(
            MatchingServicer(MatchService(store, fingerprint_keys, authorizer, backfill.done.is_set)), server
        )
        health_servicer = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        if config.reflection:
            reflection.enable_server_reflection(
                (*_SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                 reflection.SERVICE_NAME),
                server,
            )
        port = tls.bind(server, config)
        if port == 0:
            raise ConfigError(f"cannot listen on {config.listen} (address in use or not available)")
        worker_metrics_port = 0
        if config.metrics_listen:
            host, metrics_port = parse_host_port(config.metrics_listen, setting="metrics_listen")
            if role is not None:
                # A worker's metrics are for its supervisor, which serves them all on metrics_listen with a
                # worker label (rpc/workermetrics.py): a port of its own on loopback.
                host, metrics_port = "127.0.0.1", 0
            try:
                httpd, _ = start_http_server(metrics_port, addr=host, registry=metrics.registry)
            except OSError as exc:
                raise ConfigError(f"cannot serve metrics on {config.metrics_listen}: {exc.strerror}") from None
            worker_metrics_port = int(httpd.server_port)
        if role is not None and backends.change_source is None and isinstance(store, SqliteStore):
            # Workers on one SQLite file: another worker's writes, revocations and policies reach this one.
            sqlite_changes = SqliteChangeSource(store.path)
            if backends.relay is not None:
                sqlite_changes.start(backends.relay)
        server.start()
        reloads.start()
        backfill_thread = backfill.start(stop_backfill)
        # NOT_SERVING while a key-encryption key the server started without reaching is not yet checked.
        ready = backends.remote_kek is None or backends.remote_kek.ready
        for name in ("", *_SERVICE_NAMES):
            health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING if ready
                                else health_pb2.HealthCheckResponse.NOT_SERVING)
        kek_probe = _kek_probe(backends, config, health_servicer)
    except BaseException:
        stop_backfill.set()
        if sqlite_changes is not None:
            sqlite_changes.close()
        if reloads is not None:
            reloads.stop()
        if audit is not None:
            audit.close()
        if backends is not None:
            backends.close()
        datadir.release()
        raise

    def close() -> None:
        if kek_probe is not None:
            kek_probe.stop()
        reloads.stop()
        if sqlite_changes is not None:
            sqlite_changes.close()
        stop_backfill.set()
        backfill_thread.join(timeout=BACKFILL_STOP_SECONDS)
        # After the server has stopped: every call that ran has its record, then the shutdown checkpoint.
        if audit is not None:
            audit.close()
        backends.close()
        datadir.release()

    return RunningServer(server=server, port=port, health=health_servicer, close=close,
                         reload_policies=reloads.wake, metrics_port=worker_metrics_port)


def _kek_probe(backends: Backends, config: ServerConfig, health_servicer: health.HealthServicer) -> KekProbe | None:
    """Readiness follows a remote key-encryption key: NOT_SERVING while it cannot be reached (docs/kek.md)."""
    if backends.remote_kek is None or not backends.remote_kek.remote:
        return None
    from secretsvc.kek.probe import KekProbe

    def report(reachable: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if reachable else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", *_SERVICE_NAMES):
            health_servicer.set(name, status)

    interval = config.kek.health_seconds if config.kek is not None else 10.0
    probe = KekProbe(backends.remote_kek.probed, report, interval, reachable=backends.remote_kek.ready)
    probe.start()
    return probe


# How long a stopping server waits for the fingerprint backfill to finish its batch before closing the store.
BACKFILL_STOP_SECONDS = 10.0


# glibc mallopt parameters (malloc.h) and the values `serve` sets; see `tune_malloc` for why.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MALLOC_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's ceiling for this setting on 64-bit
MALLOC_TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024
MALLOC_ARENA_MAX = 4


def tune_malloc() -> bool:
    """Keep freed large buffers in the process instead of handing them back to the kernel (glibc only).

    A 1 MiB Encrypt allocates several 1 MiB buffers (request, ciphertext, envelope, response, its
    serialization). By default glibc serves each from a fresh mmap or trims the heap when it is freed, so
    every call maps new pages and takes ~1,000 page faults, which cost more CPU than the encryption
    (docs/performance.md). Fixed thresholds make such buffers come from the heap and stay there; memory
    then stays at its high-water mark, which MAX_MESSAGE_BYTES and the worker count bound, and the arena cap
    keeps worker threads from each retaining their own. Must run before the gRPC threads start. Returns
    whether the settings were applied; elsewhere than glibc it does nothing. The MALLOC_*_ environment
    variables, if set, are overridden.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it; musl's mallopt is a stub
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    applied = [
        mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD_BYTES),
        mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD_BYTES),
        mallopt(_M_ARENA_MAX, MALLOC_ARENA_MAX),
    ]
    return all(r == 1 for r in applied)


def serve(config: ServerConfig, role: WorkerRole | None = None) -> int:
    """Run until SIGTERM or SIGINT, then drain in-flight RPCs for up to the grace period. A worker process
    (`role`) also stops when its supervisor is gone."""
    if not tune_malloc():
        log.info("malloc tuning not applied (not glibc); large calls will take page faults")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    running: RunningServer | None = None

    def on_hangup(signum: int, frame: FrameType | None) -> None:
        if running is not None:
            running.reload_policies()

    # Installed before the server starts, so a signal that arrives as soon as it is healthy still drains it
    # (and a SIGHUP during start-up, with the policies just loaded, does not kill it).
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_hangup)
    try:
        running = start(config, role)
    except KeyringError as exc:
        print(f"secretsvc: keyring error: {exc}", file=sys.stderr)
        return 1
    host, _ = parse_host_port(config.listen, setting="listen")
    log.info("serving", extra={"listen": f"{host}:{running.port}", "data_dir": str(config.data_dir),
                               "metrics": config.metrics_listen or None,
                               "worker": None if role is None else role.index})
    if role is None:
        print(f"secretsvc: listening on {host}:{running.port} (data dir {config.data_dir})", file=sys.stderr,
              flush=True)
    else:
        role.announce(running.port, running.metrics_port)
    # Wait in short slices: the kernel may deliver SIGTERM to one of gRPC's threads, and then the main thread
    # runs the Python handler only once it wakes up on its own.
    while not stop.wait(0.2):
        if role is not None and os.getppid() != role.parent:
            log.error("the supervisor is gone; stopping", extra={"worker": role.index})
            break
    log.info("shutting down", extra={"grace_seconds": config.shutdown_grace_seconds})
    running.stop(config.shutdown_grace_seconds)
    log.info("stopped")
    return 0
