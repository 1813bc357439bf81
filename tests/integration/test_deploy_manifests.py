"""The Kubernetes manifests under deploy/: every YAML file, every kustomize build, and the worked example.

No API server runs here, so each object is checked against the `kubernetes` client's models (generated
from the API server's OpenAPI schema): deserialized into its model class and serialized back, which must
give the input again, so a misspelled or misplaced field (dropped by the model) fails. cert-manager and
trust-manager objects, whose models the client does not have, are checked against the fields this
project uses. `kubectl kustomize` (Debian `kubernetes-client`) builds every overlay, and the output is
checked the same way, then for what holds the pieces together: hardened containers, references that
resolve, selectors that select. The webhook's own flag parser reads the webhook Deployment's arguments,
the server's own configuration loader reads the StatefulSet's (with real certificate files), the webhook's
admission code admits the worked example's pods, and the policy loader reads every policy document.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
EXAMPLES = DEPLOY / "examples"
# Every directory `kubectl kustomize` builds (components are built through the overlays that use them).
BUILDS = {
    "base/service": KUBERNETES / "base" / "service",
    "base/webhook": KUBERNETES / "base" / "webhook",
    "overlays/dev": KUBERNETES / "overlays" / "dev",
    "overlays/production": KUBERNETES / "overlays" / "production",
    "overlays/postgresql": KUBERNETES / "overlays" / "postgresql",
    "examples": EXAMPLES,
}
NAMESPACE = "secretsvc"
# Made outside kustomize: by cert-manager and trust-manager (production) or deploy/scripts/dev-certs.sh (dev),
# and the keyring passphrase, the database password, the Vault token and the database's CA by the operator
# (docs/deploy.md).
EXTERNAL_SECRETS = {"secretsvc-tls", "injector-webhook-tls", "secretsvc-keyring", "secretsvc-store", "secretsvc-vault"}
EXTERNAL_CONFIGMAPS = {"secretsvc-ca", "postgresql-ca"}
IMAGE_USERS = {"secretsvc": 10001, "secretsvc-webhook": 65532}  # USER of deploy/Containerfile*

MODELS = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("v1", "Service"): "V1Service",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
    ("batch/v1", "Job"): "V1Job",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "V1ClusterRoleBinding",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "V1RoleBinding",
    ("rbac.authorization.k8s.io/v1", "Role"): "V1Role",
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"): "V1MutatingWebhookConfiguration",
}
CLUSTER_SCOPED = {"Namespace", "ClusterRoleBinding", "MutatingWebhookConfiguration", "ClusterIssuer", "Bundle"}

# Custom resources: the fields of their schemas this project may use (None: any value below).
_ISSUER_REF = {"group": None, "kind": None, "name": None}
_METADATA = {"name": None, "namespace": None, "labels": None, "annotations": None}
CUSTOM = {
    ("cert-manager.io/v1", "Certificate"): {
        "metadata": _METADATA,
        "spec": {
            "secretName": None,
            "isCA": None,
            "commonName": None,
            "dnsNames": None,
            "duration": None,
            "renewBefore": None,
            "usages": None,
            "issuerRef": _ISSUER_REF,
            "privateKey": {"algorithm": None, "size": None, "rotationPolicy": None, "encoding": None},
        },
    },
    ("cert-manager.io/v1", "ClusterIssuer"): {
        "metadata": _METADATA,
        "spec": {"selfSigned": {}, "ca": {"secretName": None}},
    },
    ("trust.cert-manager.io/v1alpha1", "Bundle"): {
        "metadata": _METADATA,
        "spec": {
            "sources": [
                {"secret": {"name": None, "key": None}, "configMap": {"name": None, "key": None}, "useDefaultCAs": None}
            ],
            "target": {"configMap": {"key": None}, "namespaceSelector": None},
        },
    },
}
WORKLOADS = {"Deployment", "StatefulSet", "Job", "DaemonSet"}


# -- validating one document ------------------------------------------------------------------------------


def _first_difference(given: Any, back: Any, where: str = "") -> str:
    if isinstance(given, dict) and isinstance(back, dict):
        for key in given:
            if key not in back:
                return f"{where}.{key}" if where else key
            found = _first_difference(given[key], back[key], f"{where}.{key}" if where else key)
            if found:
                return found
        return ""
    if isinstance(given, list) and isinstance(back, list):
        if len(given) != len(back):
            return f"{where} (length)"
        for i, (a, b) in enumerate(zip(given, back, strict=True)):
            found = _first_difference(a, b, f"{where}[{i}]")
            if found:
                return found
        return ""
    return where if given != back else ""


def _check_custom(value: Any, schema: Any, where: str) -> None:
    if schema is None:
        return
    if isinstance(schema, list):
        assert isinstance(value, list), f"{where} must be a list"
        for i, item in enumerate(value):
            _check_custom(item, schema[0], f"{where}[{i}]")
        return
    assert isinstance(value, dict), f"{where} must be a mapping"
    unknown = set(value) - set(schema)
    assert not unknown, f"{where}: unknown field(s) {sorted(unknown)}"
    for key, item in value.items():
        _check_custom(item, schema[key], f"{where}.{key}")


def validate(doc: Any) -> None:
    """AssertionError (or the model's ValueError) unless `doc` is a Kubernetes object this project knows,
    with no field its model does not have and every field its model requires."""
    assert isinstance(doc, dict), "a document must be a mapping"
    key = (doc.get("apiVersion"), doc.get("kind"))
    assert isinstance(doc.get("metadata", {}).get("name"), str), f"{key}: metadata.name is required"
    if key in CUSTOM:
        unknown = set(doc) - {"apiVersion", "kind", "metadata", "spec"}
        assert not unknown, f"{key}: unknown field(s) {sorted(unknown)}"
        _check_custom({k: v for k, v in doc.items() if k in {"metadata", "spec"}}, CUSTOM[key], doc["kind"])
        return
    assert key in MODELS, f"{key}: not a kind these manifests use (add it to MODELS if it should be)"
    client = ApiClient()
    model = client._ApiClient__deserialize(copy.deepcopy(doc), MODELS[key])
    back = client.sanitize_for_serialization(model)
    difference = _first_difference(doc, back)
    assert back == doc, f"{doc['kind']}/{doc['metadata']['name']}: {difference or 'a field'} is not in the model"


# -- the files under deploy/ ------------------------------------------------------------------------------


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".yml"} and p.is_file())


def _kind_of_file(path: Path) -> str:
    rel = path.relative_to(DEPLOY)
    if rel.parts[0] == "ci":
        return "ci"
    if path.name == "kustomization.yaml":
        return "kustomization"
    if "policies" in rel.parts[:-1]:
        return "policy"
    return "manifest"


def _policy_problems(sources: list[tuple[str, bytes]]) -> list[str]:
    from secretsvc.policy.loader import Source, check_sources

    result = check_sources([Source(name, data) for name, data in sources])
    return [str(p) for p in result.problems]


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses_and_validates(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, "no document"
    kind = _kind_of_file(path)
    if kind == "ci":
        assert all(isinstance(d, dict) for d in docs)  # GitHub Actions / GitLab CI: theirs to validate
    elif kind == "kustomization":
        assert len(docs) == 1
        doc = docs[0]
        assert (doc.get("apiVersion"), doc.get("kind")) in {
            ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
            ("kustomize.config.k8s.io/v1alpha1", "Component"),
        }
        for ref in [*doc.get("resources", []), *doc.get("components", [])]:
            assert (path.parent / ref).exists(), f"{ref} does not exist"
        for generator in doc.get("configMapGenerator", []):
            for file in generator.get("files", []):
                assert (path.parent / file.rpartition("=")[2]).is_file(), f"{file} does not exist"
    elif kind == "policy":
        assert len(docs) == 1
        assert _policy_problems([(path.name, path.read_bytes())]) == []
    else:
        for doc in docs:
            validate(doc)


def test_every_kubernetes_file_is_used_by_a_kustomization() -> None:
    used: set[Path] = set()
    for path in yaml_files():
        if path.name == "kustomization.yaml":
            doc = yaml.safe_load(path.read_text())
            used |= {(path.parent / r).resolve() for r in doc.get("resources", [])}
            for generator in doc.get("configMapGenerator", []):
                used |= {(path.parent / f.rpartition("=")[2]).resolve() for f in generator.get("files", [])}
    unused = [p for p in yaml_files() if _kind_of_file(p) in {"manifest", "policy"} and p.resolve() not in used]
    assert not unused, f"not in any kustomization: {unused}"


def _statefulset() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((KUBERNETES / "base" / "service" / "statefulset.yaml").read_text())
    return doc


def _webhook_configuration() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((KUBERNETES / "base" / "webhook" / "mutatingwebhook.yaml").read_text())
    return doc


def _rename(doc: dict[str, Any], path: list[str | int], new: str) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    parent: Any = out
    for part in path[:-1]:
        parent = parent[part]
    parent[new] = parent.pop(path[-1])
    return out


CONTAINER = ["spec", "template", "spec", "containers", 0]


@pytest.mark.parametrize(
    ("make", "path", "typo"),
    [
        (_statefulset, [*CONTAINER, "securityContext", "readOnlyRootFilesystem"], "readOnlyRootFilesytem"),
        (_statefulset, ["spec", "replicas"], "replica"),
        (_statefulset, [*CONTAINER, "resources"], "resource"),
        (_webhook_configuration, ["webhooks", 0, "failurePolicy"], "failurePolcy"),
        (_webhook_configuration, ["webhooks", 0, "sideEffects"], "sideEffect"),  # also required: the model refuses
    ],
)
def test_a_misspelled_field_is_caught(make: Any, path: list[str | int], typo: str) -> None:
    doc = make()
    validate(doc)
    with pytest.raises((AssertionError, ValueError)):
        validate(_rename(doc, path, typo))


def test_a_misspelled_custom_resource_field_is_caught() -> None:
    docs = list(yaml.safe_load_all((KUBERNETES / "components" / "cert-manager" / "certificates.yaml").read_text()))
    validate(docs[0])
    with pytest.raises(AssertionError):
        validate(_rename(docs[0], ["spec", "dnsNames"], "dnsName"))


# -- kustomize builds ---------------------------------------------------------------------------------------

MIN_KUSTOMIZE = (4, 0)  # `labels:` and `components:`; kubectl 1.21+ embeds kustomize v4 or later


def _kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl is not installed (Debian package kubernetes-client; scripts/test.sh installs it)")
    version = subprocess.run(
        [found, "version", "--client"], capture_output=True, text=True, timeout=60, check=False
    ).stdout
    m = re.search(r"Kustomize Version: v(\d+)\.(\d+)", version)
    assert m is not None and (int(m.group(1)), int(m.group(2))) >= MIN_KUSTOMIZE, (
        f"{found} embeds no kustomize v{MIN_KUSTOMIZE[0]}+ (kubectl 1.21 or later does); the kustomizations use "
        f"labels and components. `kubectl version --client` says: {version.strip()[:300]}"
    )
    return found


_built: dict[str, list[dict[str, Any]]] = {}


def build(name: str) -> list[dict[str, Any]]:
    if name not in _built:
        result = subprocess.run(
            [_kubectl(), "kustomize", str(BUILDS[name])], capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, f"kubectl kustomize {name}: {result.stderr}"
        _built[name] = [d for d in yaml.safe_load_all(result.stdout) if d is not None]
    return _built[name]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in WORKLOADS:
            yield doc, doc["spec"]["template"]["spec"]


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_kustomize_builds_and_the_output_validates(name: str) -> None:
    docs = build(name)
    assert docs
    for doc in docs:
        validate(doc)
        if doc["kind"] not in CLUSTER_SCOPED:
            assert doc["metadata"].get("namespace"), f"{doc['kind']}/{doc['metadata']['name']} has no namespace"
    keys = [(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs]
    assert len(keys) == len(set(keys)), "an object appears twice"


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_references_resolve(name: str) -> None:
    docs = build(name)
    present = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs}
    has_service = any(k[0] == "StatefulSet" for k in present)
    for workload, spec in pod_specs(docs):
        ns = workload["metadata"]["namespace"]
        assert ("ServiceAccount", ns, spec["serviceAccountName"]) in present, (
            f"{workload['metadata']['name']}: service account {spec['serviceAccountName']} is not defined"
        )
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] in EXTERNAL_SECRETS
            if "configMap" in volume:
                cm = volume["configMap"]["name"]
                assert cm in EXTERNAL_CONFIGMAPS or ("ConfigMap", ns, cm) in present, f"ConfigMap {cm} is missing"
        mounts = {m["name"] for c in spec["containers"] for m in c.get("volumeMounts", [])}
        volumes = {v["name"] for v in spec.get("volumes", [])}
        claims = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
        assert mounts <= volumes | claims, f"mounts without a volume: {mounts - volumes - claims}"
    for doc in docs:
        ns = doc["metadata"].get("namespace")
        if doc["kind"] == "Service":
            selected = [
                w
                for w, _ in pod_specs(docs)
                if w["metadata"]["namespace"] == ns
                and _selects(doc["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])
            ]
            assert len(selected) == 1, f"Service {doc['metadata']['name']} selects {len(selected)} workloads"
            ports = {p["name"] for c in selected[0]["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
            assert {p["targetPort"] for p in doc["spec"]["ports"]} <= ports
        if doc["kind"] in {"PodDisruptionBudget", "NetworkPolicy"}:
            selector = doc["spec"]["selector"] if doc["kind"] == "PodDisruptionBudget" else doc["spec"]["podSelector"]
            if selector.get("matchLabels"):
                assert any(
                    _selects(selector["matchLabels"], w["spec"]["template"]["metadata"]["labels"])
                    for w, _ in pod_specs(docs)
                    if w["metadata"]["namespace"] == ns
                ), f"{doc['kind']}/{doc['metadata']['name']} selects no pod"
        if doc["kind"] == "MutatingWebhookConfiguration":
            for hook in doc["webhooks"]:
                ref = hook["clientConfig"]["service"]
                service = find(docs, "Service", ref["name"])
                assert service["metadata"]["namespace"] == ref["namespace"]
                assert ref["port"] in {p["port"] for p in service["spec"]["ports"]}
        if doc["kind"] == "ClusterRoleBinding":
            for subject in doc["subjects"]:
                assert ("ServiceAccount", subject["namespace"], subject["name"]) in present
    if has_service:
        find(docs, "ConfigMap", "secretsvc-policies")


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# -- hardening ----------------------------------------------------------------------------------------------


def hardening_problems(workload: dict[str, Any]) -> list[str]:
    """What keeps a workload's containers from the hardened profile (empty: none)."""
    spec = workload["spec"]["template"]["spec"]
    pod = spec.get("securityContext", {})
    name = f"{workload['kind']}/{workload['metadata']['name']}"
    problems = []
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        problems.append(f"{name}: host namespaces")
    long_running = workload["kind"] in {"Deployment", "StatefulSet", "DaemonSet"}
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        where = f"{name} container {container['name']}"
        sc = container.get("securityContext", {})
        if not sc.get("runAsNonRoot", pod.get("runAsNonRoot")):
            problems.append(f"{where}: runAsNonRoot")
        if sc.get("runAsUser", pod.get("runAsUser")) in {0, None}:
            problems.append(f"{where}: a numeric non-root runAsUser")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: readOnlyRootFilesystem")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation false")
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        if sc.get("capabilities", {}).get("drop") != ["ALL"] or sc.get("capabilities", {}).get("add"):
            problems.append(f"{where}: capabilities drop [ALL], add none")
        if sc.get("seccompProfile", pod.get("seccompProfile", {})).get("type") != "RuntimeDefault":
            problems.append(f"{where}: seccompProfile RuntimeDefault")
        resources = container.get("resources", {})
        if not {"cpu", "memory"} <= set(resources.get("requests", {})) or "memory" not in resources.get("limits", {}):
            problems.append(f"{where}: cpu and memory requests and a memory limit")
        if long_running and not ("readinessProbe" in container and "livenessProbe" in container):
            problems.append(f"{where}: readiness and liveness probes")
    return problems


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_every_container_is_hardened(name: str) -> None:
    workloads = [w for w, _ in pod_specs(build(name))]
    assert workloads
    assert [p for w in workloads for p in hardening_problems(w)] == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("readOnlyRootFilesystem", False),
        ("allowPrivilegeEscalation", True),
        ("capabilities", {"drop": ["NET_RAW"]}),
        ("privileged", True),
        ("runAsNonRoot", False),
    ],
)
def test_the_hardening_check_catches_a_weakened_container(field: str, value: Any) -> None:
    workload = _statefulset()
    assert hardening_problems(workload) == []
    weakened = copy.deepcopy(workload)
    weakened["spec"]["template"]["spec"]["containers"][0]["securityContext"][field] = value
    if field == "runAsNonRoot":
        weakened["spec"]["template"]["spec"]["securityContext"][field] = value
    assert hardening_problems(weakened)


def test_the_images_run_as_the_users_they_declare() -> None:
    for workload, spec in pod_specs(build("overlays/dev")):
        for container in spec["containers"]:
            user = container.get("securityContext", {}).get("runAsUser", spec["securityContext"]["runAsUser"])
            assert IMAGE_USERS[container["image"].partition(":")[0]] == user, workload["metadata"]["name"]


# -- what each overlay promises -----------------------------------------------------------------------------


def _webhook_args(docs: list[dict[str, Any]]) -> list[str]:
    container = find(docs, "Deployment", "injector-webhook")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    return [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in container["args"]]


@pytest.mark.parametrize("name", ["overlays/dev", "overlays/production", "overlays/postgresql"])
def test_the_webhook_configuration(name: str) -> None:
    docs = build(name)
    hook = find(docs, "MutatingWebhookConfiguration", "secretsvc-injector")["webhooks"][0]
    assert hook["admissionReviewVersions"] == ["v1"] and hook["sideEffects"] == "None"
    assert hook["rules"] == [
        {
            "operations": ["CREATE"],
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "resources": ["pods"],
            "scope": "Namespaced",
        }
    ]
    excluded = next(
        e for e in hook["namespaceSelector"]["matchExpressions"] if e["key"] == "kubernetes.io/metadata.name"
    )
    assert excluded["operator"] == "NotIn" and {"kube-system", NAMESPACE} <= set(excluded["values"])
    timeout = float(next(a for a in _webhook_args(docs) if a.startswith("--timeout=")).partition("=")[2])
    assert timeout + 2 <= hook["timeoutSeconds"] <= 10, "timeoutSeconds must leave room above --timeout"
    replicas = find(docs, "Deployment", "injector-webhook")["spec"]["replicas"]
    if name != "overlays/dev":
        assert hook["failurePolicy"] == "Fail" and replicas >= 2
        mwc = find(docs, "MutatingWebhookConfiguration", "secretsvc-injector")
        assert mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/injector-webhook-tls"
        find(docs, "Certificate", "injector-webhook-tls")
        assert all(
            a.startswith("--agent-image=registry.example/")
            for a in _webhook_args(docs)
            if a.startswith("--agent-image=")
        )
    else:
        assert hook["failurePolicy"] == "Ignore" and replicas == 1
    find(docs, "PodDisruptionBudget", "injector-webhook")
    servers = find(docs, "StatefulSet", "secretsvc")["spec"]["replicas"]
    assert servers == (3 if name == "overlays/postgresql" else 1)  # SQLite: one server


def test_the_webhook_has_no_kubernetes_api_access() -> None:
    docs = build("overlays/production")
    assert find(docs, "ServiceAccount", "injector-webhook").get("automountServiceAccountToken") is False
    webhook = find(docs, "Deployment", "injector-webhook")["spec"]["template"]["spec"]
    assert webhook["automountServiceAccountToken"] is False
    bound = [s for d in docs if d["kind"] in {"RoleBinding", "ClusterRoleBinding"} for s in d["subjects"]]
    assert {(s["namespace"], s["name"]) for s in bound} == {(NAMESPACE, "secretsvc")}
    binding = find(docs, "ClusterRoleBinding", "secretsvc-tokenreview")
    assert binding["roleRef"]["name"] == "system:auth-delegator"


# -- the real programs read the manifests ---------------------------------------------------------------------


def test_the_webhook_accepts_its_deployment_arguments() -> None:
    from injector.cli import build_parser
    from injector.webhook import command

    for name in ("overlays/dev", "overlays/production"):
        args = build_parser().parse_args(["webhook", *_webhook_args(build(name))])
        config = command.build_config(args, command.client_settings(args))
        assert config.agent.service_addr == "secretsvc.secretsvc.svc:8290"
        assert config.agent.ca_configmap == "secretsvc-ca"


def test_the_server_accepts_its_statefulset_arguments(tmp_path: Path) -> None:
    """The StatefulSet's arguments through the server's own parser and configuration loader, with the mounted
    paths moved under tmp_path and real files there: certificates, the passphrase, the policy ConfigMap."""
    from secretsvc.cli import build_parser
    from secretsvc.config import load_config
    from tests.tlskit import make_pki

    docs = build("examples")
    container = find(docs, "StatefulSet", "secretsvc")["spec"]["template"]["spec"]["containers"][0]
    args = [re.sub(r"=/(etc|var)/", lambda m: f"={tmp_path}/{m.group(1)}/", a) for a in container["args"]]
    tls = tmp_path / "etc" / "secretsvc" / "tls"
    pki = make_pki(tmp_path / "pki")
    tls.mkdir(parents=True)
    shutil.copy(pki.server_cert, tls / "tls.crt")
    shutil.copy(pki.server_key, tls / "tls.key")
    policies = tmp_path / "etc" / "secretsvc" / "policies"
    policies.mkdir(parents=True)
    for file, text in find(docs, "ConfigMap", "secretsvc-policies")["data"].items():
        (policies / file).write_text(text)
    flags = vars(build_parser().parse_args(args))
    flags = {k: v for k, v in flags.items() if k not in {"run", "command", "config"}}
    config = load_config(flags, {}, None)
    assert config.tls_cert is not None and config.listen == "0.0.0.0:8290" and not config.allow_non_loopback
    assert config.service_accounts is not None
    assert [str(p) for p in config.policy_paths] == [str(policies)]


def test_the_policy_configmap_loads() -> None:
    data = find(build("examples"), "ConfigMap", "secretsvc-policies")["data"]
    assert set(data) == {"injector-webhook.yaml", "payments.yaml"}
    assert _policy_problems([(k, v.encode()) for k, v in data.items()]) == []


def _example_pods() -> list[tuple[str, dict[str, Any]]]:
    pods = []
    for workload, spec in pod_specs(build("examples")):
        if workload["metadata"]["namespace"] == NAMESPACE:
            continue
        template = workload["spec"]["template"]
        pods.append(
            (
                workload["kind"],
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        **template["metadata"],
                        "generateName": "example-",
                        "namespace": workload["metadata"]["namespace"],
                    },
                    "spec": copy.deepcopy(spec),
                },
            )
        )
    return pods


def test_the_examples_carry_annotations_the_webhook_accepts() -> None:
    annotations = pytest.importorskip(
        "injector.webhook.annotations", reason="the webhook's annotation parser is not there yet"
    )
    from injector.plan import AgentMode

    kinds = {}
    for kind, pod in _example_pods():
        parsed = annotations.parse_annotations(pod["metadata"]["annotations"], "secretsvc.io/")
        assert parsed.problems == () and parsed.notes == (), (kind, parsed.problems, parsed.notes)
        assert parsed.value.inject and parsed.value.files
        kinds[kind] = parsed.value.agent_mode
    assert kinds == {"Deployment": AgentMode.INIT, "Job": AgentMode.NATIVE_SIDECAR}


def test_the_webhook_admits_the_examples_and_the_patched_pods_validate() -> None:
    """The example pods through the webhook's own admission code with the dev overlay's flags (the access check
    is the service's, and no service runs here): admitted, and the patched pods are valid and hardened."""
    pytest.importorskip("injector.webhook.admit", reason="the webhook is not there yet")
    from injector.cli import build_parser
    from injector.webhook import command
    from injector.webhook.admit import AdmissionRequest, Admitter
    from injector.webhook.config import Action
    from tests.admissionkit import apply_patch, validate_pod

    args = build_parser().parse_args(["webhook", *_webhook_args(build("overlays/dev"))])
    config = dataclasses.replace(command.build_config(args, command.client_settings(args)), check_access=Action.OFF)
    admitter = Admitter(config, None)
    for kind, pod in _example_pods():
        decision = admitter.decide(AdmissionRequest("uid-1", pod["metadata"]["namespace"], "CREATE", "/v1/Pod", pod))
        assert decision.allowed and decision.outcome == "injected", (kind, decision.message, decision.warnings)
        assert decision.patch is not None
        patched = apply_patch(pod, decision.patch)
        validate_pod(patched)
        agent = next(c for c in patched["spec"]["initContainers"] if c["name"] == "secretsvc-agent")
        if kind == "Job":
            assert agent["restartPolicy"] == "Always"  # native sidecar: the Job completes
        workload = {"kind": kind, "metadata": {"name": kind.lower()}, "spec": {"template": patched}}
        problems = [p for p in hardening_problems(workload) if "probes" not in p]
        assert problems == [], problems


def test_scripts_are_shell_syntax_clean() -> None:
    for script in (DEPLOY / "scripts").glob("*.sh"):
        assert os.access(script, os.X_OK), f"{script} is not executable"
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr


# -- replicas on PostgreSQL (overlays/postgresql) -----------------------------------------------------------


def _server_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = find(docs, "StatefulSet", "secretsvc")["spec"]["template"]["spec"]["containers"][0]
    return container


def _mounted(docs: list[dict[str, Any]], mount_path: str) -> dict[str, Any]:
    """The volume mounted at `mount_path` in the server's container."""
    spec = find(docs, "StatefulSet", "secretsvc")["spec"]["template"]["spec"]
    name = next(m["name"] for m in _server_container(docs)["volumeMounts"] if m["mountPath"] == mount_path)
    volume: dict[str, Any] = next(v for v in spec["volumes"] if v["name"] == name)
    return volume


def statefulset_replicas(docs: list[dict[str, Any]]) -> int:
    replicas: int = find(docs, "StatefulSet", "secretsvc")["spec"]["replicas"]
    return replicas


def _configmap_data(docs: list[dict[str, Any]], volume: dict[str, Any]) -> dict[str, str]:
    data: dict[str, str] = find(docs, "ConfigMap", volume["configMap"]["name"])["data"]
    return data


def test_the_postgresql_overlay_runs_three_spread_replicas_that_may_be_drained_one_at_a_time() -> None:
    docs = build("overlays/postgresql")
    statefulset = find(docs, "StatefulSet", "secretsvc")
    assert statefulset["spec"]["replicas"] == 3
    # The first replica mints the admin token; the others must start after it.
    assert statefulset["spec"]["podManagementPolicy"] == "OrderedReady"
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    terms = statefulset["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert {t["podAffinityTerm"]["topologyKey"] for t in terms} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    assert all(_selects(t["podAffinityTerm"]["labelSelector"]["matchLabels"], labels) for t in terms)
    budget = find(docs, "PodDisruptionBudget", "secretsvc")
    assert budget["spec"]["maxUnavailable"] == 1 and "minAvailable" not in budget["spec"]
    assert _selects(budget["spec"]["selector"]["matchLabels"], labels)
    egress_ports = {
        p["port"]
        for d in docs
        if d["kind"] == "NetworkPolicy" and _selects(d["spec"]["podSelector"].get("matchLabels", {"-": "-"}), labels)
        for rule in d["spec"].get("egress", [])
        for p in rule.get("ports", [])
    }
    assert {5432, 8200} <= egress_ports


def test_the_postgresql_overlay_is_ready_only_on_grpc_health_serving() -> None:
    docs = build("overlays/postgresql")
    container = _server_container(docs)
    command = container["readinessProbe"]["exec"]["command"]
    assert command[:2] == ["/opt/secretsvc/bin/python", "/etc/secretsvc/probe/grpc_health_probe.py"]
    assert command[2] == "127.0.0.1:" + str(next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc"))
    # The name the probe expects is in the server's certificate, and the CA file is the mounted CA's.
    certificate = find(docs, "Certificate", "secretsvc-tls")
    assert command[3] in certificate["spec"]["dnsNames"]
    assert _mounted(docs, str(Path(command[4]).parent))["configMap"]["name"] == "secretsvc-ca"
    probe = _configmap_data(docs, _mounted(docs, str(Path(command[1]).parent)))
    assert set(probe) == {Path(command[1]).name}
    compile(probe[Path(command[1]).name], command[1], "exec")
    # Readiness above the probe's own 3 s deadline; liveness stays on the port, not on the database.
    assert container["readinessProbe"]["timeoutSeconds"] > 3
    assert "tcpSocket" in container["livenessProbe"]


def test_the_postgresql_overlay_configures_the_server_and_holds_no_credential(tmp_path: Path) -> None:
    """The StatefulSet's arguments and the generated TOML through the server's own parser and configuration
    loader, with every mounted path moved under tmp_path: the store is the PostgreSQL URL, its password comes
    from the mounted Secret's file, and the key-encryption key is the shared Transit key."""
    from secretsvc.cli import build_parser
    from secretsvc.config import load_config
    from tests.tlskit import make_pki

    docs = build("overlays/postgresql")
    container = _server_container(docs)

    def moved(text: str) -> str:
        return re.sub(r"(?<![\w/])/(etc|var)/", lambda m: f"{tmp_path}/{m.group(1)}/", text)

    args = [moved(a) for a in container["args"]]
    config_arg = next(a for a in container["args"] if a.startswith("--config="))
    config_path = Path(config_arg.partition("=")[2])
    toml = _configmap_data(docs, _mounted(docs, str(config_path.parent)))[config_path.name]
    for mount in container["volumeMounts"]:
        Path(moved(mount["mountPath"])).mkdir(parents=True, exist_ok=True)
    Path(moved(str(config_path))).write_text(moved(toml))
    pki = make_pki(tmp_path / "pki")
    shutil.copy(pki.server_cert, Path(moved("/etc/secretsvc/tls/tls.crt")))
    shutil.copy(pki.server_key, Path(moved("/etc/secretsvc/tls/tls.key")))
    password_volume = _mounted(docs, "/etc/secretsvc/store")
    assert password_volume["secret"]["secretName"] == "secretsvc-store"
    generated = "pw-" + os.urandom(12).hex()
    Path(moved("/etc/secretsvc/store/password")).write_text(generated + "\n")
    Path(moved("/etc/secretsvc/vault/token")).write_text("token-" + os.urandom(12).hex() + "\n")
    shutil.copy(pki.ca, Path(moved("/etc/secretsvc/vault/ca.crt")))
    for file, text in find(docs, "ConfigMap", "secretsvc-policies")["data"].items():
        (Path(moved("/etc/secretsvc/policies")) / file).write_text(text)

    flags = vars(build_parser().parse_args(args))
    config_file = flags.pop("config")
    flags = {k: v for k, v in flags.items() if k not in {"run", "command"}}
    config = load_config(flags, {}, config_file)
    assert config.store_config is not None and config.store_config.kind == "postgresql"
    assert config.store_config.password == generated
    assert config.store_config.describe() == "postgresql://secretsvc@postgresql.database.svc:5432/secretsvc"
    assert config.kek is not None and config.kek.backend == "vault-transit"
    assert config.tls_cert is not None and config.listen == "0.0.0.0:8290"
    # The replicas' connections (a pool and a LISTEN connection per worker process) stay within PostgreSQL's
    # default max_connections of 100.
    processes = [int(a.split("=", 1)[1]) for a in container["args"] if a.startswith("--processes=")]
    assert len(processes) == 1, container["args"]
    per_replica = processes[0] * (config.store_config.pool_size + 1)
    assert config.store_config.pool_size < 16 and statefulset_replicas(docs) * per_replica <= 100

    # No password in the URL, the TOML or the environment; no Secret made by the overlay.
    assert "store_password =" not in toml and not re.search(r"postgres(ql)?://[^@/\s]*:[^@/\s]*@", toml)
    assert not any(d["kind"] == "Secret" for d in docs)
    assert not any(
        "password" in e.get("name", "").lower() or "token" in e.get("name", "").lower()
        for e in container.get("env", [])
    )


def test_the_readiness_probe_script_checks_a_real_server(tmp_path: Path, make_server: Any) -> None:
    """The probe from the overlay's ConfigMap, run as the kubelet would, against a real TLS server: SERVING
    exits 0; a wrong certificate name or nothing listening exits 2."""
    import sys

    from tests.tlskit import credentials, make_pki

    docs = build("overlays/postgresql")
    command = _server_container(docs)["readinessProbe"]["exec"]["command"]
    probe = tmp_path / "probe.py"
    probe.write_text(_configmap_data(docs, _mounted(docs, str(Path(command[1]).parent)))[Path(command[1]).name])
    pki = make_pki(tmp_path / "pki")
    server = make_server(
        extra_args=("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)),
        credentials=credentials(pki.ca),
    ).start()

    def run(address: str, name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(probe), address, name, str(pki.ca)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    ok = run(server.addr, "localhost")
    assert ok.returncode == 0, ok.stderr
    wrong_name = run(server.addr, "not-the-server.example")
    assert wrong_name.returncode == 2 and "UNAVAILABLE" in wrong_name.stderr
    server.stop()
    gone = run(server.addr, "localhost")
    assert gone.returncode == 2 and "UNAVAILABLE" in gone.stderr
