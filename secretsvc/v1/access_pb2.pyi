from secretsvc.v1 import secrets_pb2 as _secrets_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CheckAccessRequest(_message.Message):
    __slots__ = ("request_id", "identity", "capability", "secrets")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    identity: str
    capability: str
    secrets: _containers.RepeatedCompositeFieldContainer[_secrets_pb2.SecretVersionRef]
    def __init__(self, request_id: _Optional[str] = ..., identity: _Optional[str] = ..., capability: _Optional[str] = ..., secrets: _Optional[_Iterable[_Union[_secrets_pb2.SecretVersionRef, _Mapping]]] = ...) -> None: ...

class AccessResult(_message.Message):
    __slots__ = ("secret", "allowed", "exists", "reason", "rule")
    SECRET_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    EXISTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    secret: _secrets_pb2.SecretVersionRef
    allowed: bool
    exists: bool
    reason: str
    rule: str
    def __init__(self, secret: _Optional[_Union[_secrets_pb2.SecretVersionRef, _Mapping]] = ..., allowed: _Optional[bool] = ..., exists: _Optional[bool] = ..., reason: _Optional[str] = ..., rule: _Optional[str] = ...) -> None: ...

class CheckAccessResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[AccessResult]
    def __init__(self, results: _Optional[_Iterable[_Union[AccessResult, _Mapping]]] = ...) -> None: ...
