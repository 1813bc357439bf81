"""The webhook's settings, built once by `injector webhook` (command.py) and passed down; no defaults read here
from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

DEFAULT_PREFIX = "secretsvc.io/"
DEFAULT_MOUNT_PATH = "/var/run/secrets/secretsvc"
DEFAULT_TMPFS_SIZE = "4Mi"
DEFAULT_CPU_REQUEST = "10m"
DEFAULT_MEMORY_REQUEST = "16Mi"
DEFAULT_MEMORY_LIMIT = "64Mi"
DEFAULT_AGENT_UID = 65532  # the conventional "nonroot" user, when no file names an owner uid
DEFAULT_TOKEN_AUDIENCE = "secretsvc"  # noqa: S105 - an audience name
DEFAULT_TOKEN_SECONDS = 3600
DEFAULT_ACCESS_TIMEOUT_SECONDS = 2.0
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")


class Action(StrEnum):
    """What a failed check does to the pod."""

    DENY = "deny"  # refuse the pod, saying why
    WARN = "warn"  # admit it, with an AdmissionReview warning (kubectl prints it)
    OFF = "off"  # do not check


@dataclass(frozen=True, slots=True)
class Checks:
    """Misconfiguration checks on pods that ask for secrets (checks.py)."""

    privileged: Action = Action.DENY
    host_namespaces: Action = Action.DENY
    host_path: Action = Action.WARN
    unlisted_readers: Action = Action.WARN


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """How the agent container is built, and how it reaches the service."""

    image: str
    service_addr: str  # as the agent in the pod reaches the service (a cluster DNS name)
    server_name: str | None = None  # the name in the service's certificate, if not the address's host
    ca_configmap: str | None = None  # a ConfigMap in the pod's namespace holding the service's CA bundle
    ca_configmap_key: str = "ca.crt"
    token_audience: str = DEFAULT_TOKEN_AUDIENCE
    token_seconds: int = DEFAULT_TOKEN_SECONDS
    default_uid: int = DEFAULT_AGENT_UID
    cpu_request: str | None = DEFAULT_CPU_REQUEST
    memory_request: str | None = DEFAULT_MEMORY_REQUEST
    cpu_limit: str | None = None
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT
    tmpfs_size: str = DEFAULT_TMPFS_SIZE
    mount_path: str = DEFAULT_MOUNT_PATH
    image_pull_policy: str = "IfNotPresent"


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    agent: AgentSettings
    prefix: str = DEFAULT_PREFIX
    checks: Checks = field(default_factory=Checks)
    check_access: Action = Action.DENY
    # When the service cannot be asked (down, unreachable, too slow): deny the pod, or admit it with a warning.
    # The agent checks again when it fetches, so admitting cannot hand out a secret the policies deny.
    service_unavailable: Action = Action.WARN
    skip_namespaces: frozenset[str] = frozenset(SYSTEM_NAMESPACES)
    warn_only: bool = False  # every refusal becomes a warning; useful while rolling the webhook out
