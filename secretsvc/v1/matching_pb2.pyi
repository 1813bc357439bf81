from secretsvc.v1 import secrets_pb2 as _secrets_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MatchValuesRequest(_message.Message):
    __slots__ = ("request_id", "candidates")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    candidates: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, request_id: _Optional[str] = ..., candidates: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ValueMatch(_message.Message):
    __slots__ = ("candidate", "ref", "version", "current", "state")
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    candidate: int
    ref: _secrets_pb2.SecretRef
    version: int
    current: bool
    state: _secrets_pb2.VersionState
    def __init__(self, candidate: _Optional[int] = ..., ref: _Optional[_Union[_secrets_pb2.SecretRef, _Mapping]] = ..., version: _Optional[int] = ..., current: _Optional[bool] = ..., state: _Optional[_Union[_secrets_pb2.VersionState, str]] = ...) -> None: ...

class MatchValuesResponse(_message.Message):
    __slots__ = ("matches", "complete")
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    matches: _containers.RepeatedCompositeFieldContainer[ValueMatch]
    complete: bool
    def __init__(self, matches: _Optional[_Iterable[_Union[ValueMatch, _Mapping]]] = ..., complete: _Optional[bool] = ...) -> None: ...
