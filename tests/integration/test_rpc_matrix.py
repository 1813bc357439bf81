"""Every RPC the server serves, called by six kinds of caller, against the real server process, with the exact
status code each must get; then every log line, audit record and error message of the run searched for the
values, tokens and keys it used.

The callers are Kubernetes service-account tokens (signed here, verified by the server against a JWKS file):
none at all, an expired token, a token for another audience, a service account bound to a policy that grants
everything on the matrix's resources, one bound to a policy that grants nothing here, and one whose policies
grant everything but also deny it explicitly. The methods are enumerated from the generated descriptors of the
services the server registers, so a new RPC fails this test until it has a row below.
"""

from __future__ import annotations

import base64
import json
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from secretsvc.rpc.server import _SERVICE_NAMES
from secretsvc.v1 import access_pb2, admin_pb2, policies_pb2, secrets_pb2, tokens_pb2, transit_pb2
from tests.integration.serverproc import ServerProcess, cli_command
from tests.serviceaccount_fakes import jwks, rsa_key, sa_claims

ISSUER = "https://kubernetes.default.svc.cluster.local"
NS = "m"
KEY = "m-key"
ALL_SECRET = "[read, list, create, update, delete, destroy]"
ALL_KEY = "[read, list, create, update, delete, destroy, encrypt, decrypt, rewrap, rotate]"
POLICIES = f"""\
version: 1
policies:
  - name: everything
    rules:
      - paths: ["{NS}/**"]
        capabilities: {ALL_SECRET}
        effect: allow
      - keys: ["m-*"]
        capabilities: {ALL_KEY}
        effect: allow
      - system: ["*"]
        capabilities: [admin]
        effect: allow
  - name: nothing-here
    rules:
      - paths: ["other/**"]
        capabilities: [read]
        effect: allow
  - name: deny-all-of-it
    rules:
      - paths: ["{NS}/**"]
        capabilities: {ALL_SECRET}
        effect: deny
      - keys: ["m-*"]
        capabilities: {ALL_KEY}
        effect: deny
      - system: ["*"]
        capabilities: [admin]
        effect: deny
bindings:
  - identity: {{kind: serviceaccount, pattern: "matrix/allowed"}}
    policies: [everything]
  - identity: {{kind: serviceaccount, pattern: "matrix/denied"}}
    policies: [nothing-here]
  - identity: {{kind: serviceaccount, pattern: "matrix/explicit"}}
    policies: [everything, deny-all-of-it]
"""
EXTRA_DOCUMENT = b"""\
version: 1
policies:
  - name: matrix-extra
    rules:
      - paths: ["extra/**"]
        capabilities: [read]
        effect: allow
"""

CALLERS = ("none", "expired", "wrong-audience", "allowed", "denied", "explicit")
UNAUTH = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
OK = grpc.StatusCode.OK


@dataclass
class World:
    """What the matrix runs against, and everything secret it used (for the leak scan)."""

    server: ServerProcess
    channel: grpc.Channel
    tokens: dict[str, str | None]
    admin: tuple[tuple[str, str], ...]
    ciphertext: bytes = b""
    secrets_used: list[bytes] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # every error detail received


@dataclass(frozen=True)
class Row:
    request: Callable[[World], Any]
    # Codes that differ from the defaults (UNAUTHENTICATED for the first three callers, PERMISSION_DENIED for
    # denied and explicit, OK for allowed); a listing filters instead of refusing.
    overrides: dict[str, grpc.StatusCode] = field(default_factory=dict)
    # For batch calls that answer per item: the item code each caller must see when the call itself is OK.
    item_codes: dict[str, int] = field(default_factory=dict)


def _ref(path: str) -> secrets_pb2.SecretRef:
    return secrets_pb2.SecretRef(namespace=NS, path=path)


FILTERED = {"denied": OK, "explicit": OK}
PER_ITEM = {"denied": OK, "explicit": OK}

ROWS: dict[str, Row] = {
    "/secretsvc.v1.Secrets/PutSecret": Row(lambda w: secrets_pb2.PutSecretRequest(ref=_ref("put"), value=b"v")),
    "/secretsvc.v1.Secrets/GetSecret": Row(lambda w: secrets_pb2.GetSecretRequest(ref=_ref("read"))),
    "/secretsvc.v1.Secrets/GetSecrets": Row(
        lambda w: secrets_pb2.GetSecretsRequest(items=[secrets_pb2.SecretVersionRef(ref=_ref("read"))]),
        overrides=PER_ITEM, item_codes={"allowed": 0, "denied": DENIED.value[0], "explicit": DENIED.value[0]}),
    "/secretsvc.v1.Secrets/ListSecrets": Row(lambda w: secrets_pb2.ListSecretsRequest(namespace=NS),
                                             overrides=FILTERED),
    "/secretsvc.v1.Secrets/GetSecretMetadata": Row(lambda w: secrets_pb2.GetSecretMetadataRequest(ref=_ref("read"))),
    "/secretsvc.v1.Secrets/UpdateSecretMetadata": Row(
        lambda w: secrets_pb2.UpdateSecretMetadataRequest(ref=_ref("meta"), max_versions=5)),
    "/secretsvc.v1.Secrets/DeleteVersions": Row(lambda w: secrets_pb2.VersionsRequest(ref=_ref("del"), versions=[1])),
    "/secretsvc.v1.Secrets/UndeleteVersions": Row(
        lambda w: secrets_pb2.VersionsRequest(ref=_ref("undel"), versions=[1])),
    "/secretsvc.v1.Secrets/DestroyVersions": Row(
        lambda w: secrets_pb2.VersionsRequest(ref=_ref("destroy"), versions=[1])),
    "/secretsvc.v1.Secrets/DeleteSecret": Row(lambda w: secrets_pb2.DeleteSecretRequest(ref=_ref("gone"))),
    "/secretsvc.v1.Secrets/WatchSecrets": Row(lambda w: secrets_pb2.WatchSecretsRequest(refs=[_ref("read")])),
    "/secretsvc.v1.Transit/CreateKey": Row(lambda w: transit_pb2.CreateKeyRequest(name="m-new")),
    "/secretsvc.v1.Transit/GetKey": Row(lambda w: transit_pb2.GetKeyRequest(name=KEY)),
    "/secretsvc.v1.Transit/ListKeys": Row(lambda w: transit_pb2.ListKeysRequest(), overrides=FILTERED),
    "/secretsvc.v1.Transit/RotateKey": Row(lambda w: transit_pb2.RotateKeyRequest(name=KEY)),
    "/secretsvc.v1.Transit/SetMinDecryptionVersion": Row(
        lambda w: transit_pb2.SetMinDecryptionVersionRequest(name=KEY, min_decryption_version=1)),
    "/secretsvc.v1.Transit/Encrypt": Row(lambda w: transit_pb2.EncryptRequest(key_name=KEY, plaintext=b"p")),
    "/secretsvc.v1.Transit/Decrypt": Row(lambda w: transit_pb2.DecryptRequest(key_name=KEY, ciphertext=w.ciphertext)),
    "/secretsvc.v1.Transit/EncryptBatch": Row(
        lambda w: transit_pb2.EncryptBatchRequest(key_name=KEY, items=[transit_pb2.EncryptItem(plaintext=b"p")])),
    "/secretsvc.v1.Transit/DecryptBatch": Row(
        lambda w: transit_pb2.DecryptBatchRequest(key_name=KEY,
                                                  items=[transit_pb2.DecryptItem(ciphertext=w.ciphertext)])),
    "/secretsvc.v1.Transit/GenerateDataKey": Row(lambda w: transit_pb2.GenerateDataKeyRequest(key_name=KEY)),
    "/secretsvc.v1.Transit/Rewrap": Row(lambda w: transit_pb2.RewrapRequest(key_name=KEY, ciphertext=w.ciphertext)),
    "/secretsvc.v1.Admin/GetRootKey": Row(lambda w: admin_pb2.GetRootKeyRequest()),
    "/secretsvc.v1.Admin/RotateRootKey": Row(lambda w: admin_pb2.RotateRootKeyRequest()),
    "/secretsvc.v1.Admin/RewrapStored": Row(lambda w: admin_pb2.RewrapStoredRequest()),
    "/secretsvc.v1.Tokens/CreateToken": Row(lambda w: tokens_pb2.CreateTokenRequest(name="matrix-made")),
    "/secretsvc.v1.Tokens/ListTokens": Row(lambda w: tokens_pb2.ListTokensRequest()),
    "/secretsvc.v1.Tokens/RevokeToken": Row(lambda w: tokens_pb2.RevokeTokenRequest(name="no-such-token")),
    "/secretsvc.v1.Policies/PutPolicyDocument": Row(
        lambda w: policies_pb2.PutPolicyDocumentRequest(name="matrix-extra", content=EXTRA_DOCUMENT)),
    "/secretsvc.v1.Policies/GetPolicyDocument": Row(lambda w: policies_pb2.GetPolicyDocumentRequest(name="stored")),
    "/secretsvc.v1.Policies/ListPolicyDocuments": Row(lambda w: policies_pb2.ListPolicyDocumentsRequest()),
    "/secretsvc.v1.Policies/DeletePolicyDocument": Row(
        lambda w: policies_pb2.DeletePolicyDocumentRequest(name="no-such-document")),
    "/secretsvc.v1.Policies/ReloadPolicies": Row(lambda w: policies_pb2.ReloadPoliciesRequest()),
    "/secretsvc.v1.Policies/ExplainPolicy": Row(
        lambda w: policies_pb2.ExplainPolicyRequest(identity="sa:matrix/denied", resource=f"{NS}/read",
                                                    capability="read")),
    "/secretsvc.v1.Access/CheckAccess": Row(
        lambda w: access_pb2.CheckAccessRequest(identity="sa:matrix/denied",
                                                secrets=[secrets_pb2.SecretVersionRef(ref=_ref("read"))])),
}

_MODULES = (access_pb2, admin_pb2, policies_pb2, secrets_pb2, tokens_pb2, transit_pb2)


def _served() -> dict[str, tuple[Any, bool]]:
    """Every served method: its response class and whether it streams responses."""
    from google.protobuf import symbol_database

    db = symbol_database.Default()
    methods = {}
    for module in _MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            if service.full_name in _SERVICE_NAMES:
                for m in service.methods:
                    methods[f"/{service.full_name}/{m.name}"] = (db.GetSymbol(m.output_type.full_name),
                                                                 m.server_streaming)
    return methods


def _expected(method: str, caller: str) -> grpc.StatusCode:
    if caller in ("none", "expired", "wrong-audience"):
        return UNAUTH
    default = OK if caller == "allowed" else DENIED
    return ROWS[method].overrides.get(caller, default)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("matrix")
    key = rsa_key("matrix")
    (tmp / "jwks.json").write_bytes(jwks(key))
    (tmp / "policies.yaml").write_text(POLICIES)
    now = time.time()

    def token(name: str, **kw: Any) -> str:
        return key.sign(sa_claims(now, issuer=ISSUER, namespace="matrix", name=name, pod=f"{name}-0", **kw))

    server = ServerProcess(data_dir=tmp / "data", env={
        "SECRETSVC_K8S_ISSUER": ISSUER, "SECRETSVC_K8S_AUDIENCES": "secretsvc",
        "SECRETSVC_K8S_JWKS_FILE": str(tmp / "jwks.json"), "SECRETSVC_POLICY_PATHS": str(tmp / "policies.yaml"),
    }).start()
    tokens: dict[str, str | None] = {
        "none": None,
        "expired": token("allowed", lifetime=-3600, iat=int(now - 7200), nbf=int(now - 7200)),
        "wrong-audience": token("allowed", audience="someone-else"),
        "allowed": token("allowed"), "denied": token("denied"), "explicit": token("explicit"),
    }
    channel = server.channel()
    w = World(server, channel, tokens, (("authorization", f"Bearer {server.token}"),))
    rng = random.Random(77)
    secrets = channel.unary_unary("/secretsvc.v1.Secrets/PutSecret", secrets_pb2.PutSecretRequest.SerializeToString,
                                  secrets_pb2.PutSecretResponse.FromString)
    for path in ("read", "meta", "del", "undel", "destroy", "gone"):
        for _ in range(2):
            value = rng.randbytes(18).hex().encode()
            w.secrets_used.append(value)
            secrets(secrets_pb2.PutSecretRequest(ref=_ref(path), value=value), metadata=w.admin)
    channel.unary_unary("/secretsvc.v1.Secrets/DeleteVersions", secrets_pb2.VersionsRequest.SerializeToString,
                        secrets_pb2.VersionsResponse.FromString)(
        secrets_pb2.VersionsRequest(ref=_ref("undel"), versions=[1]), metadata=w.admin)
    channel.unary_unary("/secretsvc.v1.Transit/CreateKey", transit_pb2.CreateKeyRequest.SerializeToString,
                        transit_pb2.KeyInfo.FromString)(transit_pb2.CreateKeyRequest(name=KEY), metadata=w.admin)
    plaintext = rng.randbytes(24).hex().encode()
    w.secrets_used.append(plaintext)
    w.ciphertext = channel.unary_unary(
        "/secretsvc.v1.Transit/Encrypt", transit_pb2.EncryptRequest.SerializeToString,
        transit_pb2.EncryptResponse.FromString)(transit_pb2.EncryptRequest(key_name=KEY, plaintext=plaintext),
                                                metadata=w.admin).ciphertext
    channel.unary_unary("/secretsvc.v1.Policies/PutPolicyDocument",
                        policies_pb2.PutPolicyDocumentRequest.SerializeToString,
                        policies_pb2.PutPolicyDocumentResponse.FromString)(
        policies_pb2.PutPolicyDocumentRequest(name="stored",
                                              content=EXTRA_DOCUMENT.replace(b"matrix-extra", b"stored")),
        metadata=w.admin)
    yield w
    channel.close()
    if server.proc is not None and server.proc.poll() is None:
        server.stop()


def _call(w: World, method: str, caller: str) -> tuple[grpc.StatusCode, Any]:
    response_type, streaming = _served()[method]
    request = ROWS[method].request(w)
    token = w.tokens[caller]
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    try:
        if streaming:
            stream = w.channel.unary_stream(method, type(request).SerializeToString, response_type.FromString)(
                request, metadata=metadata, timeout=30)
            first = next(stream)
            stream.cancel()
            return OK, first
        return OK, w.channel.unary_unary(method, type(request).SerializeToString, response_type.FromString)(
            request, metadata=metadata, timeout=30)
    except grpc.RpcError as exc:
        w.messages.append(exc.details() or "")
        return exc.code(), None


def test_every_served_method_has_a_row() -> None:
    served = set(_served())
    assert len(served) >= 35
    assert sorted(served - set(ROWS)) == [], "add a row for each new RPC"
    assert sorted(set(ROWS) - served) == []


@pytest.mark.parametrize("caller", CALLERS)
def test_every_method_answers_each_caller_with_the_exact_code(world: World, caller: str) -> None:
    wrong = []
    for method in sorted(ROWS):
        code, response = _call(world, method, caller)
        if code != _expected(method, caller):
            wrong.append(f"{method}: {code.name}, expected {_expected(method, caller).name}")
            continue
        row = ROWS[method]
        if code == OK and caller in row.item_codes:
            items = [r.error.code if r.HasField("error") else 0 for r in response.results]
            if items != [row.item_codes[caller]]:
                wrong.append(f"{method}: item codes {items}, expected {[row.item_codes[caller]]}")
        if code == OK and caller in FILTERED and method.endswith(("ListSecrets", "ListKeys")):
            listed = list(getattr(response, "paths", [])) + list(getattr(response, "names", []))
            if listed:
                wrong.append(f"{method}: {caller} was shown {listed}")
    assert wrong == []


def _forms(value: bytes) -> list[str]:
    return [value.decode("latin-1"), base64.b64encode(value).decode(), value.hex()]


def test_no_value_token_or_key_appears_in_any_log_record_or_message(world: World) -> None:
    # The whole matrix once more on this server (tests may be spread over processes, each with its own), then
    # a clean stop, so every record and the final checkpoint are written.
    for caller in CALLERS:
        for method in sorted(ROWS):
            _call(world, method, caller)
    assert world.server.stop() == 0
    audit_dir = world.server.data_dir / "audit"
    records = [line for f in sorted(audit_dir.iterdir()) for line in f.read_text().splitlines()]
    log = world.server.log()
    haystacks = {"server log": log, "audit records": "\n".join(records), "error messages": "\n".join(world.messages)}
    assert len(records) > 100 and log and world.messages
    # The search can find what is there: public names the run used are in the audit records.
    assert f"{NS}/read" in haystacks["audit records"] and "serviceaccount:matrix/explicit" in haystacks["audit records"]
    needles = {"admin token": world.server.token, **{f"{k} token": v for k, v in world.tokens.items() if v}}
    for name in ("keyring.json", "audit-hmac.key"):
        path = world.server.data_dir / name
        if path.exists():
            needles[name] = path.read_bytes().decode("latin-1")
    for value in world.secrets_used:
        for form in _forms(value):
            needles[f"value {value[:4]!r}..."] = form
    found = [f"{what} in {where}" for what, needle in needles.items() for where, text in haystacks.items()
             if needle and needle in text]
    assert found == []
    # JWTs in parts: a signature or payload alone is as bad as the whole token.
    for name, tok in world.tokens.items():
        if tok:
            for part in tok.split(".")[1:]:
                assert not any(part in text for text in haystacks.values()), f"part of the {name} token leaked"

    # And the log of the whole run is intact, refusals included.
    verified = subprocess.run(cli_command("audit", "verify", str(audit_dir), "--public-key",
                                          str(world.server.data_dir / "audit-signing.pub"), "--require-closed"),
                              capture_output=True, timeout=60, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    events = [json.loads(line) for line in records]
    seen = {(e.get("principal"), e.get("code")) for e in events if e.get("type") == "event"}
    assert ("serviceaccount:matrix/explicit", "PERMISSION_DENIED") in seen
    assert (None, "UNAUTHENTICATED") in seen
