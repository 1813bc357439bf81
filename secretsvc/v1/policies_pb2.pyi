import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PolicyDocumentFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    POLICY_DOCUMENT_FORMAT_UNSPECIFIED: _ClassVar[PolicyDocumentFormat]
    POLICY_DOCUMENT_FORMAT_YAML: _ClassVar[PolicyDocumentFormat]
    POLICY_DOCUMENT_FORMAT_JSON: _ClassVar[PolicyDocumentFormat]

class PolicyDocumentOrigin(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    POLICY_DOCUMENT_ORIGIN_UNSPECIFIED: _ClassVar[PolicyDocumentOrigin]
    POLICY_DOCUMENT_ORIGIN_BUILTIN: _ClassVar[PolicyDocumentOrigin]
    POLICY_DOCUMENT_ORIGIN_FILE: _ClassVar[PolicyDocumentOrigin]
    POLICY_DOCUMENT_ORIGIN_STORED: _ClassVar[PolicyDocumentOrigin]
POLICY_DOCUMENT_FORMAT_UNSPECIFIED: PolicyDocumentFormat
POLICY_DOCUMENT_FORMAT_YAML: PolicyDocumentFormat
POLICY_DOCUMENT_FORMAT_JSON: PolicyDocumentFormat
POLICY_DOCUMENT_ORIGIN_UNSPECIFIED: PolicyDocumentOrigin
POLICY_DOCUMENT_ORIGIN_BUILTIN: PolicyDocumentOrigin
POLICY_DOCUMENT_ORIGIN_FILE: PolicyDocumentOrigin
POLICY_DOCUMENT_ORIGIN_STORED: PolicyDocumentOrigin

class PolicyDocument(_message.Message):
    __slots__ = ("name", "format", "content", "revision", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    format: PolicyDocumentFormat
    content: bytes
    revision: int
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., format: _Optional[_Union[PolicyDocumentFormat, str]] = ..., content: _Optional[bytes] = ..., revision: _Optional[int] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PutPolicyDocumentRequest(_message.Message):
    __slots__ = ("request_id", "name", "format", "content", "expected_revision")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    name: str
    format: PolicyDocumentFormat
    content: bytes
    expected_revision: int
    def __init__(self, request_id: _Optional[str] = ..., name: _Optional[str] = ..., format: _Optional[_Union[PolicyDocumentFormat, str]] = ..., content: _Optional[bytes] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class PutPolicyDocumentResponse(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: PolicyDocument
    def __init__(self, document: _Optional[_Union[PolicyDocument, _Mapping]] = ...) -> None: ...

class GetPolicyDocumentRequest(_message.Message):
    __slots__ = ("request_id", "name")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    name: str
    def __init__(self, request_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class GetPolicyDocumentResponse(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: PolicyDocument
    def __init__(self, document: _Optional[_Union[PolicyDocument, _Mapping]] = ...) -> None: ...

class ListPolicyDocumentsRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class PolicyDocumentInfo(_message.Message):
    __slots__ = ("name", "origin", "policies", "bindings", "in_force", "revision", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    BINDINGS_FIELD_NUMBER: _ClassVar[int]
    IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    origin: PolicyDocumentOrigin
    policies: _containers.RepeatedScalarFieldContainer[str]
    bindings: int
    in_force: bool
    revision: int
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., origin: _Optional[_Union[PolicyDocumentOrigin, str]] = ..., policies: _Optional[_Iterable[str]] = ..., bindings: _Optional[int] = ..., in_force: _Optional[bool] = ..., revision: _Optional[int] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListPolicyDocumentsResponse(_message.Message):
    __slots__ = ("documents",)
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[PolicyDocumentInfo]
    def __init__(self, documents: _Optional[_Iterable[_Union[PolicyDocumentInfo, _Mapping]]] = ...) -> None: ...

class DeletePolicyDocumentRequest(_message.Message):
    __slots__ = ("request_id", "name", "expected_revision")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    name: str
    expected_revision: int
    def __init__(self, request_id: _Optional[str] = ..., name: _Optional[str] = ..., expected_revision: _Optional[int] = ...) -> None: ...

class DeletePolicyDocumentResponse(_message.Message):
    __slots__ = ("existed",)
    EXISTED_FIELD_NUMBER: _ClassVar[int]
    existed: bool
    def __init__(self, existed: _Optional[bool] = ...) -> None: ...

class ReloadPoliciesRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class PolicyProblem(_message.Message):
    __slots__ = ("source", "line", "where", "message")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    source: str
    line: int
    where: str
    message: str
    def __init__(self, source: _Optional[str] = ..., line: _Optional[int] = ..., where: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ReloadPoliciesResponse(_message.Message):
    __slots__ = ("reloaded", "problems", "files", "stored")
    RELOADED_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    reloaded: bool
    problems: _containers.RepeatedCompositeFieldContainer[PolicyProblem]
    files: int
    stored: int
    def __init__(self, reloaded: _Optional[bool] = ..., problems: _Optional[_Iterable[_Union[PolicyProblem, _Mapping]]] = ..., files: _Optional[int] = ..., stored: _Optional[int] = ...) -> None: ...

class ExplainPolicyRequest(_message.Message):
    __slots__ = ("request_id", "identity", "resource", "capability")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    identity: str
    resource: str
    capability: str
    def __init__(self, request_id: _Optional[str] = ..., identity: _Optional[str] = ..., resource: _Optional[str] = ..., capability: _Optional[str] = ...) -> None: ...

class PolicyRuleRef(_message.Message):
    __slots__ = ("source", "line", "rule_line", "policy", "rule_index", "pattern", "effect", "capabilities")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    RULE_LINE_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    RULE_INDEX_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    source: str
    line: int
    rule_line: int
    policy: str
    rule_index: int
    pattern: str
    effect: str
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, source: _Optional[str] = ..., line: _Optional[int] = ..., rule_line: _Optional[int] = ..., policy: _Optional[str] = ..., rule_index: _Optional[int] = ..., pattern: _Optional[str] = ..., effect: _Optional[str] = ..., capabilities: _Optional[_Iterable[str]] = ...) -> None: ...

class PolicyBindingRef(_message.Message):
    __slots__ = ("source", "line", "binding_index", "kind", "pattern")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    BINDING_INDEX_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    source: str
    line: int
    binding_index: int
    kind: str
    pattern: str
    def __init__(self, source: _Optional[str] = ..., line: _Optional[int] = ..., binding_index: _Optional[int] = ..., kind: _Optional[str] = ..., pattern: _Optional[str] = ...) -> None: ...

class PolicyGrant(_message.Message):
    __slots__ = ("policy", "defined", "binding")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    DEFINED_FIELD_NUMBER: _ClassVar[int]
    BINDING_FIELD_NUMBER: _ClassVar[int]
    policy: str
    defined: bool
    binding: PolicyBindingRef
    def __init__(self, policy: _Optional[str] = ..., defined: _Optional[bool] = ..., binding: _Optional[_Union[PolicyBindingRef, _Mapping]] = ...) -> None: ...

class ExplainPolicyResponse(_message.Message):
    __slots__ = ("allowed", "reason", "identity_kind", "identity_name", "identity_policies", "identity_known", "resource_kind", "resource_name", "capability", "rule", "grant", "policies", "matched")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_KIND_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_NAME_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_POLICIES_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_KNOWN_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_KIND_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    GRANT_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    reason: str
    identity_kind: str
    identity_name: str
    identity_policies: _containers.RepeatedScalarFieldContainer[str]
    identity_known: bool
    resource_kind: str
    resource_name: str
    capability: str
    rule: PolicyRuleRef
    grant: PolicyGrant
    policies: _containers.RepeatedCompositeFieldContainer[PolicyGrant]
    matched: _containers.RepeatedCompositeFieldContainer[PolicyRuleRef]
    def __init__(self, allowed: _Optional[bool] = ..., reason: _Optional[str] = ..., identity_kind: _Optional[str] = ..., identity_name: _Optional[str] = ..., identity_policies: _Optional[_Iterable[str]] = ..., identity_known: _Optional[bool] = ..., resource_kind: _Optional[str] = ..., resource_name: _Optional[str] = ..., capability: _Optional[str] = ..., rule: _Optional[_Union[PolicyRuleRef, _Mapping]] = ..., grant: _Optional[_Union[PolicyGrant, _Mapping]] = ..., policies: _Optional[_Iterable[_Union[PolicyGrant, _Mapping]]] = ..., matched: _Optional[_Iterable[_Union[PolicyRuleRef, _Mapping]]] = ...) -> None: ...
