"""The JSON Patch (RFC 6902) that injects the agent into a pod, from an `Injection` (planner.py).

Adds, never replaces: a memory-backed emptyDir for the files, mounted read-only into the chosen containers;
a projected volume with a service-account token for the service's audience (and the service's CA bundle);
the agent container(s), hardened; and the status annotation that makes a second review a no-op. Names that
the pod already uses are left alone: ours get a numeric suffix instead.

Where the agent goes, by mode:
    init            an init container placed first, so the app's own init containers can use the files too
    native-sidecar  the same place, with restartPolicy Always and a startup probe; Kubernetes starts the next
                    container only once the probe passes, and a Job still completes (Kubernetes 1.29+)
    sidecar         an init container that writes the files before the app starts (plan mode init), and a
                    container beside the app that keeps them current (plan mode sidecar)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from injector.plan import ENV_VAR, AgentMode, Plan, ReloadSpec
from injector.webhook.annotations import INJECTED, STATUS
from injector.webhook.config import AgentSettings
from injector.webhook.planner import AUTH_DIR, Injection
from injector.webhook.pod import PodView, as_dict, as_list

FILES_VOLUME = "secretsvc-files"
AUTH_VOLUME = "secretsvc-auth"
AGENT_CONTAINER = "secretsvc-agent"
AGENT_INIT_CONTAINER = "secretsvc-agent-init"
AGENT_COMMAND = ("injector", "agent")
# The native sidecar's startup probe: exits 0 once the agent has written every file of its plan (the agent
# writes TARGET_DIR/.ready after its first complete round; docs/injector-agent.md).
READY_COMMAND = ("injector", "agent", "--check-ready")
READY_PROBE_TIMEOUT_SECONDS = 5
READY_PROBE_MARGIN_SECONDS = 30

Patch = list[dict[str, Any]]


def pointer(*parts: str | int) -> str:
    """A JSON Pointer (RFC 6901) from unescaped parts."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def unique(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _security_context(injection: Injection) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": injection.uid,
        "runAsGroup": injection.gid,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _agent(name: str, plan: Plan, plan_json: str, injection: Injection, settings: AgentSettings, files_volume: str,
           auth_volume: str) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": list(AGENT_COMMAND),
        "env": [{"name": ENV_VAR, "value": plan_json}],
        "securityContext": _security_context(injection),
        "volumeMounts": [
            {"name": files_volume, "mountPath": plan.target_dir},
            {"name": auth_volume, "mountPath": AUTH_DIR, "readOnly": True},
        ],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if injection.resources:
        container["resources"] = injection.resources
    if plan.mode is AgentMode.NATIVE_SIDECAR:
        container["restartPolicy"] = "Always"
        container["startupProbe"] = {
            "exec": {"command": list(READY_COMMAND)},
            "periodSeconds": 1,
            "timeoutSeconds": READY_PROBE_TIMEOUT_SECONDS,
            "failureThreshold": math.ceil(plan.deadline_seconds) + READY_PROBE_MARGIN_SECONDS,
        }
    return container


def _volumes(settings: AgentSettings, injection: Injection, files_volume: str, auth_volume: str) -> list[Any]:
    sources: list[dict[str, Any]] = [{"serviceAccountToken": {
        "audience": settings.token_audience, "expirationSeconds": settings.token_seconds, "path": "token"}}]
    if settings.ca_configmap:
        sources.append({"configMap": {"name": settings.ca_configmap,
                                      "items": [{"key": settings.ca_configmap_key, "path": "ca.pem"}]}})
    return [
        {"name": files_volume, "emptyDir": {"medium": "Memory", "sizeLimit": injection.tmpfs_size}},
        {"name": auth_volume, "projected": {"sources": sources}},
    ]


def _append(patch: Patch, obj: dict[str, Any], key: str, path: tuple[str | int, ...], items: list[Any]) -> None:
    """Append `items` to the list at obj[key], creating it when absent."""
    if isinstance(obj.get(key), list):
        patch.extend({"op": "add", "path": pointer(*path, key, "-"), "value": item} for item in items)
    else:
        patch.append({"op": "add", "path": pointer(*path, key), "value": items})


def build_patch(pod: PodView, injection: Injection, settings: AgentSettings, prefix: str) -> Patch:
    volumes_taken = pod.volume_names
    files_volume = unique(FILES_VOLUME, volumes_taken)
    auth_volume = unique(AUTH_VOLUME, volumes_taken | {files_volume})
    names = pod.container_names
    agent_name = unique(AGENT_CONTAINER, names)
    init_name = unique(AGENT_INIT_CONTAINER, names | {agent_name})

    patch: Patch = []
    spec = pod.spec
    _append(patch, spec, "volumes", ("spec",), _volumes(settings, injection, files_volume, auth_volume))
    mount = {"name": files_volume, "mountPath": injection.mount_path, "readOnly": True}
    for target in injection.targets:
        key = "initContainers" if target.init else "containers"
        raw = as_dict(as_list(spec.get(key))[target.index])
        _append(patch, raw, "volumeMounts", ("spec", key, target.index), [mount])

    plan = injection.plan
    first: dict[str, Any]
    if plan.mode is AgentMode.SIDECAR:
        init_plan = dataclasses.replace(plan, mode=AgentMode.INIT, reload=ReloadSpec())
        first = _agent(init_name, init_plan, init_plan.to_json(), injection, settings, files_volume, auth_volume)
        _append(patch, spec, "containers", ("spec",),
                [_agent(agent_name, plan, injection.plan_json, injection, settings, files_volume, auth_volume)])
    else:
        first = _agent(agent_name, plan, injection.plan_json, injection, settings, files_volume, auth_volume)
    if isinstance(spec.get("initContainers"), list):
        patch.append({"op": "add", "path": pointer("spec", "initContainers", 0), "value": first})
    else:
        patch.append({"op": "add", "path": pointer("spec", "initContainers"), "value": [first]})

    status_key = f"{prefix}{STATUS}"
    if isinstance(pod.metadata.get("annotations"), dict):
        patch.append({"op": "add", "path": pointer("metadata", "annotations", status_key), "value": INJECTED})
    else:
        patch.append({"op": "add", "path": pointer("metadata", "annotations"), "value": {status_key: INJECTED}})
    return patch


def already_injected(pod: PodView, prefix: str) -> bool:
    """The pod carries our status annotation and an agent container: a second review changes nothing.

    The annotation alone is not enough: a pod copied from an injected one (kubectl get -o yaml, edited, applied
    without its containers) would otherwise get no agent."""
    if pod.annotations.get(f"{prefix}{STATUS}") != INJECTED:
        return False
    return any(ENV_VAR in {e.get("name") for e in map(as_dict, as_list(c.raw.get("env")))}
               for c in pod.init_containers + pod.containers)
