"""The Access gRPC service: protobuf in, `AccessReviewService` call, protobuf out."""

from __future__ import annotations

import grpc

from secretsvc.rpc.callstate import current_principal
from secretsvc.service.accessreview import AccessReviewService
from secretsvc.v1 import access_pb2, access_pb2_grpc, secrets_pb2


class AccessServicer(access_pb2_grpc.AccessServicer):
    def __init__(self, service: AccessReviewService) -> None:
        self._svc = service

    def CheckAccess(self, request: access_pb2.CheckAccessRequest, context: grpc.ServicerContext
                    ) -> access_pb2.CheckAccessResponse:
        items = [(s.ref.namespace, s.ref.path, s.version or None) for s in request.secrets]
        answers = self._svc.check(current_principal(), request.identity, request.capability, items)
        return access_pb2.CheckAccessResponse(results=[
            access_pb2.AccessResult(
                secret=secrets_pb2.SecretVersionRef(ref=secrets_pb2.SecretRef(namespace=a.namespace, path=a.path),
                                                    version=a.version or 0),
                allowed=a.allowed, exists=a.exists, reason=a.reason, rule=a.rule or "")
            for a in answers
        ])
