import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RootKeyVersion(_message.Message):
    __slots__ = ("version", "create_time")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    version: int
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RootKeyInfo(_message.Message):
    __slots__ = ("key_id", "primary_version", "versions")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    primary_version: int
    versions: _containers.RepeatedCompositeFieldContainer[RootKeyVersion]
    def __init__(self, key_id: _Optional[str] = ..., primary_version: _Optional[int] = ..., versions: _Optional[_Iterable[_Union[RootKeyVersion, _Mapping]]] = ...) -> None: ...

class GetRootKeyRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class RotateRootKeyRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class RewrapStoredRequest(_message.Message):
    __slots__ = ("request_id", "batch_size")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    batch_size: int
    def __init__(self, request_id: _Optional[str] = ..., batch_size: _Optional[int] = ...) -> None: ...

class RewrapProgress(_message.Message):
    __slots__ = ("scanned", "rewrapped", "current", "skipped", "done")
    SCANNED_FIELD_NUMBER: _ClassVar[int]
    REWRAPPED_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    scanned: int
    rewrapped: int
    current: int
    skipped: int
    done: bool
    def __init__(self, scanned: _Optional[int] = ..., rewrapped: _Optional[int] = ..., current: _Optional[int] = ..., skipped: _Optional[int] = ..., done: _Optional[bool] = ...) -> None: ...
