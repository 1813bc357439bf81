"""AdmissionReview v1 (admission.k8s.io/v1): the request body in, the response body out.

The body is bounded before it is read (MAX_REVIEW_BYTES), parsed as JSON, and refused when nested deeper
than MAX_JSON_DEPTH; a body that is not an AdmissionReview v1 is a protocol error (HTTP 400, to which the
API server applies the webhook's failurePolicy). A well-formed review always gets a review back: allowed
with a JSON Patch and warnings, or refused with a status message for the pod's author.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from injector.webhook.admit import AdmissionRequest, Admitter, Decision
from injector.webhook.pod import as_dict

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
# The API server refuses objects over 3 MiB; a review carries one object (oldObject is null on CREATE).
MAX_REVIEW_BYTES = 4 * 1024 * 1024
# A pod is about 10 levels deep (managedFields go deeper); nothing a pod holds needs more than this.
MAX_JSON_DEPTH = 64
MAX_UID_CHARS = 128
MAX_NAMESPACE_CHARS = 63


class ReviewError(Exception):
    """The body is not a usable AdmissionReview v1; `str()` says why, for an HTTP 400."""


@dataclass(frozen=True, slots=True)
class Reviewed:
    body: bytes
    request: AdmissionRequest
    decision: Decision


def _too_deep(value: object, limit: int) -> bool:
    """Whether an object or array sits more than `limit` levels deep; level by level, without recursion."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 1
    while level:
        if depth > limit:
            return True
        below: list[dict[str, Any] | list[Any]] = []
        for item in level:
            for child in item.values() if isinstance(item, dict) else item:
                if isinstance(child, (dict, list)):
                    below.append(child)
        level = below
        depth += 1
    return False


def _text(data: dict[str, Any], key: str, where: str, *, max_chars: int, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise ReviewError(f"{where}.{key} must be a non-empty string")
    if len(value) > max_chars or not value.isprintable():
        raise ReviewError(f"{where}.{key} is longer than {max_chars} characters or not printable")
    return value


def parse_review(body: bytes) -> AdmissionRequest:
    if len(body) > MAX_REVIEW_BYTES:
        raise ReviewError(f"the body is larger than MAX_REVIEW_BYTES={MAX_REVIEW_BYTES}")
    try:
        data = json.loads(body)
    except RecursionError:
        raise ReviewError(f"the body is nested deeper than MAX_JSON_DEPTH={MAX_JSON_DEPTH}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReviewError(f"the body is not JSON ({str(exc)[:100]})") from None
    if _too_deep(data, MAX_JSON_DEPTH):
        raise ReviewError(f"the body is nested deeper than MAX_JSON_DEPTH={MAX_JSON_DEPTH}")
    if not isinstance(data, dict):
        raise ReviewError("the body must be a JSON object (an AdmissionReview)")
    if data.get("apiVersion") != API_VERSION or data.get("kind") != KIND:
        raise ReviewError(f"expected apiVersion {API_VERSION} and kind {KIND}, got "
                          f"{str(data.get('apiVersion'))[:40]!r} {str(data.get('kind'))[:40]!r}; set "
                          "admissionReviewVersions: [v1] in the MutatingWebhookConfiguration")
    request = data.get("request")
    if not isinstance(request, dict):
        raise ReviewError("the AdmissionReview has no request object")
    uid = _text(request, "uid", "request", max_chars=MAX_UID_CHARS)
    kind = as_dict(request.get("kind"))
    gvk = "/".join(str(kind.get(k, ""))[:64] for k in ("group", "version", "kind"))
    operation = _text(request, "operation", "request", max_chars=16)
    obj = request.get("object")
    if operation == "CREATE" and not isinstance(obj, dict):
        raise ReviewError("request.object must be an object on CREATE")
    namespace = _text(request, "namespace", "request", max_chars=MAX_NAMESPACE_CHARS, required=False)
    if not namespace and isinstance(obj, dict):
        own = as_dict(obj.get("metadata")).get("namespace")
        namespace = own if isinstance(own, str) and len(own) <= MAX_NAMESPACE_CHARS and own.isprintable() else ""
    if gvk == "/v1/Pod" and operation == "CREATE" and not namespace:
        raise ReviewError("request.namespace is empty; a pod is always in a namespace")
    return AdmissionRequest(uid=uid, namespace=namespace, operation=operation, kind=gvk,
                            obj=obj if isinstance(obj, dict) else {})


def response_body(uid: str, decision: Decision) -> bytes:
    response: dict[str, Any] = {"uid": uid, "allowed": decision.allowed}
    if decision.patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(decision.patch, separators=(",", ":")).encode()).decode()
    if decision.warnings:
        response["warnings"] = list(decision.warnings)
    if not decision.allowed:
        response["status"] = {"code": 403, "reason": "Forbidden", "message": decision.message}
    return json.dumps({"apiVersion": API_VERSION, "kind": KIND, "response": response},
                      separators=(",", ":")).encode()


def review(body: bytes, admitter: Admitter) -> Reviewed:
    """The response to one AdmissionReview body; ReviewError when it is not one."""
    request = parse_review(body)
    decision = admitter.decide(request)
    return Reviewed(response_body(request.uid, decision), request, decision)
