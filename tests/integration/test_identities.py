"""Who the real server process thinks is calling: a client certificate alone, a token over a certificate, and a
Kubernetes service-account token checked against a JWKS file. Until policy documents are configured only the
admin policy grants anything, so an identity shows in the PERMISSION_DENIED message that names it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from secretsvc.v1 import secrets_pb2, secrets_pb2_grpc
from tests.integration.serverproc import ServerProcess
from tests.serviceaccount_fakes import jwks, rsa_key, sa_claims
from tests.tlskit import credentials, make_pki

SPIFFE = "spiffe://cluster.local/ns/payments/sa/api"
ISSUER = "https://kubernetes.default.svc.cluster.local"


def _get(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> grpc.RpcError:
    stub = secrets_pb2_grpc.SecretsStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.GetSecret(secrets_pb2.GetSecretRequest(ref=secrets_pb2.SecretRef(namespace="app", path="db")),
                       metadata=metadata, timeout=10)
    return info.value


def test_a_client_certificate_alone_identifies_the_caller(make_server: Callable[..., ServerProcess],
                                                          tmp_path: Path) -> None:
    dev = make_pki(tmp_path / "pki")
    cert, key = dev.client("api", uris=(SPIFFE,))
    server = make_server(
        extra_args=("--tls-cert", str(dev.server_cert), "--tls-key", str(dev.server_key), "--client-ca", str(dev.ca)),
        credentials=credentials(dev.ca, cert, key),
    ).start()
    with server.channel() as channel:
        err = _get(channel)
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        assert f"mtls:{SPIFFE} may not read secret app/db" in (err.details() or "")
        # A token on the same connection wins: the certificate then only authenticates the connection.
        denied_token = _get(channel, (("authorization", "Bearer svc_0000000000000000_nope"),))
        assert denied_token.code() == grpc.StatusCode.UNAUTHENTICATED
        stub = secrets_pb2_grpc.SecretsStub(channel)
        stub.PutSecret(secrets_pb2.PutSecretRequest(ref=secrets_pb2.SecretRef(namespace="app", path="db"),
                                                    value=b"v"), metadata=server.metadata(), timeout=10)
    # The CLI needs no token when it presents a client certificate.
    env = {k: v for k, v in server.cli_env().items() if k != "SECRETSVC_TOKEN"}
    result = server.cli("get", "app/db", "--ca-file", str(dev.ca), "--cert", str(cert), "--key", str(key), env=env)
    assert result.returncode == 1 and b"permission_denied" in result.stderr


def test_a_service_account_token_identifies_the_pod(make_server: Callable[..., ServerProcess],
                                                    tmp_path: Path) -> None:
    signer = rsa_key("cluster-key")
    keys = tmp_path / "jwks.json"
    keys.write_bytes(jwks(signer))
    server = make_server(extra_args=("--k8s-issuer", ISSUER, "--k8s-audiences", "secretsvc",
                                     "--k8s-jwks-file", str(keys))).start()
    now = time.time()
    good = signer.sign(sa_claims(now, issuer=ISSUER, namespace="payments", name="api"))
    wrong_audience = signer.sign(sa_claims(now, issuer=ISSUER, audience="vault"))
    expired = signer.sign(sa_claims(now - 7200, issuer=ISSUER, lifetime=600))
    forged = rsa_key("cluster-key").sign(sa_claims(now, issuer=ISSUER))
    with server.channel() as channel:
        err = _get(channel, (("authorization", f"Bearer {good}"),))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "serviceaccount:payments/api may not read secret app/db" in (err.details() or "")
        for bad in (wrong_audience, expired, forged):
            refused = _get(channel, (("authorization", f"Bearer {bad}"),))
            assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
            assert refused.details() == "missing or invalid bearer token"
    log = server.log()
    for token in (good, wrong_audience, expired, forged):
        assert token not in log


def test_service_account_settings_are_checked_at_start(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server(extra_args=("--k8s-issuer", ISSUER))  # no audience
    server.start(wait=False)
    assert server.proc is not None
    assert server.proc.wait(timeout=30) == 2
    assert "k8s_audiences" in server.log()
