"""Misconfiguration checks on pods that ask for secrets: a secret handed to a pod that other processes on the
node, or containers not meant to have it, can reach is not protected. Each check is deny, warn or off
(config.Checks; docs/injector.md, "Checks"):

    privileged        a container is privileged, or adds SYS_ADMIN, SYS_PTRACE or ALL capabilities
    host-namespaces   hostPID, hostIPC or hostNetwork
    host-path         a hostPath volume
    unlisted-readers  containers not listed in the containers annotation can still reach the files: the pod
                      shares its process namespace (/proc/PID/root of the app's processes)
"""

from __future__ import annotations

from dataclasses import dataclass

from injector.webhook.config import Action, Checks
from injector.webhook.pod import Container, PodView, as_dict, as_list

_POWERFUL_CAPABILITIES = frozenset({"ALL", "SYS_ADMIN", "CAP_SYS_ADMIN", "SYS_PTRACE", "CAP_SYS_PTRACE"})


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    action: Action
    message: str


def _privileged(c: Container) -> str | None:
    sc = c.security
    if sc.get("privileged") is True:
        return f"container {c.name} is privileged"
    added = {str(a).upper() for a in as_list(as_dict(sc.get("capabilities")).get("add"))}
    powerful = sorted(added & _POWERFUL_CAPABILITIES)
    if powerful:
        return f"container {c.name} adds capability {', '.join(powerful)}"
    return None


def run_checks(pod: PodView, targets: tuple[Container, ...], listed: bool, checks: Checks) -> list[Finding]:
    """Findings for every check not set to off. `listed`: the containers annotation chose the targets."""
    findings: list[Finding] = []
    if checks.privileged is not Action.OFF:
        for c in pod.all_containers:
            what = _privileged(c)
            if what:
                findings.append(Finding("privileged", checks.privileged,
                                        f"{what}: it can read any process's memory and files on the node, so the "
                                        "secrets are not protected; drop privileged and the capability, or keep "
                                        "secrets out of this pod"))
    if checks.host_namespaces is not Action.OFF:
        shared = [k for k in ("hostPID", "hostIPC", "hostNetwork") if pod.spec.get(k) is True]
        if shared:
            findings.append(Finding("host-namespaces", checks.host_namespaces,
                                    f"the pod sets {', '.join(shared)}: it shares the node's namespaces, where other "
                                    "processes on the node can reach it; remove them from a pod that holds secrets"))
    if checks.host_path is not Action.OFF:
        paths = [str(v.get("name")) for v in pod.volumes if "hostPath" in v]
        if paths:
            findings.append(Finding("host-path", checks.host_path,
                                    f"volume(s) {', '.join(paths)} mount a path of the node (hostPath): what the "
                                    "pod writes there, and what others put there, crosses the node; use an "
                                    "emptyDir or a PersistentVolumeClaim"))
    if checks.unlisted_readers is not Action.OFF and listed and pod.spec.get("shareProcessNamespace") is True:
        chosen = {(t.init, t.name) for t in targets}
        others = sorted(c.name for c in pod.init_containers + pod.containers if (c.init, c.name) not in chosen)
        if others:
            findings.append(Finding("unlisted-readers", checks.unlisted_readers,
                                    f"container(s) {', '.join(others)} are not listed to get the files but share "
                                    "the pod's process namespace, so they can read them through /proc/PID/root; "
                                    "list them, or set shareProcessNamespace: false"))
    return findings
