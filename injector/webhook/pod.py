"""Read-only, type-safe views of the pod in an AdmissionReview: what the planner, the checks and the patch need.

The pod arrives as JSON; the API server has decoded and defaulted it, but a field of an unexpected type must
still read as absent rather than crash the review, so every accessor checks the type it returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class Container:
    name: str
    index: int
    init: bool  # in spec.initContainers
    raw: Mapping[str, Any]

    @property
    def security(self) -> dict[str, Any]:
        return as_dict(self.raw.get("securityContext"))

    @property
    def mount_paths(self) -> list[str]:
        return [m["mountPath"] for m in map(as_dict, as_list(self.raw.get("volumeMounts")))
                if isinstance(m.get("mountPath"), str)]


class PodView:
    def __init__(self, obj: Mapping[str, Any], namespace: str) -> None:
        self.obj = obj
        self.namespace = namespace
        self.metadata = as_dict(obj.get("metadata"))
        self.spec = as_dict(obj.get("spec"))

    @property
    def annotations(self) -> dict[str, Any]:
        return as_dict(self.metadata.get("annotations"))

    @property
    def name(self) -> str:
        """The pod's name, or its generateName with a '*' (pods of a ReplicaSet have no name yet)."""
        name = self.metadata.get("name")
        if isinstance(name, str) and name:
            return name
        generated = self.metadata.get("generateName")
        return f"{generated}*" if isinstance(generated, str) and generated else "<unnamed>"

    @property
    def service_account(self) -> str:
        name = self.spec.get("serviceAccountName")
        return name if isinstance(name, str) and name else "default"

    @property
    def security(self) -> dict[str, Any]:
        return as_dict(self.spec.get("securityContext"))

    def _containers(self, key: str, init: bool) -> list[Container]:
        out = []
        for i, item in enumerate(as_list(self.spec.get(key))):
            raw = as_dict(item)
            name = raw.get("name")
            out.append(Container(name if isinstance(name, str) else "", i, init, raw))
        return out

    @property
    def containers(self) -> list[Container]:
        return self._containers("containers", False)

    @property
    def init_containers(self) -> list[Container]:
        return self._containers("initContainers", True)

    @property
    def all_containers(self) -> list[Container]:
        ephemeral = self._containers("ephemeralContainers", False)
        return self.init_containers + self.containers + ephemeral

    @property
    def volumes(self) -> list[dict[str, Any]]:
        return [as_dict(v) for v in as_list(self.spec.get("volumes"))]

    @property
    def volume_names(self) -> set[str]:
        return {v["name"] for v in self.volumes if isinstance(v.get("name"), str)}

    @property
    def container_names(self) -> set[str]:
        return {c.name for c in self.all_containers}

    def effective(self, container: Container, key: str) -> int | None:
        """A securityContext id (runAsUser, runAsGroup) as the container runs: its own, else the pod's."""
        own = as_int(container.security.get(key))
        return own if own is not None else as_int(self.security.get(key))

    @property
    def fs_group(self) -> int | None:
        return as_int(self.security.get("fsGroup"))

    @property
    def supplemental_groups(self) -> set[int]:
        return {g for g in map(as_int, as_list(self.security.get("supplementalGroups"))) if g is not None}
