"""The text forms of identities and resources that `secretsvc policy explain` takes.

IDENTITY                              the Principal it stands for
  token:NAME                          a static token named NAME that carries no policies itself
  token:NAME:P1,P2                    ... made with --policy P1 --policy P2
  sa:NAMESPACE/NAME                   a Kubernetes service account (also serviceaccount:NAMESPACE/NAME)
  mtls:URI                            a client certificate identified by its URI SAN, e.g. mtls:spiffe://cluster.local/ns/a/sa/b
  mtls:uri:URI                        the same, spelled out
  mtls:dns:NAME                       ... by its DNS SAN
  mtls:subject:COMMON-NAME            ... by its subject common name

RESOURCE
  NAMESPACE/PATH                      a secret (also secret:NAMESPACE/PATH)
  transit:NAME                        a transit key
  system:NAME                         a server-wide resource: access-review, policies, root-key, tokens

Names are checked as strictly as the server checks them, so a name the server would refuse is refused here
rather than explained.
"""

from __future__ import annotations

from secretsvc.auth.principal import Principal, PrincipalId
from secretsvc.errors import InvalidArgument
from secretsvc.policy import glob
from secretsvc.policy.model import SYSTEM_RESOURCES, ResourceKind, Target
from secretsvc.policy.schema import check_policy_name

IDENTITY_FORMS = ("token:NAME[:POLICY,...]", "sa:NAMESPACE/NAME", "mtls:URI", "mtls:dns:NAME",
                  "mtls:subject:NAME")
RESOURCE_FORMS = ("NAMESPACE/PATH", "transit:NAME", "system:NAME")


def _name(text: str, syntax: glob.Syntax, what: str) -> str:
    """`text` if it is a valid name of this syntax: a pattern without wildcards that compiles is one."""
    if "*" in text:
        raise InvalidArgument(f"{what} {text[:64]!r} has a '*'; name one identity or resource, not a pattern")
    try:
        glob.compile_glob(text, syntax)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{what} {text[:64]!r}: {exc}") from None
    return text.lower() if syntax.lower_case else text


def parse_identity(text: str) -> Principal:
    kind, sep, rest = text.partition(":")
    if not sep:
        raise InvalidArgument(f"identity {text[:64]!r} is not one of {', '.join(IDENTITY_FORMS)}")
    if kind == "token":
        name, _, listed = rest.partition(":")
        _name(name, glob.TOKEN, "token name")
        policies = tuple(p for p in listed.split(",") if p) if listed else ()
        for policy in policies:
            check_policy_name(policy)
        return Principal(PrincipalId(f"token:{name}"), name, "token", policies)
    if kind in {"sa", "serviceaccount"}:
        _name(rest, glob.SERVICEACCOUNT, "service account")
        namespace, _, account = rest.partition("/")
        return Principal(PrincipalId(f"serviceaccount:{rest}"), rest, "serviceaccount", namespace=namespace,
                         service_account=account)
    if kind == "mtls":
        source, sep, value = rest.partition(":")
        if sep and source in {"uri", "dns", "subject"}:
            pass
        elif "://" in rest:
            source, value = "uri", rest
        else:
            raise InvalidArgument(f"certificate identity {rest[:64]!r}: write mtls:URI (with ://), "
                                  "mtls:dns:NAME or mtls:subject:NAME")
        syntax = {"uri": glob.MTLS_URI, "dns": glob.MTLS_DNS, "subject": glob.MTLS_SUBJECT}[source]
        value = _name(value, syntax, f"certificate {source}")
        return Principal(PrincipalId(f"mtls:{source}:{value}"), value, "mtls")
    raise InvalidArgument(f"identity kind {kind[:64]!r} is not token, sa or mtls ({', '.join(IDENTITY_FORMS)})")


def parse_resource(text: str) -> Target:
    kind, sep, rest = text.partition(":")
    if sep and "/" not in kind:
        if kind == "transit":
            return Target(ResourceKind.TRANSIT_KEY, _name(rest, glob.TRANSIT_KEY, "transit key name"))
        if kind == "system":
            if rest not in SYSTEM_RESOURCES:
                raise InvalidArgument(f"system resource {rest[:64]!r} is not one of {', '.join(SYSTEM_RESOURCES)}")
            return Target(ResourceKind.SYSTEM, rest)
        if kind == "secret":
            text = rest
        else:
            raise InvalidArgument(f"resource {text[:64]!r} is not one of {', '.join(RESOURCE_FORMS)}")
    if "/" not in text:
        raise InvalidArgument(f"secret {text[:64]!r} is not NAMESPACE/PATH (or say transit:NAME, system:NAME)")
    return Target(ResourceKind.SECRET, _name(text, glob.SECRET, "secret"))
