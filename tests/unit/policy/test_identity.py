"""The text forms `policy explain` takes for identities and resources."""

from __future__ import annotations

import pytest

from secretsvc.errors import InvalidArgument
from secretsvc.policy.engine import binding_identity
from secretsvc.policy.identity import parse_identity, parse_resource
from secretsvc.policy.model import IdentityKind, ResourceKind


@pytest.mark.parametrize(("text", "kind", "name", "policies", "bound_as"), [
    ("token:ci", "token", "ci", (), (IdentityKind.TOKEN, "ci")),
    ("token:ci:deploy,read-only", "token", "ci", ("deploy", "read-only"), (IdentityKind.TOKEN, "ci")),
    ("sa:payments/web", "serviceaccount", "payments/web", (), (IdentityKind.SERVICEACCOUNT, "payments/web")),
    ("serviceaccount:payments/web", "serviceaccount", "payments/web", (),
     (IdentityKind.SERVICEACCOUNT, "payments/web")),
    ("mtls:spiffe://cluster.local/ns/a/sa/b", "mtls", "spiffe://cluster.local/ns/a/sa/b", (),
     (IdentityKind.MTLS_URI, "spiffe://cluster.local/ns/a/sa/b")),
    ("mtls:uri:https://example.com/x", "mtls", "https://example.com/x", (),
     (IdentityKind.MTLS_URI, "https://example.com/x")),
    ("mtls:dns:API.Example.com", "mtls", "api.example.com", (), (IdentityKind.MTLS_DNS, "api.example.com")),
    ("mtls:subject:build agent 7", "mtls", "build agent 7", (), (IdentityKind.MTLS_SUBJECT, "build agent 7")),
])
def test_identities(text: str, kind: str, name: str, policies: tuple[str, ...],
                    bound_as: tuple[IdentityKind, str]) -> None:
    principal = parse_identity(text)
    assert (principal.kind, principal.name, principal.policies) == (kind, name, policies)
    assert binding_identity(principal) == bound_as


@pytest.mark.parametrize("text", [
    "ci", "user:ci", "token:", "token:a b", "token:ci:bad policy", "token:c*", "sa:payments", "sa:a/b/c",
    "sa:Payments/web", "mtls:web", "mtls:dns:a_b", "mtls:uri:no spaces://x", "mtls:subject:",
])
def test_refused_identities(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_identity(text)


@pytest.mark.parametrize(("text", "kind", "name"), [
    ("payments/db/password", ResourceKind.SECRET, "payments/db/password"),
    ("secret:payments/db", ResourceKind.SECRET, "payments/db"),
    ("payments/a:b", ResourceKind.SECRET, "payments/a:b"),  # ':' is allowed in a path
    ("transit:payments-key", ResourceKind.TRANSIT_KEY, "payments-key"),
    ("system:tokens", ResourceKind.SYSTEM, "tokens"),
    ("system:root-key", ResourceKind.SYSTEM, "root-key"),
])
def test_resources(text: str, kind: ResourceKind, name: str) -> None:
    target = parse_resource(text)
    assert (target.kind, target.name) == (kind, name)


@pytest.mark.parametrize("text", [
    "payments", "payments/", "payments/*", "payments/**", "transit:a/b", "system:everything", "file:x",
    "pay@/x", "payments/../x",
])
def test_refused_resources(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_resource(text)
