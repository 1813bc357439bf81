"""Helpers for the webhook's tests: pods and AdmissionReview requests as the API server sends them, a small
JSON Patch (RFC 6902) applier, and validation of a patched pod with the `kubernetes` client's models.

No Kubernetes API server can run here, so the tests speak the real protocol instead: AdmissionReview v1 JSON
in, a base64 JSON Patch out, applied to the pod and checked against the models the API server's schema is
generated from.
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from typing import Any

from kubernetes.client import ApiClient


def pod(annotations: dict[str, str] | None = None, *, containers: list[dict[str, Any]] | None = None,
        namespace: str = "payments", service_account: str = "app", **spec: Any) -> dict[str, Any]:
    """A pod as the API server hands it to mutating webhooks: defaulted enough to be realistic."""
    body: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "api-7d9f-", "namespace": namespace, "labels": {"app": "api"}},
        "spec": {
            "serviceAccountName": service_account,
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 2000},
            "containers": containers if containers is not None else [
                {"name": "app", "image": "registry.example/app:1", "imagePullPolicy": "IfNotPresent",
                 "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/sa",
                                   "readOnly": True}]}],
            "volumes": [{"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {
                "path": "token", "expirationSeconds": 3607}}]}}],
            "restartPolicy": "Always",
        },
    }
    if annotations is not None:
        body["metadata"]["annotations"] = annotations
    body["spec"].update(spec)
    return body


def review_request(obj: dict[str, Any], *, namespace: str | None = None, operation: str = "CREATE",
                   kind: str = "Pod", uid: str | None = None) -> dict[str, Any]:
    ns = namespace if namespace is not None else obj.get("metadata", {}).get("namespace", "default")
    return {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid or str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": kind},
            "namespace": ns, "operation": operation,
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": obj, "oldObject": None, "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def _walk(doc: Any, path: str) -> tuple[Any, str]:
    parts = [_unescape(p) for p in path.split("/")[1:]]
    parent = doc
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    return parent, parts[-1]


def apply_patch(doc: dict[str, Any], patch: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 add, remove, replace and test; raises on a path that does not exist, as the API server would."""
    out = copy.deepcopy(doc)
    for op in patch:
        parent, last = _walk(out, op["path"])
        kind = op["op"]
        if kind == "add":
            if isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                if not 0 <= index <= len(parent):
                    raise IndexError(op["path"])
                parent.insert(index, copy.deepcopy(op["value"]))
            else:
                parent[last] = copy.deepcopy(op["value"])
        elif kind == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        elif kind == "replace":
            if isinstance(parent, list):
                parent[int(last)] = copy.deepcopy(op["value"])
            elif last in parent:
                parent[last] = copy.deepcopy(op["value"])
            else:
                raise KeyError(op["path"])
        elif kind == "test":
            if parent[int(last) if isinstance(parent, list) else last] != op["value"]:
                raise AssertionError(f"test failed at {op['path']}")
        else:
            raise ValueError(f"unsupported op {kind}")
    return out


def decode_patch(response: dict[str, Any]) -> list[dict[str, Any]]:
    r = response["response"]
    if "patch" not in r:
        return []
    assert r["patchType"] == "JSONPatch"
    patch: list[dict[str, Any]] = json.loads(base64.b64decode(r["patch"]))
    return patch


def validate_pod(obj: dict[str, Any]) -> Any:
    """The pod as a `kubernetes.client.V1Pod`; fails if a field is unknown to the model (round trip differs) or
    a required one is missing (the models check on construction)."""
    client = ApiClient()
    model = client.deserialize(json.dumps(obj), "V1Pod", "application/json")
    assert client.sanitize_for_serialization(model) == obj, "the pod has fields the V1Pod model does not know"
    return model
