"""The real server in its own process, driven through the generated gRPC client."""

from __future__ import annotations

import random

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from secretsvc.service import limits
from secretsvc.v1 import admin_pb2, secrets_pb2, transit_pb2
from tests.integration.serverproc import ServerProcess, Stubs


def ref(path: str, namespace: str = "app") -> secrets_pb2.SecretRef:
    return secrets_pb2.SecretRef(namespace=namespace, path=path)


def put(stubs: Stubs, path: str, value: bytes, **kw: object) -> secrets_pb2.PutSecretResponse:
    return stubs.secrets.PutSecret(secrets_pb2.PutSecretRequest(ref=ref(path), value=value, **kw), metadata=stubs.md)


def get(stubs: Stubs, path: str, version: int = 0) -> secrets_pb2.GetSecretResponse:
    return stubs.secrets.GetSecret(secrets_pb2.GetSecretRequest(ref=ref(path), version=version), metadata=stubs.md)


def code_of(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()  # type: ignore[operator]
    return info.value.code()  # type: ignore[no-any-return]


def test_put_get_versions_and_metadata(stubs: Stubs) -> None:
    rng = random.Random(1)
    values = [rng.randbytes(64) for _ in range(3)]
    for i, value in enumerate(values, start=1):
        assert put(stubs, "db/password", value).version == i
    assert get(stubs, "db/password").value == values[-1]
    assert get(stubs, "db/password", version=1).value == values[0]
    meta = stubs.secrets.GetSecretMetadata(secrets_pb2.GetSecretMetadataRequest(ref=ref("db/password")),
                                           metadata=stubs.md)
    assert meta.current_version == 3
    assert [v.version for v in meta.versions] == [1, 2, 3]
    assert all(v.state == secrets_pb2.VERSION_STATE_ACTIVE for v in meta.versions)


def test_check_and_set(stubs: Stubs) -> None:
    assert put(stubs, "cas", b"a", cas=0).version == 1
    err = code_of(lambda: put(stubs, "cas", b"b", cas=0))
    assert err == grpc.StatusCode.FAILED_PRECONDITION
    assert put(stubs, "cas", b"c", cas=1).version == 2
    assert code_of(lambda: put(stubs, "cas", b"d", cas=1)) == grpc.StatusCode.FAILED_PRECONDITION
    assert get(stubs, "cas").value == b"c"


def test_max_versions_prunes_oldest(stubs: Stubs) -> None:
    for i in range(5):
        response = put(stubs, "pruned", f"v{i}".encode(), max_versions=2)
    assert list(response.pruned_versions) == [3]
    meta = stubs.secrets.GetSecretMetadata(secrets_pb2.GetSecretMetadataRequest(ref=ref("pruned")), metadata=stubs.md)
    assert [v.version for v in meta.versions] == [4, 5]
    assert code_of(lambda: get(stubs, "pruned", version=1)) == grpc.StatusCode.NOT_FOUND


def test_delete_undelete_destroy(stubs: Stubs) -> None:
    put(stubs, "life", b"one")
    put(stubs, "life", b"two")
    req = secrets_pb2.VersionsRequest(ref=ref("life"), versions=[1])
    assert list(stubs.secrets.DeleteVersions(req, metadata=stubs.md).changed_versions) == [1]
    assert code_of(lambda: get(stubs, "life", 1)) == grpc.StatusCode.FAILED_PRECONDITION
    assert list(stubs.secrets.UndeleteVersions(req, metadata=stubs.md).changed_versions) == [1]
    assert get(stubs, "life", 1).value == b"one"
    assert list(stubs.secrets.DestroyVersions(req, metadata=stubs.md).changed_versions) == [1]
    with pytest.raises(grpc.RpcError) as info:
        get(stubs, "life", 1)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "destroyed" in info.value.details()
    # Undelete cannot bring a destroyed version back.
    assert list(stubs.secrets.UndeleteVersions(req, metadata=stubs.md).changed_versions) == []
    assert stubs.secrets.DeleteSecret(secrets_pb2.DeleteSecretRequest(ref=ref("life")), metadata=stubs.md).existed
    assert code_of(lambda: get(stubs, "life")) == grpc.StatusCode.NOT_FOUND


def test_list_pages_through_everything(stubs: Stubs) -> None:
    paths = [*sorted(f"svc/{i:03d}" for i in range(45)), "other/x"]
    for p in paths:
        put(stubs, p, b"v")
    seen: list[str] = []
    token = ""
    while True:
        page = stubs.secrets.ListSecrets(secrets_pb2.ListSecretsRequest(namespace="app", prefix="svc/", page_size=10,
                                                                        page_token=token), metadata=stubs.md)
        seen.extend(page.paths)
        token = page.next_page_token
        if not token:
            break
    assert seen == [p for p in paths if p.startswith("svc/")]
    bad = secrets_pb2.ListSecretsRequest(namespace="app", page_token="not-a-token")
    assert code_of(lambda: stubs.secrets.ListSecrets(bad, metadata=stubs.md)) == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("path", ["", "/lead", "trail/", "a//b", "a/../b", "..", "./x", "a/\x00b", "a/\nb",
                                  "a\\b", "x" * (limits.MAX_PATH_BYTES + 1), "/".join(["s"] * 40)])
def test_hostile_paths_are_invalid_argument(stubs: Stubs, path: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        put(stubs, path, b"v")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "\x00" not in info.value.details() and "\n" not in info.value.details()


def test_oversized_value_names_the_limit(stubs: Stubs) -> None:
    with pytest.raises(grpc.RpcError) as info:
        put(stubs, "big", b"x" * (limits.MAX_SECRET_VALUE_BYTES + 1))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "MAX_SECRET_VALUE_BYTES" in info.value.details()


def test_request_over_transport_limit_is_refused(stubs: Stubs) -> None:
    assert code_of(lambda: put(stubs, "huge", b"x" * (limits.MAX_MESSAGE_BYTES + 1))) == \
        grpc.StatusCode.RESOURCE_EXHAUSTED


def test_unknown_version(stubs: Stubs) -> None:
    put(stubs, "known", b"v")
    assert code_of(lambda: get(stubs, "known", 7)) == grpc.StatusCode.NOT_FOUND


def test_tokens_are_required(server: ServerProcess) -> None:
    with server.channel() as channel:
        from secretsvc.v1 import secrets_pb2_grpc
        stub = secrets_pb2_grpc.SecretsStub(channel)
        request = secrets_pb2.GetSecretRequest(ref=ref("x"))
        for md in [(), (("authorization", "Bearer nope"),), (("authorization", "Basic abc"),),
                   (("authorization", "Bearer svc_0000000000000000_" + "A" * 43),)]:
            with pytest.raises(grpc.RpcError) as info:
                stub.GetSecret(request, metadata=md)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert info.value.details() == "missing or invalid bearer token"
        # Health checks need no token.
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest()).status
        assert status == health_pb2.HealthCheckResponse.SERVING


def test_request_id_is_echoed(stubs: Stubs) -> None:
    put(stubs, "rid", b"v")
    _, call = stubs.secrets.GetSecret.with_call(secrets_pb2.GetSecretRequest(request_id="abc-123", ref=ref("rid")),
                                                metadata=stubs.md)
    assert ("x-request-id", "abc-123") in tuple(call.trailing_metadata())


def test_transit_round_trip_rotate_and_rewrap(stubs: Stubs) -> None:
    rng = random.Random(2)
    stubs.transit.CreateKey(transit_pb2.CreateKeyRequest(name="orders"), metadata=stubs.md)
    plaintext = rng.randbytes(1024)
    enc = stubs.transit.Encrypt(transit_pb2.EncryptRequest(key_name="orders", plaintext=plaintext,
                                                           associated_data=b"tenant-7"), metadata=stubs.md)
    assert enc.key_version == 1
    dec = stubs.transit.Decrypt(transit_pb2.DecryptRequest(key_name="orders", ciphertext=enc.ciphertext,
                                                           associated_data=b"tenant-7"), metadata=stubs.md)
    assert dec.plaintext == plaintext
    wrong_aad = transit_pb2.DecryptRequest(key_name="orders", ciphertext=enc.ciphertext, associated_data=b"tenant-8")
    assert code_of(lambda: stubs.transit.Decrypt(wrong_aad, metadata=stubs.md)) == grpc.StatusCode.INVALID_ARGUMENT

    info = stubs.transit.RotateKey(transit_pb2.RotateKeyRequest(name="orders"), metadata=stubs.md)
    assert info.latest_version == 2
    re = stubs.transit.Rewrap(transit_pb2.RewrapRequest(key_name="orders", ciphertext=enc.ciphertext,
                                                        associated_data=b"tenant-7"), metadata=stubs.md)
    assert re.key_version == 2
    stubs.transit.SetMinDecryptionVersion(transit_pb2.SetMinDecryptionVersionRequest(
        name="orders", min_decryption_version=2), metadata=stubs.md)
    old = transit_pb2.DecryptRequest(key_name="orders", ciphertext=enc.ciphertext, associated_data=b"tenant-7")
    assert code_of(lambda: stubs.transit.Decrypt(old, metadata=stubs.md)) == grpc.StatusCode.FAILED_PRECONDITION
    new = transit_pb2.DecryptRequest(key_name="orders", ciphertext=re.ciphertext, associated_data=b"tenant-7")
    assert stubs.transit.Decrypt(new, metadata=stubs.md).plaintext == plaintext


def test_transit_bad_ciphertexts_and_wrong_key(stubs: Stubs) -> None:
    for name in ("a", "b"):
        stubs.transit.CreateKey(transit_pb2.CreateKeyRequest(name=name), metadata=stubs.md)
    enc = stubs.transit.Encrypt(transit_pb2.EncryptRequest(key_name="a", plaintext=b"data"), metadata=stubs.md)
    cases = [b"", b"\x01", enc.ciphertext[:-1], enc.ciphertext[:20], random.Random(3).randbytes(200)]
    flipped = bytearray(enc.ciphertext)
    flipped[-5] ^= 1
    cases.append(bytes(flipped))
    for ciphertext in cases:
        request = transit_pb2.DecryptRequest(key_name="a", ciphertext=ciphertext)
        with pytest.raises(grpc.RpcError) as info:
            stubs.transit.Decrypt(request, metadata=stubs.md)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details() == "decryption failed"
    wrong_key = transit_pb2.DecryptRequest(key_name="b", ciphertext=enc.ciphertext)
    assert code_of(lambda: stubs.transit.Decrypt(wrong_key, metadata=stubs.md)) == grpc.StatusCode.INVALID_ARGUMENT
    missing = transit_pb2.EncryptRequest(key_name="nope", plaintext=b"x")
    assert code_of(lambda: stubs.transit.Encrypt(missing, metadata=stubs.md)) == grpc.StatusCode.NOT_FOUND


def test_transit_batches_and_data_keys(stubs: Stubs) -> None:
    stubs.transit.CreateKey(transit_pb2.CreateKeyRequest(name="batch"), metadata=stubs.md)
    items = [transit_pb2.EncryptItem(plaintext=f"item-{i}".encode(), associated_data=b"ctx") for i in range(20)]
    enc = stubs.transit.EncryptBatch(transit_pb2.EncryptBatchRequest(key_name="batch", items=items), metadata=stubs.md)
    assert all(not r.HasField("error") for r in enc.results)
    dec_items = [transit_pb2.DecryptItem(ciphertext=r.ciphertext, associated_data=b"ctx") for r in enc.results]
    dec_items[3] = transit_pb2.DecryptItem(ciphertext=b"garbage", associated_data=b"ctx")
    dec = stubs.transit.DecryptBatch(transit_pb2.DecryptBatchRequest(key_name="batch", items=dec_items),
                                     metadata=stubs.md)
    assert dec.results[3].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert [r.plaintext for i, r in enumerate(dec.results) if i != 3] == \
        [f"item-{i}".encode() for i in range(20) if i != 3]

    dk = stubs.transit.GenerateDataKey(transit_pb2.GenerateDataKeyRequest(key_name="batch", include_plaintext=True),
                                       metadata=stubs.md)
    assert len(dk.plaintext) == 32
    opened = stubs.transit.Decrypt(transit_pb2.DecryptRequest(key_name="batch", ciphertext=dk.ciphertext),
                                   metadata=stubs.md)
    assert opened.plaintext == dk.plaintext
    wrapped_only = stubs.transit.GenerateDataKey(transit_pb2.GenerateDataKeyRequest(key_name="batch"),
                                                 metadata=stubs.md)
    assert wrapped_only.plaintext == b"" and wrapped_only.ciphertext


def test_root_key_rotation_and_online_rewrap(stubs: Stubs) -> None:
    values = {f"k{i}": random.Random(i).randbytes(40) for i in range(30)}
    for path, value in values.items():
        put(stubs, path, value)
    stubs.transit.CreateKey(transit_pb2.CreateKeyRequest(name="t"), metadata=stubs.md)
    before = stubs.admin.GetRootKey(admin_pb2.GetRootKeyRequest(), metadata=stubs.md)
    after = stubs.admin.RotateRootKey(admin_pb2.RotateRootKeyRequest(), metadata=stubs.md)
    assert after.primary_version == before.primary_version + 1
    progress = list(stubs.admin.RewrapStored(admin_pb2.RewrapStoredRequest(batch_size=7), metadata=stubs.md))
    assert progress[-1].done
    # 30 secret versions + 1 transit key version + the fingerprint key of stored values (MatchValues)
    assert progress[-1].rewrapped == 32
    again = list(stubs.admin.RewrapStored(admin_pb2.RewrapStoredRequest(), metadata=stubs.md))
    assert again[-1].rewrapped == 0 and again[-1].current == 32
    for path, value in values.items():
        assert get(stubs, path).value == value
