"""The Policies gRPC service: protobuf in, `PolicyService` call, protobuf out. Errors map in `rpc/status.py`."""

from __future__ import annotations

import grpc

from secretsvc.errors import InvalidArgument
from secretsvc.policy.model import Binding, Grant, Problem, RuleRef
from secretsvc.rpc.callstate import current_principal
from secretsvc.rpc.servicers import timestamp
from secretsvc.service.livepolicies import ReloadResult
from secretsvc.service.policies import Origin, PolicyService
from secretsvc.store.base import PolicyDocumentRecord
from secretsvc.v1 import policies_pb2 as pb
from secretsvc.v1 import policies_pb2_grpc

_FORMATS: dict[int, str] = {pb.POLICY_DOCUMENT_FORMAT_UNSPECIFIED: "yaml", pb.POLICY_DOCUMENT_FORMAT_YAML: "yaml",
            pb.POLICY_DOCUMENT_FORMAT_JSON: "json"}
_FORMAT_ENUMS = {"yaml": pb.POLICY_DOCUMENT_FORMAT_YAML, "json": pb.POLICY_DOCUMENT_FORMAT_JSON}
_ORIGINS = {Origin.BUILTIN: pb.POLICY_DOCUMENT_ORIGIN_BUILTIN, Origin.FILE: pb.POLICY_DOCUMENT_ORIGIN_FILE,
            Origin.STORED: pb.POLICY_DOCUMENT_ORIGIN_STORED}


def _document(record: PolicyDocumentRecord) -> pb.PolicyDocument:
    return pb.PolicyDocument(name=record.name, format=_FORMAT_ENUMS[record.format], content=record.content,
                             revision=record.revision, update_time=timestamp(record.updated_at))


def _rule(ref: RuleRef) -> pb.PolicyRuleRef:
    return pb.PolicyRuleRef(
        source=ref.rule.location.source, line=ref.pattern.line, rule_line=ref.rule.location.line,
        policy=ref.policy, rule_index=ref.rule.index, pattern=ref.pattern.value, effect=ref.rule.effect.value,
        capabilities=sorted(c.value for c in ref.rule.capabilities),
    )


def _binding(binding: Binding) -> pb.PolicyBindingRef:
    return pb.PolicyBindingRef(source=binding.location.source, line=binding.location.line,
                               binding_index=binding.index, kind=binding.kind.value,
                               pattern=binding.pattern.value)


def _grant(grant: Grant) -> pb.PolicyGrant:
    return pb.PolicyGrant(policy=grant.policy, defined=grant.defined,
                          binding=None if grant.binding is None else _binding(grant.binding))


def _problem(problem: Problem) -> pb.PolicyProblem:
    return pb.PolicyProblem(source=problem.location.source, line=problem.location.line, where=problem.where,
                            message=problem.message)


def _reload(result: ReloadResult) -> pb.ReloadPoliciesResponse:
    return pb.ReloadPoliciesResponse(reloaded=result.reloaded, problems=[_problem(p) for p in result.problems],
                                     files=result.files, stored=result.stored)


def _format(value: int) -> str:
    fmt = _FORMATS.get(value)
    if fmt is None:
        raise InvalidArgument(f"unknown policy document format {value}")
    return fmt


class PoliciesServicer(policies_pb2_grpc.PoliciesServicer):
    def __init__(self, service: PolicyService) -> None:
        self._svc = service

    def PutPolicyDocument(self, request: pb.PutPolicyDocumentRequest, context: grpc.ServicerContext
                          ) -> pb.PutPolicyDocumentResponse:
        expected = request.expected_revision if request.HasField("expected_revision") else None
        record = self._svc.put(current_principal(), request.name, request.content, _format(request.format),
                               expected_revision=expected)
        return pb.PutPolicyDocumentResponse(document=_document(record))

    def GetPolicyDocument(self, request: pb.GetPolicyDocumentRequest, context: grpc.ServicerContext
                          ) -> pb.GetPolicyDocumentResponse:
        return pb.GetPolicyDocumentResponse(document=_document(self._svc.get(current_principal(), request.name)))

    def ListPolicyDocuments(self, request: pb.ListPolicyDocumentsRequest, context: grpc.ServicerContext
                            ) -> pb.ListPolicyDocumentsResponse:
        documents = []
        for info in self._svc.list(current_principal()):
            message = pb.PolicyDocumentInfo(name=info.name, origin=_ORIGINS[info.origin], policies=info.policies,
                                            bindings=info.bindings, in_force=info.in_force)
            if info.record is not None:
                message.revision = info.record.revision
                message.update_time.FromNanoseconds(int(info.record.updated_at * 1e9))
            documents.append(message)
        return pb.ListPolicyDocumentsResponse(documents=documents)

    def DeletePolicyDocument(self, request: pb.DeletePolicyDocumentRequest, context: grpc.ServicerContext
                             ) -> pb.DeletePolicyDocumentResponse:
        expected = request.expected_revision if request.HasField("expected_revision") else None
        if expected == 0:
            raise InvalidArgument("expected_revision 0 (must not exist) makes no sense for a delete")
        return pb.DeletePolicyDocumentResponse(
            existed=self._svc.delete(current_principal(), request.name, expected_revision=expected))

    def ReloadPolicies(self, request: pb.ReloadPoliciesRequest, context: grpc.ServicerContext
                       ) -> pb.ReloadPoliciesResponse:
        return _reload(self._svc.reload(current_principal()))

    def ExplainPolicy(self, request: pb.ExplainPolicyRequest, context: grpc.ServicerContext
                      ) -> pb.ExplainPolicyResponse:
        got = self._svc.explain(current_principal(), request.identity, request.resource, request.capability)
        decision = got.decision
        return pb.ExplainPolicyResponse(
            allowed=decision.allowed, reason=decision.reason,
            identity_kind=got.caller.kind, identity_name=got.caller.name,
            identity_policies=got.caller.policies, identity_known=got.identity_known,
            resource_kind=decision.resource_kind.value, resource_name=decision.resource_name,
            capability=decision.capability.value,
            rule=None if decision.rule is None else _rule(decision.rule),
            grant=None if decision.grant is None else _grant(decision.grant),
            policies=[_grant(g) for g in got.grants],
            matched=[_rule(m) for m in got.matched],
        )
