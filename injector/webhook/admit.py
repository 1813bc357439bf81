"""The decision for one pod: skip, inject (a JSON Patch), or refuse with every problem and how to fix it.

    annotations (annotations.py) -> plan (planner.py) -> checks (checks.py) -> access (access.py) -> patch

Problems found at one step do not hide those of the next when the next can still run, so the author fixes
everything in one round. Warn-only mode admits what would be refused, with the problems as warnings (and
without a patch when the annotations themselves cannot be read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from injector.webhook.access import AccessChecker
from injector.webhook.annotations import parse_annotations
from injector.webhook.checks import run_checks
from injector.webhook.config import Action, WebhookConfig
from injector.webhook.mutate import Patch, already_injected, build_patch
from injector.webhook.planner import plan_injection
from injector.webhook.pod import PodView

MAX_PROBLEMS_SHOWN = 20
MAX_WARNINGS = 20
MAX_WARNING_CHARS = 512


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    uid: str
    namespace: str
    operation: str
    kind: str  # group/version/kind, e.g. "/v1/Pod"
    obj: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    outcome: str  # for the log: ignored, skipped, unchanged, not-requested, injected, refused
    patch: Patch | None = None
    warnings: tuple[str, ...] = ()
    message: str = ""  # why it was refused


def _warnings(items: list[str]) -> tuple[str, ...]:
    shown = [f"secretsvc: {w}"[:MAX_WARNING_CHARS] for w in items[:MAX_WARNINGS]]
    if len(items) > MAX_WARNINGS:
        shown.append(f"secretsvc: {len(items) - MAX_WARNINGS} more warnings not shown")
    return tuple(shown)


def _refusal(pod: PodView, problems: list[str]) -> str:
    shown = problems[:MAX_PROBLEMS_SHOWN]
    more = f"; and {len(problems) - MAX_PROBLEMS_SHOWN} more" if len(problems) > MAX_PROBLEMS_SHOWN else ""
    numbered = "; ".join(f"({i}) {p}" for i, p in enumerate(shown, start=1))
    return f"secretsvc injector: pod {pod.namespace}/{pod.name} cannot get its secrets: {numbered}{more}"


class Admitter:
    def __init__(self, config: WebhookConfig, access: AccessChecker | None) -> None:
        self._config = config
        self._access = access

    def decide(self, request: AdmissionRequest) -> Decision:
        config = self._config
        if request.kind != "/v1/Pod" or request.operation != "CREATE":
            return Decision(True, "ignored")
        pod = PodView(request.obj, request.namespace)
        if request.namespace in config.skip_namespaces:
            parsed_inject = pod.annotations.get(f"{config.prefix}inject")
            notes = [f"namespace {request.namespace} is skipped by the webhook; nothing is injected"] \
                if isinstance(parsed_inject, str) and parsed_inject.lower() == "true" else []
            return Decision(True, "skipped", warnings=_warnings(notes))
        if already_injected(pod, config.prefix):
            return Decision(True, "unchanged")

        parsed = parse_annotations(pod.annotations, config.prefix)
        warnings = list(parsed.notes)
        if parsed.problems:
            return self._refuse(pod, list(parsed.problems), warnings, None)
        if not parsed.value.inject:
            return Decision(True, "not-requested", warnings=_warnings(warnings))

        planned = plan_injection(pod, parsed.value, config.agent, config.prefix)
        if planned.injection is None:
            return self._refuse(pod, list(planned.problems), warnings, None)
        injection = planned.injection
        problems: list[str] = []
        for finding in run_checks(pod, injection.targets, parsed.value.containers is not None, config.checks):
            (problems if finding.action is Action.DENY else warnings).append(f"{finding.check}: {finding.message}")

        if config.check_access is not Action.OFF and self._access is not None:
            report = self._access.check(pod.namespace, pod.service_account, injection.refs, request.uid)
            if report.unavailable is not None:
                if config.service_unavailable is Action.DENY:
                    problems.append(f"access not checked: {report.unavailable}; try again when the service "
                                    "answers")
                else:
                    warnings.append(f"access not checked: {report.unavailable}; the agent checks again when it "
                                    "fetches the secrets")
            target = problems if config.check_access is Action.DENY else warnings
            target.extend(report.problems)

        patch = build_patch(pod, injection, config.agent, config.prefix)
        if problems:
            return self._refuse(pod, problems, warnings, patch)
        return Decision(True, "injected", patch=patch, warnings=_warnings(warnings))

    def _refuse(self, pod: PodView, problems: list[str], warnings: list[str], patch: Patch | None) -> Decision:
        if self._config.warn_only:
            return Decision(True, "warned" if patch is None else "injected-with-warnings", patch=patch,
                            warnings=_warnings([f"would refuse: {p}" for p in problems] + warnings))
        return Decision(False, "refused", warnings=_warnings(warnings), message=_refusal(pod, problems))
