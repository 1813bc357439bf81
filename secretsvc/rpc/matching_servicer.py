"""The Matching gRPC service: protobuf in, `MatchService` call, protobuf out. Candidates are never logged."""

from __future__ import annotations

import grpc

from secretsvc.rpc.callstate import current_call, current_principal
from secretsvc.service.matching import MatchService
from secretsvc.store.base import VersionState
from secretsvc.v1 import matching_pb2, matching_pb2_grpc, secrets_pb2

_STATES = {
    VersionState.ACTIVE: secrets_pb2.VERSION_STATE_ACTIVE,
    VersionState.DELETED: secrets_pb2.VERSION_STATE_DELETED,
}


class MatchingServicer(matching_pb2_grpc.MatchingServicer):
    def __init__(self, service: MatchService) -> None:
        self._svc = service

    def MatchValues(
        self, request: matching_pb2.MatchValuesRequest, context: grpc.ServicerContext
    ) -> matching_pb2.MatchValuesResponse:
        result = self._svc.match(current_principal(), list(request.candidates))
        # One audit record per secret reported, so "who learned that this secret leaked" finds the call; a
        # call that reported nothing has the one record of the call. Neither holds a candidate.
        current_call().items = [(name, "OK") for name in result.secrets] or None
        return matching_pb2.MatchValuesResponse(
            matches=[
                matching_pb2.ValueMatch(
                    candidate=m.candidate,
                    ref=secrets_pb2.SecretRef(namespace=m.namespace, path=m.path),
                    version=m.version,
                    current=m.current,
                    state=_STATES[m.state],
                )
                for m in result.matches
            ],
            complete=result.complete,
        )
