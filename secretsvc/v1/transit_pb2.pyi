import datetime

from secretsvc.v1 import common_pb2 as _common_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KeyVersion(_message.Message):
    __slots__ = ("version", "create_time")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    version: int
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class KeyInfo(_message.Message):
    __slots__ = ("name", "latest_version", "min_decryption_version", "versions", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    MIN_DECRYPTION_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    latest_version: int
    min_decryption_version: int
    versions: _containers.RepeatedCompositeFieldContainer[KeyVersion]
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., latest_version: _Optional[int] = ..., min_decryption_version: _Optional[int] = ..., versions: _Optional[_Iterable[_Union[KeyVersion, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateKeyRequest(_message.Message):
    __slots__ = ("request_id", "name")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    name: str
    def __init__(self, request_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class GetKeyRequest(_message.Message):
    __slots__ = ("request_id", "name")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    name: str
    def __init__(self, request_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class RotateKeyRequest(_message.Message):
    __slots__ = ("request_id", "name")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    name: str
    def __init__(self, request_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class SetMinDecryptionVersionRequest(_message.Message):
    __slots__ = ("request_id", "name", "min_decryption_version")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MIN_DECRYPTION_VERSION_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    name: str
    min_decryption_version: int
    def __init__(self, request_id: _Optional[str] = ..., name: _Optional[str] = ..., min_decryption_version: _Optional[int] = ...) -> None: ...

class EncryptRequest(_message.Message):
    __slots__ = ("request_id", "key_name", "plaintext", "associated_data")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    ASSOCIATED_DATA_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    key_name: str
    plaintext: bytes
    associated_data: bytes
    def __init__(self, request_id: _Optional[str] = ..., key_name: _Optional[str] = ..., plaintext: _Optional[bytes] = ..., associated_data: _Optional[bytes] = ...) -> None: ...

class EncryptResponse(_message.Message):
    __slots__ = ("ciphertext", "key_version")
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    ciphertext: bytes
    key_version: int
    def __init__(self, ciphertext: _Optional[bytes] = ..., key_version: _Optional[int] = ...) -> None: ...

class DecryptRequest(_message.Message):
    __slots__ = ("request_id", "key_name", "ciphertext", "associated_data")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    ASSOCIATED_DATA_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    key_name: str
    ciphertext: bytes
    associated_data: bytes
    def __init__(self, request_id: _Optional[str] = ..., key_name: _Optional[str] = ..., ciphertext: _Optional[bytes] = ..., associated_data: _Optional[bytes] = ...) -> None: ...

class DecryptResponse(_message.Message):
    __slots__ = ("plaintext",)
    PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    plaintext: bytes
    def __init__(self, plaintext: _Optional[bytes] = ...) -> None: ...

class EncryptBatchRequest(_message.Message):
    __slots__ = ("request_id", "key_name", "items")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    key_name: str
    items: _containers.RepeatedCompositeFieldContainer[EncryptItem]
    def __init__(self, request_id: _Optional[str] = ..., key_name: _Optional[str] = ..., items: _Optional[_Iterable[_Union[EncryptItem, _Mapping]]] = ...) -> None: ...

class EncryptItem(_message.Message):
    __slots__ = ("plaintext", "associated_data")
    PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    ASSOCIATED_DATA_FIELD_NUMBER: _ClassVar[int]
    plaintext: bytes
    associated_data: bytes
    def __init__(self, plaintext: _Optional[bytes] = ..., associated_data: _Optional[bytes] = ...) -> None: ...

class EncryptBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[EncryptResult]
    def __init__(self, results: _Optional[_Iterable[_Union[EncryptResult, _Mapping]]] = ...) -> None: ...

class EncryptResult(_message.Message):
    __slots__ = ("ciphertext", "key_version", "error")
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ciphertext: bytes
    key_version: int
    error: _common_pb2.ItemError
    def __init__(self, ciphertext: _Optional[bytes] = ..., key_version: _Optional[int] = ..., error: _Optional[_Union[_common_pb2.ItemError, _Mapping]] = ...) -> None: ...

class DecryptBatchRequest(_message.Message):
    __slots__ = ("request_id", "key_name", "items")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    key_name: str
    items: _containers.RepeatedCompositeFieldContainer[DecryptItem]
    def __init__(self, request_id: _Optional[str] = ..., key_name: _Optional[str] = ..., items: _Optional[_Iterable[_Union[DecryptItem, _Mapping]]] = ...) -> None: ...

class DecryptItem(_message.Message):
    __slots__ = ("ciphertext", "associated_data")
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    ASSOCIATED_DATA_FIELD_NUMBER: _ClassVar[int]
    ciphertext: bytes
    associated_data: bytes
    def __init__(self, ciphertext: _Optional[bytes] = ..., associated_data: _Optional[bytes] = ...) -> None: ...

class DecryptBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[DecryptResult]
    def __init__(self, results: _Optional[_Iterable[_Union[DecryptResult, _Mapping]]] = ...) -> None: ...

class DecryptResult(_message.Message):
    __slots__ = ("plaintext", "error")
    PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    plaintext: bytes
    error: _common_pb2.ItemError
    def __init__(self, plaintext: _Optional[bytes] = ..., error: _Optional[_Union[_common_pb2.ItemError, _Mapping]] = ...) -> None: ...

class GenerateDataKeyRequest(_message.Message):
    __slots__ = ("request_id", "key_name", "associated_data", "include_plaintext")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    ASSOCIATED_DATA_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    key_name: str
    associated_data: bytes
    include_plaintext: bool
    def __init__(self, request_id: _Optional[str] = ..., key_name: _Optional[str] = ..., associated_data: _Optional[bytes] = ..., include_plaintext: _Optional[bool] = ...) -> None: ...

class GenerateDataKeyResponse(_message.Message):
    __slots__ = ("plaintext", "ciphertext", "key_version")
    PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    plaintext: bytes
    ciphertext: bytes
    key_version: int
    def __init__(self, plaintext: _Optional[bytes] = ..., ciphertext: _Optional[bytes] = ..., key_version: _Optional[int] = ...) -> None: ...

class RewrapRequest(_message.Message):
    __slots__ = ("request_id", "key_name", "ciphertext", "associated_data")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    ASSOCIATED_DATA_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    key_name: str
    ciphertext: bytes
    associated_data: bytes
    def __init__(self, request_id: _Optional[str] = ..., key_name: _Optional[str] = ..., ciphertext: _Optional[bytes] = ..., associated_data: _Optional[bytes] = ...) -> None: ...

class RewrapResponse(_message.Message):
    __slots__ = ("ciphertext", "key_version")
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    ciphertext: bytes
    key_version: int
    def __init__(self, ciphertext: _Optional[bytes] = ..., key_version: _Optional[int] = ...) -> None: ...
