"""What a Principal may do: policy documents (YAML or JSON), bindings from identities, and decisions.

    from secretsvc.policy import load_paths
    policies = load_paths([Path("/etc/secretsvc/policies")])        # ConfigError naming file:line
    policies.allows(caller, Resource.secret("payments", "db"), "read")   # the service layer's Authorizer
    policies.decide(caller, resource, "read")                        # Decision: which rule and binding

The document format, glob syntax and evaluation order are described in docs/policy.md. Modules: `model`
(values), `nodes` (YAML/JSON with line numbers), `schema` (one document), `link` (documents together),
`glob` (patterns), `engine` (the indexed evaluator), `loader` (files), `identity` (the CLI's text forms),
`combine` (AllOf/AnyOf), `builtin` (the "admin" policy), `limits`.
"""

from __future__ import annotations

from secretsvc.policy.builtin import ADMIN_POLICY
from secretsvc.policy.combine import AllOf, AnyOf
from secretsvc.policy.engine import PolicySet
from secretsvc.policy.loader import CheckResult, Source, check_paths, check_sources, load_paths, load_sources
from secretsvc.policy.model import (
    Binding,
    Capability,
    Decision,
    Document,
    Effect,
    Grant,
    IdentityKind,
    Location,
    Policy,
    Problem,
    ResourceKind,
    Rule,
    RuleRef,
    Target,
)

__all__ = [
    "ADMIN_POLICY",
    "AllOf",
    "AnyOf",
    "Binding",
    "Capability",
    "CheckResult",
    "Decision",
    "Document",
    "Effect",
    "Grant",
    "IdentityKind",
    "Location",
    "Policy",
    "PolicySet",
    "Problem",
    "ResourceKind",
    "Rule",
    "RuleRef",
    "Source",
    "Target",
    "check_paths",
    "check_sources",
    "load_paths",
    "load_sources",
]
