"""The HTTPS server's certificate, reloaded when its files change (cert-manager and Kubernetes Secrets rotate
them in place, by an atomic symlink swap).

The same pattern as the gRPC listener (secretsvc/rpc/tls.py): the files are looked at (stat only) at most once
per RELOAD_CHECK_INTERVAL_SECONDS, read and checked with `secretsvc.tlsfiles` only when they changed, and a new
set replaces the current one only if it is whole (parses, not expired, the key belongs to the certificate).
Each new connection is wrapped with the context current at that moment. The key goes to OpenSSL through an
anonymous memory file (memfd), so the bytes checked are the bytes loaded and no copy lands on a disk.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from secretsvc.crypto import pki
from secretsvc.errors import ConfigError
from secretsvc.filestate import signature as file_signature
from secretsvc.tlsfiles import ServerTls, read_server_tls

log = logging.getLogger("injector.webhook.tls")

RELOAD_CHECK_INTERVAL_SECONDS = 1.0

def _memory_file(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    return fd


def _context(material: ServerTls, cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    if not hasattr(os, "memfd_create"):  # not Linux: load the files themselves (checked a moment ago)
        ctx.load_cert_chain(cert, key)
        return ctx
    fds = [_memory_file("webhook-cert", material.pair.chain.pem),
           _memory_file("webhook-key", material.pair.key_pem.reveal())]
    try:
        ctx.load_cert_chain(f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}")
    finally:
        for fd in fds:
            os.close(fd)
    return ctx


class ReloadingContext:
    def __init__(self, cert: Path, key: Path, *, monotonic: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = pki.utc_now, interval: float = RELOAD_CHECK_INTERVAL_SECONDS) -> None:
        self._cert, self._key = cert, key
        self._monotonic, self._now, self._interval = monotonic, now, interval
        self._lock = threading.Lock()
        self._signature = file_signature((cert, key))
        material = read_server_tls(cert, key, None, now=now())  # ConfigError: refuse to start
        try:
            self._context = _context(material, cert, key)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"TLS certificate {cert} and key {key} cannot be used: {exc}") from None
        self._material = material
        self._next_check = monotonic() + interval

    @property
    def material(self) -> ServerTls:
        return self._material

    def context(self) -> ssl.SSLContext:
        """The context for a new connection: the current one, or a new one if the files changed and check out."""
        if self._monotonic() >= self._next_check and self._lock.acquire(blocking=False):
            try:
                self._next_check = self._monotonic() + self._interval
                self._check()
            except Exception:
                log.exception("TLS certificate reload check failed; keeping the current certificate")
            finally:
                self._lock.release()
        return self._context

    def _check(self) -> None:
        signature = file_signature((self._cert, self._key))
        if signature == self._signature:
            return
        self._signature = signature  # a failing set is reported once per change, not once per connection
        try:
            material = read_server_tls(self._cert, self._key, None, now=self._now())
            context = _context(material, self._cert, self._key)
        except (ConfigError, ssl.SSLError, OSError) as exc:
            log.warning("TLS files changed but were not loaded; keeping the current certificate",
                        extra={"reason": str(exc)})
            return
        self._context, self._material = context, material
        leaf = material.pair.chain.leaf
        log.info("TLS certificate reloaded", extra={
            "cert_file": str(self._cert), "subject": leaf.subject.rfc4514_string(),
            "serial": f"{leaf.serial_number:x}", "not_after": leaf.not_valid_after_utc.isoformat()})
