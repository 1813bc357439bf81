"""Small builders for the policy tests: documents from text, principals of each kind, resources."""

from __future__ import annotations

import textwrap

from secretsvc.auth.principal import Principal, PrincipalId
from secretsvc.policy import PolicySet, Problem, Source, Target, check_sources, load_sources
from secretsvc.policy.model import ResourceKind


def policy_set(text: str, source: str = "p.yaml") -> PolicySet:
    return load_sources([Source(source, textwrap.dedent(text).encode())])


def problems(text: str | bytes, source: str = "p.yaml") -> list[Problem]:
    data = text if isinstance(text, bytes) else textwrap.dedent(text).encode()
    result = check_sources([Source(source, data)])
    assert not result.ok, "expected the document to be refused"
    return list(result.problems)


def token(name: str, *policies: str) -> Principal:
    return Principal(PrincipalId(f"token:{name}"), name, "token", policies)


def sa(namespace: str, name: str) -> Principal:
    return Principal(PrincipalId(f"serviceaccount:{namespace}/{name}"), f"{namespace}/{name}", "serviceaccount",
                     namespace=namespace, service_account=name)


def cert(source: str, value: str) -> Principal:
    return Principal(PrincipalId(f"mtls:{source}:{value}"), value, "mtls")


def secret(ref: str) -> Target:
    return Target(ResourceKind.SECRET, ref)


def key(name: str) -> Target:
    return Target(ResourceKind.TRANSIT_KEY, name)


def system(name: str) -> Target:
    return Target(ResourceKind.SYSTEM, name)
