"""AdmissionReview v1 parsing: bounded, strict about what it is, and a response in the shape the API server reads."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from injector.webhook.admit import Decision
from injector.webhook.review import (
    MAX_JSON_DEPTH,
    MAX_REVIEW_BYTES,
    ReviewError,
    _too_deep,
    parse_review,
    response_body,
)
from tests.admissionkit import pod, review_request


def body(data: object) -> bytes:
    return json.dumps(data).encode()


def test_a_pod_create_review_is_read() -> None:
    request = parse_review(body(review_request(pod(), uid="u-1")))
    assert (request.uid, request.namespace, request.operation, request.kind) == ("u-1", "payments", "CREATE",
                                                                                "/v1/Pod")


def test_the_namespace_falls_back_to_the_objects_own() -> None:
    data = review_request(pod())
    data["request"]["namespace"] = ""
    assert parse_review(body(data)).namespace == "payments"
    data["request"]["object"]["metadata"].pop("namespace")
    with pytest.raises(ReviewError, match="a pod is always in a namespace"):
        parse_review(body(data))


@pytest.mark.parametrize(("raw", "expected"), [
    (b"", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"{'apiVersion': 1}", "not JSON"),
    (b"[]", "must be a JSON object"),
    (b"[" * 100_000 + b"]" * 100_000, "nested deeper than MAX_JSON_DEPTH"),
    (b'{"a": ' + b"[" * 70 + b"]" * 70 + b"}", "nested deeper"),
    (body({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}}),
     "admissionReviewVersions: \\[v1\\]"),
    (body({"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}), "expected apiVersion"),
    (body({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}), "no request object"),
    (body({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": ""}}),
     "request.uid must be a non-empty string"),
    (body({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "x" * 200}}),
     "longer than 128"),
    (body({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
           "request": {"uid": "u", "operation": "CREATE", "object": "pod"}}), "request.object must be an object"),
    (b" " * (MAX_REVIEW_BYTES + 1), "larger than MAX_REVIEW_BYTES"),
])
def test_what_is_not_an_admission_review_v1_is_refused_saying_why(raw: bytes, expected: str) -> None:
    with pytest.raises(ReviewError, match=expected):
        parse_review(raw)


def test_depth_is_counted_exactly() -> None:
    nested: object = {}
    for _ in range(MAX_JSON_DEPTH - 5):  # review, request, object, metadata: four levels; then lists and {}
        nested = [nested]
    data = review_request(pod())
    data["request"]["object"]["metadata"]["deep"] = nested
    parse_review(body(data))
    data["request"]["object"]["metadata"]["deep"] = [nested]
    with pytest.raises(ReviewError):
        parse_review(body(data))


def _depth(value: object) -> int:
    """Levels of objects and arrays, by the definition: a scalar has none."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=3),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                    max_leaves=30)


@given(JSON, st.integers(min_value=1, max_value=8))
def test_the_depth_check_agrees_with_the_definition(value: object, limit: int) -> None:
    assert _too_deep(value, limit) == (_depth(value) > limit)


def test_responses_carry_a_base64_json_patch_warnings_or_a_refusal() -> None:
    patch = [{"op": "add", "path": "/metadata/annotations/a", "value": "b"}]
    allowed = json.loads(response_body("u", Decision(True, "injected", patch=patch, warnings=("w",))))
    assert allowed == {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {
        "uid": "u", "allowed": True, "patchType": "JSONPatch",
        "patch": base64.b64encode(json.dumps(patch, separators=(",", ":")).encode()).decode(), "warnings": ["w"]}}
    refused = json.loads(response_body("u", Decision(False, "refused", message="why")))
    assert refused["response"] == {"uid": "u", "allowed": False,
                                   "status": {"code": 403, "reason": "Forbidden", "message": "why"}}
