"""Certificates made at test time with the project's own pki code, and channels that use them.

No key or certificate is ever checked in: every test makes its own CA.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from secretsvc.cli.pki_cmds import init_pki, issue_client
from secretsvc.crypto import pki
from secretsvc.crypto.secretbytes import SecretBytes

# A fresh connection per channel: gRPC shares connections between channels to the same target by default,
# which would let a test's handshake ride on an earlier test's (or an earlier certificate's) connection.
FRESH_CONNECTION = (("grpc.use_local_subchannel_pool", 1),)


@dataclass(frozen=True)
class DevPki:
    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.dir / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.dir / "server-key.pem"

    def ca_issued(self) -> pki.Issued:
        return pki.Issued(cert_pem=self.ca.read_bytes(),
                          key_pem=SecretBytes((self.dir / "ca-key.pem").read_bytes()))

    def client(self, name: str, *, uris: tuple[str, ...] = (), dns: tuple[str, ...] = ()) -> tuple[Path, Path]:
        """NAME.pem and NAME-key.pem (made on first use)."""
        cert = self.dir / f"{name}.pem"
        if cert.exists():
            return cert, self.dir / f"{name}-key.pem"
        return issue_client(self.dir, name, now=pki.utc_now(), uris=uris, dns_names=dns)

    def issue(self, usage: pki.Usage, *, name: str, now: datetime | None = None,
              validity: timedelta = pki.LEAF_VALIDITY, dns: tuple[str, ...] = (), uris: tuple[str, ...] = (),
              ips: tuple[str, ...] = ()) -> pki.Issued:
        return pki.issue(self.ca_issued(), common_name=name, usage=usage, now=now or pki.utc_now(),
                         validity=validity, dns_names=dns, uris=uris, ip_addresses=ips)


def make_pki(directory: Path) -> DevPki:
    init_pki(directory, now=pki.utc_now())
    return DevPki(directory)


def write_issued(issued: pki.Issued, cert: Path, key: Path) -> None:
    cert.write_bytes(issued.cert_pem)
    key.write_bytes(issued.key_pem.reveal())
    key.chmod(0o600)


def credentials(ca: Path | None = None, cert: Path | None = None, key: Path | None = None,
                *, ca_pem: bytes | None = None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=ca_pem if ca_pem is not None else (ca.read_bytes() if ca else None),
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )


def health_status(target: str, creds: grpc.ChannelCredentials | None, *, timeout: float = 5) -> int | str:
    """SERVING's number, or the status code name of the failure, over a new connection."""
    channel = (grpc.secure_channel(target, creds, options=FRESH_CONNECTION) if creds is not None
               else grpc.insecure_channel(target, options=FRESH_CONNECTION))
    with channel:
        try:
            return int(health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                                 timeout=timeout).status)
        except grpc.RpcError as exc:
            return str(exc.code().name)


SERVING = int(health_pb2.HealthCheckResponse.SERVING)
