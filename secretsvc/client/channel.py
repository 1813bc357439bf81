"""A channel to the server: which transport, which certificates, and the interceptor that adds the rest.

Transport:
    a CA file, client certificate or key given   TLS (mutual TLS with the certificate and key)
    none given, loopback address                 plaintext, as the server listens by default
    none given, any other address                TLS verified with the system's roots (gRPC's bundle)
    insecure_plaintext                           plaintext anywhere, for a service mesh that adds TLS itself

Client certificates are read when the channel opens; open a new channel to use a rotated one. The token is
asked of its `TokenSource` on every call, so a rotated token file is picked up without reopening.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc

from secretsvc.client.interceptor import CallPolicy
from secretsvc.client.retry import RetryPolicy
from secretsvc.client.tokens import TokenSource
from secretsvc.config import DEFAULT_LISTEN
from secretsvc.errors import ConfigError
from secretsvc.netaddr import is_loopback, parse_host_port
from secretsvc.service import limits

DEFAULT_TIMEOUT_SECONDS = 30.0
_ENVIRONMENT = {
    "addr": "SECRETSVC_ADDR",
    "ca_file": "SECRETSVC_CA_FILE",
    "cert_file": "SECRETSVC_CLIENT_CERT",
    "key_file": "SECRETSVC_CLIENT_KEY",
}


@dataclass(frozen=True, slots=True)
class ClientSettings:
    addr: str = DEFAULT_LISTEN
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure_plaintext: bool = False
    timeout: float = DEFAULT_TIMEOUT_SECONDS  # deadline of a unary call, across all its attempts
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], **given: Any) -> ClientSettings:
        """Settings from keyword arguments (None: not given), else SECRETSVC_* variables, else defaults."""
        values = {k: v for k, v in given.items() if v is not None}
        for name, variable in _ENVIRONMENT.items():
            if name not in values and environ.get(variable):
                text = environ[variable]
                values[name] = text if name == "addr" else Path(text).expanduser()
        if "insecure_plaintext" not in values and environ.get("SECRETSVC_INSECURE_PLAINTEXT"):
            values["insecure_plaintext"] = environ["SECRETSVC_INSECURE_PLAINTEXT"].strip().lower() in {
                "1", "true", "yes", "on"}
        return replace(cls(), **values)

    @property
    def uses_tls(self) -> bool:
        if self.ca_file or self.cert_file or self.key_file:
            return True
        if self.insecure_plaintext:
            return False
        host, _ = parse_host_port(self.addr, setting="server address")
        return not is_loopback(host)


def channel_credentials(settings: ClientSettings) -> grpc.ChannelCredentials | None:
    """TLS credentials from the settings' files, or None for plaintext; ConfigError naming a bad file."""
    if settings.insecure_plaintext and (settings.ca_file or settings.cert_file or settings.key_file):
        raise ConfigError("insecure plaintext was asked for together with TLS files; choose one")
    if (settings.cert_file is None) != (settings.key_file is None):
        raise ConfigError("a client certificate needs its key: give both --cert and --key "
                          "(SECRETSVC_CLIENT_CERT, SECRETSVC_CLIENT_KEY)")
    if not settings.uses_tls:
        return None
    # Imported here: certificate parsing (cryptography's x509) costs a plaintext client ~40 ms of start-up,
    # which the injector's agent, started once per pod, would pay for nothing.
    from secretsvc.crypto.pki import utc_now
    from secretsvc.tlsfiles import check_pair, read_ca_bundle, read_cert_chain, read_private_key

    roots = read_ca_bundle(settings.ca_file, what="CA file") if settings.ca_file is not None else None
    if settings.cert_file is None or settings.key_file is None:
        return grpc.ssl_channel_credentials(root_certificates=roots)
    chain = read_cert_chain(settings.cert_file, now=utc_now(), what="client certificate file")
    pair = check_pair(chain, read_private_key(settings.key_file, what="client key file"),
                      cert_path=settings.cert_file, key_path=settings.key_file)
    return grpc.ssl_channel_credentials(root_certificates=roots, private_key=pair.key_pem.reveal(),
                                        certificate_chain=pair.chain.pem)


def open_channel(settings: ClientSettings, token: TokenSource | None) -> grpc.Channel:
    """A channel whose calls carry the token (if any), the default deadline, and retries (see client/retry.py).

    ConfigError for an address or file that cannot be used; nothing is sent until the first call.
    """
    parse_host_port(settings.addr, setting="server address")
    options = [
        ("grpc.max_receive_message_length", limits.MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", limits.MAX_MESSAGE_BYTES),
    ]
    credentials = channel_credentials(settings)
    if credentials is None:
        channel = grpc.insecure_channel(settings.addr, options=options)
    else:
        channel = grpc.secure_channel(settings.addr, credentials, options=options)
    policy = CallPolicy(token=token, timeout=settings.timeout, retry=settings.retry, uniform=_uniform)
    return grpc.intercept_channel(channel, policy)


def _uniform() -> float:
    # Jitter needs no secrecy, but the process's random module may be seeded by the application.
    return int.from_bytes(os.urandom(4), "big") / 2**32
