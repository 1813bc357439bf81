"""Policy documents enforced by the real server process: bindings for service accounts, client certificates
and tokens; explicit deny over allow; listings filtered; a bad document stops the start naming file and line."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from secretsvc.v1 import secrets_pb2, secrets_pb2_grpc, transit_pb2, transit_pb2_grpc
from tests.integration.serverproc import ServerProcess, Stubs
from tests.integration.test_service_api import put
from tests.serviceaccount_fakes import jwks, rsa_key, sa_claims
from tests.tlskit import credentials, make_pki

ISSUER = "https://kubernetes.default.svc.cluster.local"
SPIFFE = "spiffe://cluster.local/ns/web/sa/front"
POLICIES = """\
version: 1
policies:
  - name: payments-app
    rules:
      - paths: ["payments/**"]
        capabilities: [read, list]
        effect: allow
      - paths: ["payments/root/*"]
        capabilities: [read]
        effect: deny
      - keys: ["payments-*"]
        capabilities: [encrypt, decrypt]
        effect: allow
  - name: web
    rules:
      - paths: ["web/public/*"]
        capabilities: [read]
        effect: allow
  - name: deployer
    rules:
      - paths: ["payments/**"]
        capabilities: [create, update, list]
        effect: allow
bindings:
  - identity: {kind: serviceaccount, pattern: "payments/*"}
    policies: [payments-app]
  - identity: {kind: mtls-uri, pattern: "spiffe://cluster.local/ns/web/sa/*"}
    policies: [web]
"""


def _ref(namespace: str, path: str) -> secrets_pb2.SecretRef:
    return secrets_pb2.SecretRef(namespace=namespace, path=path)


def _code(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


@pytest.fixture
def policy_server(make_server: Callable[..., ServerProcess], tmp_path: Path) -> tuple[ServerProcess, str]:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "apps.yaml").write_text(POLICIES)
    signer = rsa_key("cluster-key")
    (tmp_path / "jwks.json").write_bytes(jwks(signer))
    dev = make_pki(tmp_path / "pki")
    cert, key = dev.client("front", uris=(SPIFFE,))
    server = make_server(
        extra_args=("--policy-path", str(tmp_path / "policies"), "--k8s-issuer", ISSUER, "--k8s-audiences",
                    "secretsvc", "--k8s-jwks-file", str(tmp_path / "jwks.json"),
                    "--tls-cert", str(dev.server_cert), "--tls-key", str(dev.server_key), "--client-ca", str(dev.ca)),
        credentials=credentials(dev.ca, cert, key),
    ).start()
    stubs = Stubs(server)
    for namespace, path in (("payments", "db/password"), ("payments", "root/master"), ("web", "public/banner"),
                            ("web", "private/key")):
        stubs.secrets.PutSecret(secrets_pb2.PutSecretRequest(ref=_ref(namespace, path), value=b"v"),
                                metadata=stubs.md, timeout=10)
    stubs.transit.CreateKey(transit_pb2.CreateKeyRequest(name="payments-cards"), metadata=stubs.md, timeout=10)
    stubs.close()
    return server, signer.sign(sa_claims(time.time(), issuer=ISSUER, namespace="payments", name="api"))


def test_a_service_account_gets_what_its_binding_grants(policy_server: tuple[ServerProcess, str]) -> None:
    server, token = policy_server
    md = (("authorization", f"Bearer {token}"),)
    with server.channel() as channel:
        secrets = secrets_pb2_grpc.SecretsStub(channel)
        transit = transit_pb2_grpc.TransitStub(channel)
        got = secrets.GetSecret(secrets_pb2.GetSecretRequest(ref=_ref("payments", "db/password")), metadata=md)
        assert got.value == b"v"
        # An explicit deny wins over the broader allow.
        assert _code(lambda: secrets.GetSecret(secrets_pb2.GetSecretRequest(ref=_ref("payments", "root/master")),
                                               metadata=md)) == grpc.StatusCode.PERMISSION_DENIED
        assert _code(lambda: secrets.GetSecret(secrets_pb2.GetSecretRequest(ref=_ref("web", "public/banner")),
                                               metadata=md)) == grpc.StatusCode.PERMISSION_DENIED
        assert _code(lambda: secrets.PutSecret(secrets_pb2.PutSecretRequest(ref=_ref("payments", "new"), value=b"x"),
                                               metadata=md)) == grpc.StatusCode.PERMISSION_DENIED
        sealed = transit.Encrypt(transit_pb2.EncryptRequest(key_name="payments-cards", plaintext=b"4111"), metadata=md)
        assert transit.Decrypt(transit_pb2.DecryptRequest(key_name="payments-cards", ciphertext=sealed.ciphertext),
                               metadata=md).plaintext == b"4111"
        assert _code(lambda: transit.RotateKey(transit_pb2.RotateKeyRequest(name="payments-cards"), metadata=md)) \
            == grpc.StatusCode.PERMISSION_DENIED
        listed = secrets.ListSecrets(secrets_pb2.ListSecretsRequest(namespace="payments"), metadata=md)
        assert list(listed.paths) == ["db/password", "root/master"]  # list is granted on both; read is not
        assert list(secrets.ListSecrets(secrets_pb2.ListSecretsRequest(namespace="web"), metadata=md).paths) == []


def test_a_client_certificate_gets_what_its_binding_grants(policy_server: tuple[ServerProcess, str]) -> None:
    server, _ = policy_server
    with server.channel() as channel:
        secrets = secrets_pb2_grpc.SecretsStub(channel)
        assert secrets.GetSecret(secrets_pb2.GetSecretRequest(ref=_ref("web", "public/banner"))).value == b"v"
        assert _code(lambda: secrets.GetSecret(secrets_pb2.GetSecretRequest(ref=_ref("web", "private/key")))) \
            == grpc.StatusCode.PERMISSION_DENIED


def test_a_token_gets_the_policies_it_was_created_with(policy_server: tuple[ServerProcess, str],
                                                       tmp_path: Path) -> None:
    server, _ = policy_server
    pki = tmp_path / "pki"
    tls = ("--ca-file", str(pki / "ca.pem"), "--cert", str(pki / "front.pem"), "--key", str(pki / "front-key.pem"))
    created = server.cli("token", "create", "ci", "--policy", "deployer", *tls)
    assert created.returncode == 0, created.stderr
    env = {**server.cli_env(), "SECRETSVC_TOKEN": created.stdout.decode().strip()}
    assert server.cli("put", "payments/app/key", *tls, stdin=b"new", env=env).returncode == 0
    denied = server.cli("get", "payments/app/key", *tls, env=env)
    assert denied.returncode == 1 and b"token:ci may not read secret payments/app/key" in denied.stderr


def test_a_bad_policy_document_stops_the_start(make_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\npolicies:\n  - name: x\n    rules:\n      - paths: [\"a/**\"]\n"
                   "        capabilities: [reed]\n        effect: allow\n")
    server = make_server(extra_args=("--policy-path", str(bad)))
    server.start(wait=False)
    assert server.proc is not None
    assert server.proc.wait(timeout=30) == 2
    assert f"{bad}:6" in server.log() and "reed" in server.log()


def test_without_documents_only_the_admin_policy_grants(server: ServerProcess) -> None:
    stubs = Stubs(server)
    try:
        put(stubs, "db/password", b"v")
    finally:
        stubs.close()
    nobody = server.cli("token", "create", "ops-helper", "--policy", "ops").stdout.decode().strip()
    denied = server.cli("get", "app/db/password", env={**server.cli_env(), "SECRETSVC_TOKEN": nobody})
    assert denied.returncode == 1 and b"permission_denied" in denied.stderr
