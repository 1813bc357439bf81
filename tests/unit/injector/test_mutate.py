"""The webhook's decision for one pod, from the annotations to the JSON Patch: where the agent goes in each mode,
who owns the files, names that do not clash, the misconfiguration checks, the access check's outcomes and
warn-only mode. Every patch is applied and the result validated with the `kubernetes` models; a second
review of the patched pod must change nothing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from injector.plan import ENV_VAR, AgentMode, SecretRef, parse_plan
from injector.webhook.access import AccessReport
from injector.webhook.admit import AdmissionRequest, Admitter, Decision
from injector.webhook.config import Action, AgentSettings, Checks, WebhookConfig
from injector.webhook.mutate import READY_COMMAND
from tests.admissionkit import apply_patch, pod, validate_pod

P = "secretsvc.io/"
AGENT = AgentSettings(image="registry.example/secretsvc:0.1.0", service_addr="secretsvc.secretsvc.svc:8290",
                      ca_configmap="secretsvc-ca")
CONFIG = WebhookConfig(agent=AGENT)
BASIC = {P + "inject": "true", P + "secret-db-password": "payments/db/password"}


class FakeAccess:
    def __init__(self, report: AccessReport | None = None) -> None:
        self.report = report or AccessReport()
        self.calls: list[tuple[str, str, tuple[SecretRef, ...]]] = []

    def check(self, namespace: str, service_account: str, refs: Sequence[SecretRef],
              request_id: str) -> AccessReport:
        self.calls.append((namespace, service_account, tuple(refs)))
        return self.report


def decide(obj: dict[str, Any], config: WebhookConfig = CONFIG, access: FakeAccess | None = None,
           operation: str = "CREATE", kind: str = "/v1/Pod") -> Decision:
    namespace = obj["metadata"].get("namespace", "payments")
    return Admitter(config, access).decide(AdmissionRequest("uid-1", namespace, operation, kind, obj))


def inject(obj: dict[str, Any], config: WebhookConfig = CONFIG, access: FakeAccess | None = None) -> dict[str, Any]:
    """The pod after the patch, validated, and checked to be left alone by a second review."""
    decision = decide(obj, config, access)
    assert decision.allowed and decision.patch, decision
    patched = apply_patch(obj, decision.patch)
    validate_pod(patched)
    again = decide(patched, config, access)
    assert again.allowed and again.patch is None and again.outcome == "unchanged"
    return patched


def containers(obj: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in obj["spec"].get(key, [])}


def plan_of(container: dict[str, Any]) -> Any:
    (env,) = [e for e in container["env"] if e["name"] == ENV_VAR]
    return parse_plan(env["value"])


def test_init_mode_adds_a_hardened_init_container_a_memory_volume_and_a_token_for_the_service() -> None:
    patched = inject(pod(BASIC))
    (agent,) = patched["spec"]["initContainers"]
    assert agent["name"] == "secretsvc-agent" and agent["image"] == AGENT.image
    assert agent["command"] == ["injector", "agent"]
    assert agent["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False, "privileged": False, "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"}}
    assert agent["resources"] == {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}}
    assert "restartPolicy" not in agent and "startupProbe" not in agent
    volumes = {v["name"]: v for v in patched["spec"]["volumes"]}
    assert volumes["secretsvc-files"] == {"name": "secretsvc-files",
                                          "emptyDir": {"medium": "Memory", "sizeLimit": "4Mi"}}
    assert volumes["secretsvc-auth"]["projected"]["sources"] == [
        {"serviceAccountToken": {"audience": "secretsvc", "expirationSeconds": 3600, "path": "token"}},
        {"configMap": {"name": "secretsvc-ca", "items": [{"key": "ca.crt", "path": "ca.pem"}]}}]
    app = containers(patched, "containers")["app"]
    assert {"name": "secretsvc-files", "mountPath": "/var/run/secrets/secretsvc", "readOnly": True} in \
        app["volumeMounts"]
    assert not any(m["name"] == "secretsvc-auth" for m in app["volumeMounts"])  # the token is the agent's alone
    assert patched["metadata"]["annotations"][P + "status"] == "injected"

    plan = plan_of(agent)
    assert plan.mode is AgentMode.INIT and plan.target_dir == "/var/run/secrets/secretsvc"
    assert plan.service.addr == AGENT.service_addr and plan.service.token_file == "/var/run/secretsvc/token"
    assert plan.service.ca_file == "/var/run/secretsvc/ca.pem"
    (spec,) = plan.files
    assert (spec.name, spec.secret, spec.mode, spec.uid, spec.gid) == (
        "db-password", SecretRef("payments", "db/password"), 0o400, 1000, 2000)


def test_the_agent_goes_first_among_existing_init_containers_and_the_pod_keeps_everything_it_had() -> None:
    obj = pod(BASIC, initContainers=[{"name": "migrate", "image": "registry.example/migrate:1"}])
    obj["metadata"].pop("annotations")
    obj["metadata"]["annotations"] = dict(BASIC, **{"team": "payments"})
    patched = inject(obj)
    assert [c["name"] for c in patched["spec"]["initContainers"]] == ["secretsvc-agent", "migrate"]
    assert patched["metadata"]["annotations"]["team"] == "payments"
    assert [v["name"] for v in patched["spec"]["volumes"]] == ["kube-api-access", "secretsvc-files", "secretsvc-auth"]


def test_a_pod_without_volumes_annotations_or_mounts_gets_the_lists_created() -> None:
    obj = pod(BASIC, containers=[{"name": "app", "image": "registry.example/app:1"}])
    del obj["spec"]["volumes"]
    patched = inject(obj)
    assert patched["spec"]["containers"][0]["volumeMounts"] == [
        {"name": "secretsvc-files", "mountPath": "/var/run/secrets/secretsvc", "readOnly": True}]


def test_native_sidecar_restarts_always_and_waits_for_a_startup_probe() -> None:
    patched = inject(pod({**BASIC, P + "agent-mode": "native-sidecar", P + "agent-deadline-seconds": "60",
                          P + "reload-url": "http://127.0.0.1:8080/reload"}))
    (agent,) = patched["spec"]["initContainers"]
    assert agent["restartPolicy"] == "Always"
    assert agent["startupProbe"]["exec"]["command"] == list(READY_COMMAND)
    assert agent["startupProbe"]["periodSeconds"] == 1 and agent["startupProbe"]["failureThreshold"] == 90
    plan = plan_of(agent)
    assert plan.mode is AgentMode.NATIVE_SIDECAR and plan.deadline_seconds == 60
    assert plan.reload.url == "http://127.0.0.1:8080/reload"


def test_sidecar_mode_writes_once_before_the_app_and_then_keeps_the_files_current() -> None:
    patched = inject(pod({**BASIC, P + "agent-mode": "sidecar", P + "reload-signal": "HUP",
                          P + "reload-process": "nginx"}, shareProcessNamespace=True))
    (init,) = patched["spec"]["initContainers"]
    sidecar = containers(patched, "containers")["secretsvc-agent"]
    assert init["name"] == "secretsvc-agent-init"
    init_plan, sidecar_plan = plan_of(init), plan_of(sidecar)
    assert init_plan.mode is AgentMode.INIT and init_plan.reload.signal is None
    assert sidecar_plan.mode is AgentMode.SIDECAR and sidecar_plan.reload.signal == "SIGHUP"
    assert sidecar_plan.reload.process == "nginx" and init_plan.files == sidecar_plan.files
    assert not any(m["name"] == "secretsvc-files" and m.get("readOnly") for m in sidecar["volumeMounts"])


def test_reload_by_signal_needs_a_shared_process_namespace() -> None:
    decision = decide(pod({**BASIC, P + "agent-mode": "sidecar", P + "reload-signal": "HUP",
                           P + "reload-process": "nginx"}))
    assert not decision.allowed and "set spec.shareProcessNamespace: true" in decision.message


def test_our_names_step_aside_for_names_the_pod_already_uses() -> None:
    obj = pod(BASIC, containers=[{"name": "secretsvc-agent", "image": "registry.example/app:1"}])
    obj["spec"]["volumes"].append({"name": "secretsvc-files", "emptyDir": {}})
    patched = inject(obj)
    assert patched["spec"]["initContainers"][0]["name"] == "secretsvc-agent-2"
    names = [v["name"] for v in patched["spec"]["volumes"]]
    assert names == ["kube-api-access", "secretsvc-files", "secretsvc-files-2", "secretsvc-auth"]
    assert patched["spec"]["containers"][0]["volumeMounts"] == [
        {"name": "secretsvc-files-2", "mountPath": "/var/run/secrets/secretsvc", "readOnly": True}]


def test_only_the_listed_containers_get_the_files_and_an_app_init_container_may_be_one() -> None:
    obj = pod({**BASIC, P + "containers": "worker,setup", P + "mount-path": "/etc/app/secrets"},
              containers=[{"name": "app", "image": "a"}, {"name": "worker", "image": "w"}],
              initContainers=[{"name": "setup", "image": "s"}])
    patched = inject(obj)
    mounted = {c["name"]: [m["mountPath"] for m in c.get("volumeMounts", [])]
               for c in patched["spec"]["initContainers"] + patched["spec"]["containers"]}
    assert mounted["worker"] == ["/etc/app/secrets"] and mounted["setup"] == ["/etc/app/secrets"]
    assert mounted["app"] == [] and [c["name"] for c in patched["spec"]["initContainers"]] == [
        "secretsvc-agent", "setup"]


def test_a_listed_container_that_does_not_exist_is_refused_naming_the_ones_that_do() -> None:
    decision = decide(pod({**BASIC, P + "containers": "web"}))
    assert not decision.allowed
    assert "the pod has no container web; its containers are app" in decision.message


def test_a_mount_path_already_taken_or_overlapping_the_agents_token_is_refused() -> None:
    taken = decide(pod({**BASIC, P + "mount-path": "/var/run/secrets/kubernetes.io/sa"}))
    assert not taken.allowed and "container app already mounts something at" in taken.message
    token = decide(pod({**BASIC, P + "mount-path": "/var/run/secretsvc/files"}))
    assert not token.allowed and "overlaps /var/run/secretsvc" in token.message


@pytest.mark.parametrize(("security", "container_security", "owner", "expected"), [
    ({"runAsUser": 1000, "fsGroup": 2000}, {}, None, (0o400, 1000, 2000, 1000)),
    ({"fsGroup": 2000}, {}, None, (0o440, None, 2000, 65532)),
    ({}, {"runAsUser": 1001, "runAsGroup": 1001}, None, (0o400, 1001, 1001, 1001)),
    ({"runAsUser": 1000}, {"runAsUser": 1002}, None, (0o400, 1002, None, 1002)),
    ({"runAsUser": 1000, "fsGroup": 2000}, {}, "1500:3000", (0o400, 1500, 3000, 1500)),
    ({"runAsUser": 1000, "fsGroup": 2000}, {}, "1500", (0o400, 1500, 2000, 1500)),
    ({}, {}, "1500:3000", (0o400, 1500, 3000, 1500)),
])
def test_files_are_owned_by_the_apps_user_and_group_and_the_agent_runs_as_their_owner(
        security: dict[str, int], container_security: dict[str, int], owner: str | None,
        expected: tuple[int, int | None, int | None, int]) -> None:
    annotations = dict(BASIC, **({P + "owner-db-password": owner} if owner else {}))
    obj = pod(annotations, securityContext=security,
              containers=[{"name": "app", "image": "a", "securityContext": container_security}])
    patched = inject(obj)
    agent = patched["spec"]["initContainers"][0]
    (spec,) = plan_of(agent).files
    mode, uid, gid, agent_uid = expected
    assert (spec.mode, spec.uid, spec.gid) == (mode, uid, gid)
    assert agent["securityContext"]["runAsUser"] == agent_uid
    if gid is not None and gid != security.get("fsGroup"):
        assert agent["securityContext"]["runAsGroup"] == gid  # the agent may only hand out its own groups


@pytest.mark.parametrize(("annotations", "security", "expected"), [
    ({}, {}, "its owner is unknown"),
    ({P + "mode-db-password": "0400"}, {"fsGroup": 2000}, "lets only its owner read it"),
    ({P + "owner-db-password": "0"}, {}, "owned by root"),
    ({P + "secret-b": "payments/b", P + "owner-b": "1001"}, {"runAsUser": 1000}, "owned by different users"),
    ({P + "secret-b": "payments/b", P + "owner-b": "1000:4000", P + "owner-db-password": "1000:5000"},
     {"runAsUser": 1000}, "files have groups 4000, 5000"),
    ({P + "agent-memory-limit": "8Mi"}, {"runAsUser": 1000}, "below its request"),
    ({P + "agent-memory-limit": "32Mi", P + "tmpfs-size": "64Mi"}, {"runAsUser": 1000}, "below the tmpfs size"),
    ({P + "agent-cpu-request": "1", P + "agent-cpu-limit": "100m"}, {"runAsUser": 1000}, "cpu limit (100m)"),
])
def test_ownership_and_resources_that_cannot_work_are_refused(annotations: dict[str, str],
                                                              security: dict[str, int], expected: str) -> None:
    decision = decide(pod({**BASIC, **annotations}, securityContext=security))
    assert not decision.allowed and expected in decision.message, decision.message


def test_templates_and_item_files_reach_the_plan_and_every_secret_is_checked_once() -> None:
    access = FakeAccess()
    patched = inject(pod({
        P + "inject": "true", P + "template-app.env": "DB=payments/db/password\nAPI=payments/api@2",
        P + "format-app.env": "env", P + "template-conf.yaml": "pw: {{ secret('payments/db/password') }}",
        P + "secret-raw": "payments/raw"}), access=access)
    plan = plan_of(patched["spec"]["initContainers"][0])
    assert [f.name for f in plan.files] == ["app.env", "conf.yaml", "raw"]
    (call,) = access.calls
    assert call == ("payments", "app", (SecretRef("payments", "api", 2), SecretRef("payments", "db/password"),
                                        SecretRef("payments", "raw")))


def test_access_denied_or_missing_refuses_the_pod_naming_each_secret() -> None:
    report = AccessReport(problems=("secret payments/db/password: service account payments/app may not read it",
                                    "secret payments/raw: payments/raw does not exist; put it first"))
    decision = decide(pod(BASIC), access=FakeAccess(report))
    assert not decision.allowed and decision.patch is None
    assert "(1) secret payments/db/password: service account payments/app may not read it" in decision.message
    assert "(2) secret payments/raw" in decision.message
    warned = decide(pod(BASIC), replace(CONFIG, check_access=Action.WARN), FakeAccess(report))
    assert warned.allowed and warned.patch and len(warned.warnings) == 2
    off = FakeAccess(report)
    assert decide(pod(BASIC), replace(CONFIG, check_access=Action.OFF), off).allowed and off.calls == []


def test_a_service_that_cannot_be_asked_warns_by_default_and_refuses_when_configured() -> None:
    down = FakeAccess(AccessReport(unavailable="the secrets service could not be asked (UNAVAILABLE: down)"))
    warned = decide(pod(BASIC), access=down)
    assert warned.allowed and warned.patch
    assert any("access not checked: the secrets service could not be asked" in w for w in warned.warnings)
    refused = decide(pod(BASIC), replace(CONFIG, service_unavailable=Action.DENY), down)
    assert not refused.allowed and "try again when the service answers" in refused.message


@pytest.mark.parametrize(("spec", "check", "expected"), [
    ({"containers": [{"name": "app", "image": "a", "securityContext": {"privileged": True}}]}, "privileged",
     "container app is privileged"),
    ({"containers": [{"name": "app", "image": "a", "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}}]},
     "privileged", "adds capability SYS_PTRACE"),
    ({"hostPID": True, "hostNetwork": True}, "host_namespaces", "sets hostPID, hostNetwork"),
    ({"volumes": [{"name": "logs", "hostPath": {"path": "/var/log"}}]}, "host_path", "volume(s) logs mount a path"),
])
def test_misconfiguration_checks_deny_warn_or_stay_off(spec: dict[str, Any], check: str, expected: str) -> None:
    obj = pod(BASIC, **spec)
    for action in Action:
        config = replace(CONFIG, checks=replace(Checks(privileged=Action.OFF, host_namespaces=Action.OFF,
                                                       host_path=Action.OFF), **{check: action}))
        decision = decide(obj, config)
        if action is Action.DENY:
            assert not decision.allowed and expected in decision.message
        elif action is Action.WARN:
            assert decision.allowed and decision.patch and any(expected in w for w in decision.warnings)
        else:
            assert decision.allowed and not any(expected in w for w in decision.warnings)


def test_unlisted_containers_sharing_the_process_namespace_are_reported() -> None:
    obj = pod({**BASIC, P + "containers": "app"}, shareProcessNamespace=True,
              containers=[{"name": "app", "image": "a"}, {"name": "debug", "image": "d"}])
    decision = decide(obj)
    assert decision.allowed and any("container(s) debug are not listed" in w for w in decision.warnings)
    strict = decide(obj, replace(CONFIG, checks=Checks(unlisted_readers=Action.DENY)))
    assert not strict.allowed and "/proc/PID/root" in strict.message
    # Without the containers annotation every app container is listed: nothing to report.
    assert not any("not listed" in w for w in decide(pod(BASIC, shareProcessNamespace=True)).warnings)


def test_warn_only_admits_what_would_be_refused() -> None:
    config = replace(CONFIG, warn_only=True)
    typo = decide(pod({**BASIC, P + "mount-pth": "/x"}), config)
    assert typo.allowed and typo.patch is None
    assert any("would refuse" in w and "did you mean secretsvc.io/mount-path" in w for w in typo.warnings)
    denied = decide(pod(BASIC), config, FakeAccess(AccessReport(problems=("secret payments/db/password: no",))))
    assert denied.allowed and denied.patch and denied.outcome == "injected-with-warnings"


def test_pods_outside_our_remit_are_left_alone() -> None:
    assert decide(pod(BASIC, namespace="kube-system")).outcome == "skipped"
    skipped = decide(pod(BASIC, namespace="kube-system"))
    assert skipped.allowed and skipped.patch is None and "is skipped" in skipped.warnings[0]
    assert decide(pod(BASIC), operation="UPDATE").outcome == "ignored"
    assert decide(pod(BASIC), kind="apps/v1/Deployment").outcome == "ignored"
    assert decide(pod({"team": "payments"})).outcome == "not-requested"
    assert decide(pod({P + "inject": "false", P + "secret-a": "payments/a"})).patch is None
    assert decide(pod(BASIC, namespace="tools"), replace(CONFIG, skip_namespaces=frozenset({"tools"}))).patch is None


def test_a_copied_status_annotation_without_an_agent_does_not_stop_injection() -> None:
    obj = pod({**BASIC, P + "status": "injected"})
    patched = inject(obj)
    assert patched["spec"]["initContainers"][0]["name"] == "secretsvc-agent"


def test_the_refusal_names_the_pod_and_numbers_the_problems() -> None:
    obj = pod({P + "inject": "true", P + "secret-a": "bad", P + "secret-b": "bad"})
    obj["metadata"]["name"] = "api-0"
    decision = decide(obj)
    assert decision.message.startswith("secretsvc injector: pod payments/api-0 cannot get its secrets: (1) ")
    assert "; (2) " in decision.message
    assert json.dumps(decision.message)  # plain text, no structure to escape
