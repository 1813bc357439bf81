"""The gRPC listener's transport security: TLS, mutual TLS, and certificates that reload without a restart.

gRPC calls `ReloadingCertificates` before every TLS handshake (`grpc.dynamic_ssl_server_credentials`). It
looks at the files at most once per RELOAD_CHECK_INTERVAL_SECONDS, with `stat` alone (device, inode, size,
mtime, following symlinks, so Kubernetes' atomic `..data` symlink swap counts as a change), and only when
something changed does it read and check them again. A new set is used only if it is whole: the certificate
parses and has not expired, the key belongs to it, the client CA bundle parses. Otherwise the current set
stays and the reason is logged once per change, so a half-written or mismatched update never breaks
handshakes.

Client authentication is fixed when the listener is created: gRPC Python offers only "require and verify a
client certificate" or "do not ask for one" (see docs/tls.md), so the mode is "off" or "required".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import cast

import grpc

from secretsvc.config import ServerConfig
from secretsvc.crypto import pki
from secretsvc.errors import ConfigError
from secretsvc.filestate import signature as _signature
from secretsvc.netaddr import is_loopback, parse_host_port
from secretsvc.tlsfiles import ServerTls, read_server_tls

log = logging.getLogger("secretsvc.tls")

# gRPC asks before every handshake; stat'ing three files that often would be waste under a connection storm.
RELOAD_CHECK_INTERVAL_SECONDS = 1.0

def _configuration(material: ServerTls) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration(
        [(material.pair.key_pem.reveal(), material.pair.chain.pem)], root_certificates=material.client_ca_pem
    )


class ReloadingCertificates:
    """The certificate-configuration fetcher: a new configuration when the files changed and check out."""

    def __init__(
        self,
        cert: Path,
        key: Path,
        client_ca: Path | None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = pki.utc_now,
        interval: float | None = None,  # None: RELOAD_CHECK_INTERVAL_SECONDS
    ) -> None:
        self._paths = (cert, key) + ((client_ca,) if client_ca is not None else ())
        self._cert, self._key, self._client_ca = cert, key, client_ca
        self._monotonic = monotonic
        self._now = now
        self._interval = RELOAD_CHECK_INTERVAL_SECONDS if interval is None else interval
        self._lock = threading.Lock()
        self._signature = _signature(self._paths)
        self._material = read_server_tls(cert, key, client_ca, now=now())  # ConfigError: refuse to start
        self._next_check = monotonic() + self._interval

    @property
    def material(self) -> ServerTls:
        return self._material

    def initial(self) -> grpc.ServerCertificateConfiguration:
        return _configuration(self._material)

    def __call__(self) -> grpc.ServerCertificateConfiguration | None:
        """A new configuration for this and later handshakes, or None to keep the current one."""
        # A handshake that finds another thread checking goes ahead with the current set rather than waiting.
        if self._monotonic() < self._next_check or not self._lock.acquire(blocking=False):
            return None
        try:
            self._next_check = self._monotonic() + self._interval
            return self._check()
        except Exception:
            log.exception("TLS certificate reload check failed; keeping the current certificates")
            return None
        finally:
            self._lock.release()

    def _check(self) -> grpc.ServerCertificateConfiguration | None:
        signature = _signature(self._paths)
        if signature == self._signature:
            return None
        # Remember the files as seen now even if they fail: the reason is logged once, and the next change
        # (the rest of a rotation arriving) is checked again.
        self._signature = signature
        try:
            material = read_server_tls(self._cert, self._key, self._client_ca, now=self._now())
        except ConfigError as exc:
            log.warning("TLS files changed but were not loaded; keeping the current certificates",
                        extra={"reason": str(exc)})
            return None
        self._material = material
        leaf = material.pair.chain.leaf
        log.info("TLS certificates reloaded", extra={
            "cert_file": str(self._cert), "subject": leaf.subject.rfc4514_string(),
            "serial": f"{leaf.serial_number:x}", "not_after": leaf.not_valid_after_utc.isoformat()})
        return _configuration(material)


def server_credentials(config: ServerConfig) -> tuple[grpc.ServerCredentials, ReloadingCertificates] | None:
    """TLS credentials for the listener, or None for plaintext (loopback, or behind a TLS proxy)."""
    if config.tls_cert is None or config.tls_key is None:
        return None
    reloader = ReloadingCertificates(config.tls_cert, config.tls_key, config.client_ca)
    # grpc-stubs leave out the None that gRPC documents as "keep the current configuration".
    fetcher = cast("Callable[[], grpc.ServerCertificateConfiguration]", reloader)
    credentials = grpc.dynamic_ssl_server_credentials(
        reloader.initial(), fetcher, require_client_authentication=config.client_auth == "required"
    )
    return credentials, reloader


def bind(server: grpc.Server, config: ServerConfig) -> int:
    """Add the gRPC listener to `server`; returns the port (0 when the address cannot be bound)."""
    secured = server_credentials(config)
    host, _ = parse_host_port(config.listen, setting="listen")
    try:
        if secured is None:
            port = server.add_insecure_port(config.listen)
        else:
            port = server.add_secure_port(config.listen, secured[0])
    except RuntimeError:
        return 0
    if secured is not None:
        leaf = secured[1].material.pair.chain.leaf
        log.info("TLS on the gRPC listener", extra={
            "client_auth": config.client_auth, "subject": leaf.subject.rfc4514_string(),
            "not_after": leaf.not_valid_after_utc.isoformat()})
    elif not is_loopback(host):
        # config.py refuses this unless allow_non_loopback is set; say loudly what the operator chose.
        log.warning(
            "PLAINTEXT gRPC on a non-loopback address: bearer tokens and secret values cross the network "
            "unencrypted unless a TLS-terminating proxy is in front (allow_non_loopback / "
            "--insecure-behind-tls-proxy is set)", extra={"listen": config.listen})
    return port
