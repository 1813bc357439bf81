"""Thin gRPC servicers: translate messages to service calls and results back. No logic lives here.

Every service call gets the authenticated caller as its first argument (decided by the interceptor chain),
and the service decides what that caller may do. Errors are raised as secretsvc errors and mapped to status
codes by the interceptor chain, in one place.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import SecretsvcError
from secretsvc.rpc.callstate import current_call, current_principal
from secretsvc.rpc.status import code_number, public_message, status_for
from secretsvc.service import limits
from secretsvc.service.rootkey import RootKeyService
from secretsvc.service.secrets import SecretService
from secretsvc.service.tokens import TokenService
from secretsvc.service.transit import ItemOutcome, TransitService
from secretsvc.service.watch import WatchService
from secretsvc.store.base import SecretMeta, TokenRecord, TransitKeyRecord, VersionState
from secretsvc.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    common_pb2,
    secrets_pb2,
    secrets_pb2_grpc,
    tokens_pb2,
    tokens_pb2_grpc,
    transit_pb2,
    transit_pb2_grpc,
)

_STATES = {
    VersionState.ACTIVE: secrets_pb2.VERSION_STATE_ACTIVE,
    VersionState.DELETED: secrets_pb2.VERSION_STATE_DELETED,
    VersionState.DESTROYED: secrets_pb2.VERSION_STATE_DESTROYED,
}


def timestamp(seconds: float | None) -> Timestamp | None:
    if seconds is None:
        return None
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def _meta_message(meta: SecretMeta) -> secrets_pb2.SecretMetadata:
    return secrets_pb2.SecretMetadata(
        ref=secrets_pb2.SecretRef(namespace=meta.namespace, path=meta.path),
        current_version=meta.current_version,
        max_versions=meta.max_versions,
        create_time=timestamp(meta.created_at),
        update_time=timestamp(meta.updated_at),
        custom_metadata=dict(meta.custom_metadata),
        versions=[
            secrets_pb2.VersionMetadata(
                version=v.version, state=_STATES[v.state], create_time=timestamp(v.created_at),
                delete_time=timestamp(v.deleted_at), destroy_time=timestamp(v.destroyed_at),
            )
            for v in meta.versions
        ],
    )


class SecretsServicer(secrets_pb2_grpc.SecretsServicer):
    def __init__(self, service: SecretService, watches: WatchService) -> None:
        self._svc = service
        self._watches = watches

    def PutSecret(self, request: secrets_pb2.PutSecretRequest, context: grpc.ServicerContext
                  ) -> secrets_pb2.PutSecretResponse:
        result = self._svc.put(
            current_principal(), request.ref.namespace, request.ref.path, SecretBytes(request.value),
            cas=request.cas if request.HasField("cas") else None,
            custom_metadata=dict(request.custom_metadata.entries) if request.HasField("custom_metadata") else None,
            max_versions=request.max_versions,
        )
        current_call().capability = result.capability.value
        return secrets_pb2.PutSecretResponse(
            version=result.version, create_time=timestamp(result.created_at), pruned_versions=result.pruned_versions
        )

    def GetSecret(self, request: secrets_pb2.GetSecretRequest, context: grpc.ServicerContext
                  ) -> secrets_pb2.GetSecretResponse:
        got = self._svc.get(current_principal(), request.ref.namespace, request.ref.path, request.version or None)
        return secrets_pb2.GetSecretResponse(
            value=got.value.reveal(), version=got.version, create_time=timestamp(got.created_at)
        )

    def GetSecrets(self, request: secrets_pb2.GetSecretsRequest, context: grpc.ServicerContext
                   ) -> secrets_pb2.GetSecretsResponse:
        items = [(i.ref.namespace, i.ref.path, i.version or None) for i in request.items]
        outcomes = self._svc.get_many(current_principal(), items)
        results = []
        audited = []
        for (namespace, path, _), outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, SecretsvcError):
                error = _item_error(outcome)
                results.append(secrets_pb2.GetSecretsResult(error=error))
                audited.append((f"{namespace}/{path}", status_for(outcome).name))
            else:
                results.append(secrets_pb2.GetSecretsResult(secret=secrets_pb2.GetSecretResponse(
                    value=outcome.value.reveal(), version=outcome.version, create_time=timestamp(outcome.created_at))))
                audited.append((f"{namespace}/{path}", "OK"))
        current_call().items = audited
        return secrets_pb2.GetSecretsResponse(results=results)

    def ListSecrets(self, request: secrets_pb2.ListSecretsRequest, context: grpc.ServicerContext
                    ) -> secrets_pb2.ListSecretsResponse:
        page = self._svc.list_paths(current_principal(), request.namespace, request.prefix, page_size=request.page_size,
                              page_token=request.page_token)
        return secrets_pb2.ListSecretsResponse(paths=page.paths, next_page_token=page.next_page_token)

    def GetSecretMetadata(self, request: secrets_pb2.GetSecretMetadataRequest, context: grpc.ServicerContext
                          ) -> secrets_pb2.SecretMetadata:
        return _meta_message(self._svc.metadata(current_principal(), request.ref.namespace, request.ref.path))

    def UpdateSecretMetadata(self, request: secrets_pb2.UpdateSecretMetadataRequest,
                             context: grpc.ServicerContext) -> secrets_pb2.SecretMetadata:
        meta = self._svc.update_metadata(
            current_principal(), request.ref.namespace, request.ref.path, max_versions=request.max_versions,
            custom_metadata=dict(request.custom_metadata.entries) if request.HasField("custom_metadata") else None,
        )
        return _meta_message(meta)

    def DeleteVersions(self, request: secrets_pb2.VersionsRequest, context: grpc.ServicerContext
                       ) -> secrets_pb2.VersionsResponse:
        ref = request.ref
        changed = self._svc.delete_versions(current_principal(), ref.namespace, ref.path, list(request.versions))
        return secrets_pb2.VersionsResponse(changed_versions=changed)

    def UndeleteVersions(self, request: secrets_pb2.VersionsRequest, context: grpc.ServicerContext
                         ) -> secrets_pb2.VersionsResponse:
        ref = request.ref
        changed = self._svc.undelete_versions(current_principal(), ref.namespace, ref.path, list(request.versions))
        return secrets_pb2.VersionsResponse(changed_versions=changed)

    def DestroyVersions(self, request: secrets_pb2.VersionsRequest, context: grpc.ServicerContext
                        ) -> secrets_pb2.VersionsResponse:
        ref = request.ref
        changed = self._svc.destroy_versions(current_principal(), ref.namespace, ref.path, list(request.versions))
        return secrets_pb2.VersionsResponse(changed_versions=changed)

    def DeleteSecret(self, request: secrets_pb2.DeleteSecretRequest, context: grpc.ServicerContext
                     ) -> secrets_pb2.DeleteSecretResponse:
        existed = self._svc.delete_secret(current_principal(), request.ref.namespace, request.ref.path)
        return secrets_pb2.DeleteSecretResponse(existed=existed)

    def WatchSecrets(self, request: secrets_pb2.WatchSecretsRequest, context: grpc.ServicerContext
                     ) -> Iterator[secrets_pb2.WatchSecretsResponse]:
        refs = [(r.namespace, r.path) for r in request.refs]
        current_call().items = [(f"{ns}/{path}", "OK") for ns, path in refs[:limits.MAX_WATCH_REFS]]
        batches = self._watches.watch(current_principal(), refs, is_active=context.is_active,
                                      on_subscribed=context.add_callback)
        for batch in batches:
            yield secrets_pb2.WatchSecretsResponse(synced=batch.synced, changes=[
                secrets_pb2.SecretChange(
                    ref=secrets_pb2.SecretRef(namespace=c.namespace, path=c.path), exists=c.exists,
                    current_version=c.current_version,
                    state=_STATES[c.state] if c.state is not None else secrets_pb2.VERSION_STATE_UNSPECIFIED)
                for c in batch.changes])


def _key_info(record: TransitKeyRecord) -> transit_pb2.KeyInfo:
    return transit_pb2.KeyInfo(
        name=record.name,
        latest_version=record.latest_version,
        min_decryption_version=record.min_decryption_version,
        versions=[transit_pb2.KeyVersion(version=v.version, create_time=timestamp(v.created_at))
                  for v in record.versions],
        create_time=timestamp(record.created_at),
    )


def _item_error(error: SecretsvcError | None) -> common_pb2.ItemError | None:
    if error is None:
        return None
    return common_pb2.ItemError(code=code_number(status_for(error)),
                                message=public_message(error, current_call().request_id))


def _revealed(value: bytes | SecretBytes | None) -> bytes:
    if value is None:
        return b""
    return value.reveal() if isinstance(value, SecretBytes) else value


class TransitServicer(transit_pb2_grpc.TransitServicer):
    def __init__(self, service: TransitService) -> None:
        self._svc = service

    def CreateKey(self, request: transit_pb2.CreateKeyRequest, context: grpc.ServicerContext
                  ) -> transit_pb2.KeyInfo:
        return _key_info(self._svc.create_key(current_principal(), request.name))

    def GetKey(self, request: transit_pb2.GetKeyRequest, context: grpc.ServicerContext) -> transit_pb2.KeyInfo:
        return _key_info(self._svc.key_info(current_principal(), request.name))

    def ListKeys(self, request: transit_pb2.ListKeysRequest, context: grpc.ServicerContext
                 ) -> transit_pb2.ListKeysResponse:
        return transit_pb2.ListKeysResponse(names=self._svc.list_keys(current_principal()))

    def RotateKey(self, request: transit_pb2.RotateKeyRequest, context: grpc.ServicerContext
                  ) -> transit_pb2.KeyInfo:
        return _key_info(self._svc.rotate_key(current_principal(), request.name))

    def SetMinDecryptionVersion(self, request: transit_pb2.SetMinDecryptionVersionRequest,
                                context: grpc.ServicerContext) -> transit_pb2.KeyInfo:
        return _key_info(self._svc.set_min_decryption_version(current_principal(), request.name,
                                                              request.min_decryption_version))

    def Encrypt(self, request: transit_pb2.EncryptRequest, context: grpc.ServicerContext
                ) -> transit_pb2.EncryptResponse:
        sealed = self._svc.encrypt(current_principal(), request.key_name, request.plaintext, request.associated_data)
        return transit_pb2.EncryptResponse(ciphertext=sealed.ciphertext, key_version=sealed.key_version)

    def Decrypt(self, request: transit_pb2.DecryptRequest, context: grpc.ServicerContext
                ) -> transit_pb2.DecryptResponse:
        plaintext = self._svc.decrypt(current_principal(), request.key_name, request.ciphertext,
                                      request.associated_data)
        return transit_pb2.DecryptResponse(plaintext=plaintext.reveal())

    def EncryptBatch(self, request: transit_pb2.EncryptBatchRequest, context: grpc.ServicerContext
                     ) -> transit_pb2.EncryptBatchResponse:
        outcomes = self._svc.encrypt_batch(current_principal(), request.key_name,
                                           [(i.plaintext, i.associated_data) for i in request.items])
        return transit_pb2.EncryptBatchResponse(results=[
            transit_pb2.EncryptResult(ciphertext=_revealed(o.value), key_version=o.key_version,
                                      error=_item_error(o.error))
            for o in outcomes
        ])

    def DecryptBatch(self, request: transit_pb2.DecryptBatchRequest, context: grpc.ServicerContext
                     ) -> transit_pb2.DecryptBatchResponse:
        outcomes: Sequence[ItemOutcome] = self._svc.decrypt_batch(
            current_principal(), request.key_name, [(i.ciphertext, i.associated_data) for i in request.items]
        )
        return transit_pb2.DecryptBatchResponse(results=[
            transit_pb2.DecryptResult(plaintext=_revealed(o.value), error=_item_error(o.error)) for o in outcomes
        ])

    def GenerateDataKey(self, request: transit_pb2.GenerateDataKeyRequest, context: grpc.ServicerContext
                        ) -> transit_pb2.GenerateDataKeyResponse:
        key = self._svc.generate_data_key(current_principal(), request.key_name, request.associated_data,
                                          include_plaintext=request.include_plaintext)
        return transit_pb2.GenerateDataKeyResponse(
            plaintext=_revealed(key.plaintext), ciphertext=key.ciphertext, key_version=key.key_version
        )

    def Rewrap(self, request: transit_pb2.RewrapRequest, context: grpc.ServicerContext
               ) -> transit_pb2.RewrapResponse:
        sealed = self._svc.rewrap(current_principal(), request.key_name, request.ciphertext, request.associated_data)
        return transit_pb2.RewrapResponse(ciphertext=sealed.ciphertext, key_version=sealed.key_version)


class AdminServicer(admin_pb2_grpc.AdminServicer):
    def __init__(self, service: RootKeyService) -> None:
        self._svc = service

    def _info(self) -> admin_pb2.RootKeyInfo:
        info = self._svc.info(current_principal())
        return admin_pb2.RootKeyInfo(
            key_id=info.key_id, primary_version=info.primary_version,
            versions=[admin_pb2.RootKeyVersion(version=v.version, create_time=timestamp(v.created_at))
                      for v in info.versions],
        )

    def GetRootKey(self, request: admin_pb2.GetRootKeyRequest, context: grpc.ServicerContext
                   ) -> admin_pb2.RootKeyInfo:
        return self._info()

    def RotateRootKey(self, request: admin_pb2.RotateRootKeyRequest, context: grpc.ServicerContext
                      ) -> admin_pb2.RootKeyInfo:
        self._svc.rotate(current_principal())
        return self._info()

    def RewrapStored(self, request: admin_pb2.RewrapStoredRequest, context: grpc.ServicerContext
                     ) -> Iterator[admin_pb2.RewrapProgress]:
        for p in self._svc.rewrap_stored(current_principal(), request.batch_size):
            yield admin_pb2.RewrapProgress(scanned=p.scanned, rewrapped=p.rewrapped, current=p.current,
                                           skipped=p.skipped, done=p.done)


def _token_info(record: TokenRecord) -> tokens_pb2.TokenInfo:
    return tokens_pb2.TokenInfo(
        name=record.name, token_id=record.token_id, policies=list(record.policies),
        create_time=timestamp(record.created_at), expire_time=timestamp(record.expires_at),
    )


class TokensServicer(tokens_pb2_grpc.TokensServicer):
    def __init__(self, service: TokenService) -> None:
        self._svc = service

    def CreateToken(self, request: tokens_pb2.CreateTokenRequest, context: grpc.ServicerContext
                    ) -> tokens_pb2.CreateTokenResponse:
        ttl = request.ttl.ToTimedelta().total_seconds() if request.HasField("ttl") else 0
        minted = self._svc.create(current_principal(), request.name, list(request.policies), ttl_seconds=ttl)
        return tokens_pb2.CreateTokenResponse(token=minted.token, info=_token_info(minted.record))

    def ListTokens(self, request: tokens_pb2.ListTokensRequest, context: grpc.ServicerContext
                   ) -> tokens_pb2.ListTokensResponse:
        return tokens_pb2.ListTokensResponse(tokens=[_token_info(r) for r in self._svc.list(current_principal())])

    def RevokeToken(self, request: tokens_pb2.RevokeTokenRequest, context: grpc.ServicerContext
                    ) -> tokens_pb2.RevokeTokenResponse:
        return tokens_pb2.RevokeTokenResponse(existed=self._svc.revoke(current_principal(), request.name))
