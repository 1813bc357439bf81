import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from secretsvc.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VersionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERSION_STATE_UNSPECIFIED: _ClassVar[VersionState]
    VERSION_STATE_ACTIVE: _ClassVar[VersionState]
    VERSION_STATE_DELETED: _ClassVar[VersionState]
    VERSION_STATE_DESTROYED: _ClassVar[VersionState]
VERSION_STATE_UNSPECIFIED: VersionState
VERSION_STATE_ACTIVE: VersionState
VERSION_STATE_DELETED: VersionState
VERSION_STATE_DESTROYED: VersionState

class SecretRef(_message.Message):
    __slots__ = ("namespace", "path")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    path: str
    def __init__(self, namespace: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class CustomMetadata(_message.Message):
    __slots__ = ("entries",)
    class EntriesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.ScalarMap[str, str]
    def __init__(self, entries: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PutSecretRequest(_message.Message):
    __slots__ = ("request_id", "ref", "value", "cas", "custom_metadata", "max_versions")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CAS_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_METADATA_FIELD_NUMBER: _ClassVar[int]
    MAX_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    ref: SecretRef
    value: bytes
    cas: int
    custom_metadata: CustomMetadata
    max_versions: int
    def __init__(self, request_id: _Optional[str] = ..., ref: _Optional[_Union[SecretRef, _Mapping]] = ..., value: _Optional[bytes] = ..., cas: _Optional[int] = ..., custom_metadata: _Optional[_Union[CustomMetadata, _Mapping]] = ..., max_versions: _Optional[int] = ...) -> None: ...

class PutSecretResponse(_message.Message):
    __slots__ = ("version", "create_time", "pruned_versions")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PRUNED_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    version: int
    create_time: _timestamp_pb2.Timestamp
    pruned_versions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pruned_versions: _Optional[_Iterable[int]] = ...) -> None: ...

class GetSecretRequest(_message.Message):
    __slots__ = ("request_id", "ref", "version")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    ref: SecretRef
    version: int
    def __init__(self, request_id: _Optional[str] = ..., ref: _Optional[_Union[SecretRef, _Mapping]] = ..., version: _Optional[int] = ...) -> None: ...

class GetSecretResponse(_message.Message):
    __slots__ = ("value", "version", "create_time")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    value: bytes
    version: int
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, value: _Optional[bytes] = ..., version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SecretVersionRef(_message.Message):
    __slots__ = ("ref", "version")
    REF_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ref: SecretRef
    version: int
    def __init__(self, ref: _Optional[_Union[SecretRef, _Mapping]] = ..., version: _Optional[int] = ...) -> None: ...

class GetSecretsRequest(_message.Message):
    __slots__ = ("request_id", "items")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    items: _containers.RepeatedCompositeFieldContainer[SecretVersionRef]
    def __init__(self, request_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[SecretVersionRef, _Mapping]]] = ...) -> None: ...

class GetSecretsResult(_message.Message):
    __slots__ = ("secret", "error")
    SECRET_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    secret: GetSecretResponse
    error: _common_pb2.ItemError
    def __init__(self, secret: _Optional[_Union[GetSecretResponse, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.ItemError, _Mapping]] = ...) -> None: ...

class GetSecretsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[GetSecretsResult]
    def __init__(self, results: _Optional[_Iterable[_Union[GetSecretsResult, _Mapping]]] = ...) -> None: ...

class ListSecretsRequest(_message.Message):
    __slots__ = ("request_id", "namespace", "prefix", "page_size", "page_token")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    namespace: str
    prefix: str
    page_size: int
    page_token: str
    def __init__(self, request_id: _Optional[str] = ..., namespace: _Optional[str] = ..., prefix: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSecretsResponse(_message.Message):
    __slots__ = ("paths", "next_page_token")
    PATHS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    paths: _containers.RepeatedScalarFieldContainer[str]
    next_page_token: str
    def __init__(self, paths: _Optional[_Iterable[str]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetSecretMetadataRequest(_message.Message):
    __slots__ = ("request_id", "ref")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    ref: SecretRef
    def __init__(self, request_id: _Optional[str] = ..., ref: _Optional[_Union[SecretRef, _Mapping]] = ...) -> None: ...

class UpdateSecretMetadataRequest(_message.Message):
    __slots__ = ("request_id", "ref", "max_versions", "custom_metadata")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    MAX_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_METADATA_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    ref: SecretRef
    max_versions: int
    custom_metadata: CustomMetadata
    def __init__(self, request_id: _Optional[str] = ..., ref: _Optional[_Union[SecretRef, _Mapping]] = ..., max_versions: _Optional[int] = ..., custom_metadata: _Optional[_Union[CustomMetadata, _Mapping]] = ...) -> None: ...

class VersionMetadata(_message.Message):
    __slots__ = ("version", "state", "create_time", "delete_time", "destroy_time")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DELETE_TIME_FIELD_NUMBER: _ClassVar[int]
    DESTROY_TIME_FIELD_NUMBER: _ClassVar[int]
    version: int
    state: VersionState
    create_time: _timestamp_pb2.Timestamp
    delete_time: _timestamp_pb2.Timestamp
    destroy_time: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[int] = ..., state: _Optional[_Union[VersionState, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., delete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., destroy_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SecretMetadata(_message.Message):
    __slots__ = ("ref", "current_version", "max_versions", "create_time", "update_time", "custom_metadata", "versions")
    class CustomMetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REF_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_METADATA_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    ref: SecretRef
    current_version: int
    max_versions: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    custom_metadata: _containers.ScalarMap[str, str]
    versions: _containers.RepeatedCompositeFieldContainer[VersionMetadata]
    def __init__(self, ref: _Optional[_Union[SecretRef, _Mapping]] = ..., current_version: _Optional[int] = ..., max_versions: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., custom_metadata: _Optional[_Mapping[str, str]] = ..., versions: _Optional[_Iterable[_Union[VersionMetadata, _Mapping]]] = ...) -> None: ...

class VersionsRequest(_message.Message):
    __slots__ = ("request_id", "ref", "versions")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    ref: SecretRef
    versions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, request_id: _Optional[str] = ..., ref: _Optional[_Union[SecretRef, _Mapping]] = ..., versions: _Optional[_Iterable[int]] = ...) -> None: ...

class VersionsResponse(_message.Message):
    __slots__ = ("changed_versions",)
    CHANGED_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    changed_versions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, changed_versions: _Optional[_Iterable[int]] = ...) -> None: ...

class DeleteSecretRequest(_message.Message):
    __slots__ = ("request_id", "ref")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    ref: SecretRef
    def __init__(self, request_id: _Optional[str] = ..., ref: _Optional[_Union[SecretRef, _Mapping]] = ...) -> None: ...

class DeleteSecretResponse(_message.Message):
    __slots__ = ("existed",)
    EXISTED_FIELD_NUMBER: _ClassVar[int]
    existed: bool
    def __init__(self, existed: _Optional[bool] = ...) -> None: ...

class WatchSecretsRequest(_message.Message):
    __slots__ = ("request_id", "refs")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REFS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    refs: _containers.RepeatedCompositeFieldContainer[SecretRef]
    def __init__(self, request_id: _Optional[str] = ..., refs: _Optional[_Iterable[_Union[SecretRef, _Mapping]]] = ...) -> None: ...

class SecretChange(_message.Message):
    __slots__ = ("ref", "exists", "current_version", "state")
    REF_FIELD_NUMBER: _ClassVar[int]
    EXISTS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ref: SecretRef
    exists: bool
    current_version: int
    state: VersionState
    def __init__(self, ref: _Optional[_Union[SecretRef, _Mapping]] = ..., exists: _Optional[bool] = ..., current_version: _Optional[int] = ..., state: _Optional[_Union[VersionState, str]] = ...) -> None: ...

class WatchSecretsResponse(_message.Message):
    __slots__ = ("changes", "synced")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    SYNCED_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[SecretChange]
    synced: bool
    def __init__(self, changes: _Optional[_Iterable[_Union[SecretChange, _Mapping]]] = ..., synced: _Optional[bool] = ...) -> None: ...
