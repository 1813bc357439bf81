"""From a pod and its annotations to what will be injected: the agent's plan, the user it runs as, the
containers that get the files, its resources. Defaults that depend on the pod are decided here.

File ownership: the agent runs non-root with every capability dropped, so it can only create files owned by
its own user, with a group it belongs to. It therefore runs as the files' owner (one user for all files),
with a primary group chosen so that each file's group is one of its groups (its primary group, the pod's
fsGroup or supplementalGroups). A file's default owner is the app containers' user (runAsUser) and the pod's
fsGroup; mode 0400 when that user is known, 0440 when only the group is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from injector.plan import (
    FileSpec,
    Plan,
    ReloadSpec,
    SecretRef,
    ServiceSpec,
    parse_plan,
)
from injector.webhook import annotations as ann
from injector.webhook.annotations import PodAnnotations, parse_quantity
from injector.webhook.config import AgentSettings
from injector.webhook.pod import Container, PodView
from secretsvc.errors import InvalidArgument
from secretsvc.service.limits import MAX_GET_SECRETS_ITEMS

# Inside the agent container only: the projected service-account token and the service's CA bundle.
AUTH_DIR = "/var/run/secretsvc"
TOKEN_FILE = f"{AUTH_DIR}/token"
CA_FILE = f"{AUTH_DIR}/ca.pem"
MAX_SECRETS_PER_POD = MAX_GET_SECRETS_ITEMS  # what one CheckAccess and one GetSecrets may cover


@dataclass(frozen=True, slots=True)
class Injection:
    plan: Plan
    plan_json: str  # the plan as the agent reads it, already read back with the agent's parser
    refs: tuple[SecretRef, ...]  # every secret the plan needs, each once (Plan.refs)
    targets: tuple[Container, ...]  # the app containers that get the files (read-only)
    uid: int  # the agent's runAsUser
    gid: int  # its runAsGroup
    tmpfs_size: str
    resources: dict[str, dict[str, str]] = field(default_factory=dict)  # requests/limits, as in a container

    @property
    def mount_path(self) -> str:
        return self.plan.target_dir


@dataclass(frozen=True, slots=True)
class Planned:
    injection: Injection | None
    problems: tuple[str, ...]


def _targets(pod: PodView, request: PodAnnotations, prefix: str, problems: list[str]) -> list[Container]:
    if request.containers is None:
        targets = [c for c in pod.containers if c.name]
        if not targets:
            problems.append("the pod has no containers to give the files to")
        return targets
    by_name = {c.name: c for c in pod.init_containers + pod.containers if c.name}
    missing = [n for n in request.containers if n not in by_name]
    if missing:
        problems.append(f"annotation {prefix}{ann.CONTAINERS}: the pod has no container "
                        f"{', '.join(missing)}; its containers are {', '.join(sorted(by_name)) or 'none'}")
    return [by_name[n] for n in request.containers if n in by_name]


def _common(values: list[int | None]) -> int | None:
    known = set(values)
    return known.pop() if len(known) == 1 and None not in values else None


def _files(pod: PodView, request: PodAnnotations, targets: list[Container], prefix: str,
           problems: list[str]) -> list[FileSpec]:
    app_uid = _common([pod.effective(c, "runAsUser") for c in targets]) if targets else None
    app_gid = pod.fs_group if pod.fs_group is not None else (
        _common([pod.effective(c, "runAsGroup") for c in targets]) if targets else None)
    files = []
    for f in request.files:
        uid = f.uid if f.uid is not None else app_uid
        gid = f.gid if f.gid is not None else app_gid
        if f.uid is not None and f.gid is None and app_gid is not None:
            gid = app_gid
        mode = f.mode if f.mode is not None else (0o400 if uid is not None else 0o440)
        if uid is None and gid is None:
            problems.append(f"file {f.name}: its owner is unknown: the app containers set no runAsUser (or "
                            "different ones) and the pod sets no fsGroup; set spec.securityContext.runAsUser or "
                            f"fsGroup, or annotate {prefix}{ann.OWNER}{f.name}: UID[:GID]")
            continue
        if uid is None and not mode & 0o040:
            problems.append(f"file {f.name}: mode {mode:04o} lets only its owner read it, but the app's user is "
                            f"unknown (only the group {gid} is); use {prefix}{ann.MODE}{f.name}: \"0440\", or set "
                            "runAsUser")
            continue
        files.append(FileSpec(f.name, secret=f.secret, render=f.render, mode=mode, uid=uid, gid=gid))
    return files


def _agent_ids(pod: PodView, files: list[FileSpec], settings: AgentSettings, prefix: str,
               problems: list[str]) -> tuple[int, int]:
    uids = sorted({f.uid for f in files if f.uid is not None})
    if len(uids) > 1:
        problems.append(f"files are owned by different users ({', '.join(map(str, uids))}): the agent runs as one "
                        "non-root user and can only create files it owns; give every file the same user and "
                        f"share through groups ({prefix}{ann.OWNER}NAME: UID:GID)")
    if uids and uids[0] == 0:
        problems.append("files would be owned by root (uid 0): the agent never runs as root; run the app as a "
                        f"non-root user (runAsUser) or annotate {prefix}{ann.OWNER}NAME: UID:GID with a UID above 0")
    uid = uids[0] if uids else settings.default_uid
    shared = pod.supplemental_groups | ({pod.fs_group} if pod.fs_group is not None else set())
    own = sorted({f.gid for f in files if f.gid is not None} - shared)
    if len(own) > 1:
        problems.append(f"files have groups {', '.join(map(str, own))}, but the agent can hold only one group of "
                        "its own besides the pod's fsGroup and supplementalGroups; add them to "
                        "spec.securityContext.supplementalGroups, or use one group")
    pod_gid = pod.security.get("runAsGroup")
    gid = own[0] if own else (pod_gid if isinstance(pod_gid, int) and not isinstance(pod_gid, bool) else uid)
    return uid, gid


def _resources(request: PodAnnotations, settings: AgentSettings, tmpfs_size: str, prefix: str,
               problems: list[str]) -> dict[str, dict[str, str]]:
    r = request.resources
    chosen = {
        ("requests", "cpu"): r.cpu_request or settings.cpu_request,
        ("requests", "memory"): r.memory_request or settings.memory_request,
        ("limits", "cpu"): r.cpu_limit or settings.cpu_limit,
        ("limits", "memory"): r.memory_limit or settings.memory_limit,
    }
    out: dict[str, dict[str, str]] = {}
    for (kind, resource), value in chosen.items():
        if value:
            out.setdefault(kind, {})[resource] = value

    def amount(kind: str, resource: str) -> Decimal | None:
        text = out.get(kind, {}).get(resource)
        return None if text is None else parse_quantity(text, what=resource, maximum=2**62)

    for resource in ("cpu", "memory"):
        request_amount, limit_amount = amount("requests", resource), amount("limits", resource)
        if request_amount is not None and limit_amount is not None and limit_amount < request_amount:
            problems.append(f"the agent's {resource} limit ({out['limits'][resource]}) is below its request "
                            f"({out['requests'][resource]}); raise "
                            f"{prefix}agent-{resource}-limit or lower {prefix}agent-{resource}-request")
    memory_limit = amount("limits", "memory")
    if memory_limit is not None and memory_limit < parse_quantity(tmpfs_size, what="tmpfs", maximum=2**62):
        problems.append(f"the agent's memory limit ({out['limits']['memory']}) is below the tmpfs size "
                        f"({tmpfs_size}); the files it writes count against its memory: raise "
                        f"{prefix}agent-memory-limit")
    return out


def plan_injection(pod: PodView, request: PodAnnotations, settings: AgentSettings, prefix: str) -> Planned:
    problems: list[str] = []
    targets = _targets(pod, request, prefix, problems)
    mount_path = request.mount_path or settings.mount_path
    if mount_path == AUTH_DIR or mount_path.startswith(AUTH_DIR + "/") or AUTH_DIR.startswith(mount_path + "/"):
        problems.append(f"annotation {prefix}{ann.MOUNT_PATH}: {mount_path} overlaps {AUTH_DIR}, where the agent "
                        "keeps its service-account token; choose another directory")
    for c in targets:
        if mount_path in c.mount_paths:
            problems.append(f"container {c.name} already mounts something at {mount_path}; choose another "
                            f"directory with {prefix}{ann.MOUNT_PATH}")
    if request.reload.signal is not None and pod.spec.get("shareProcessNamespace") is not True:
        problems.append(f"annotation {prefix}{ann.RELOAD_SIGNAL}: the agent can signal the app only if the pod "
                        "shares its process namespace; set spec.shareProcessNamespace: true, or use "
                        f"{prefix}{ann.RELOAD_URL}")
    files = _files(pod, request, targets, prefix, problems)
    uid, gid = _agent_ids(pod, files, settings, prefix, problems)
    tmpfs_size = request.tmpfs_size or settings.tmpfs_size
    resources = _resources(request, settings, tmpfs_size, prefix, problems)
    if problems or not files:
        return Planned(None, tuple(problems))
    service = ServiceSpec(addr=settings.service_addr, ca_file=CA_FILE if settings.ca_configmap else None,
                          token_file=TOKEN_FILE, server_name=settings.server_name)
    reload = ReloadSpec(signal=request.reload.signal, process=request.reload.process, url=request.reload.url)
    plan = Plan(service=service, target_dir=mount_path, files=tuple(files), mode=request.agent_mode, reload=reload,
                **({"deadline_seconds": request.deadline_seconds} if request.deadline_seconds else {}))
    refs: tuple[SecretRef, ...] = plan.refs()
    if len(refs) > MAX_SECRETS_PER_POD:
        return Planned(None, (f"the pod asks for {len(refs)} secrets; at most MAX_SECRETS_PER_POD="
                              f"{MAX_SECRETS_PER_POD}",))
    plan_json = plan.to_json()
    try:
        parse_plan(plan_json)  # the agent reads it with this parser: refuse now what it would refuse later
    except InvalidArgument as exc:
        return Planned(None, (f"the agent's plan would be refused: {exc}",))
    return Planned(Injection(plan=plan, plan_json=plan_json, refs=refs, targets=tuple(targets), uid=uid, gid=gid,
                             tmpfs_size=tmpfs_size, resources=resources), ())
