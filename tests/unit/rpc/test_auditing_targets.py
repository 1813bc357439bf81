"""Every method the server serves names its resource kind and capability for the audit record."""

from __future__ import annotations

from secretsvc.rpc import auditing
from secretsvc.rpc.server import _SERVICE_NAMES
from secretsvc.v1 import access_pb2, admin_pb2, matching_pb2, policies_pb2, secrets_pb2, tokens_pb2, transit_pb2

_FILES = (access_pb2, admin_pb2, matching_pb2, policies_pb2, secrets_pb2, tokens_pb2, transit_pb2)


def _served_methods() -> list[str]:
    methods = []
    for module in _FILES:
        for service in module.DESCRIPTOR.services_by_name.values():
            if service.full_name in _SERVICE_NAMES:
                methods.extend(f"/{service.full_name}/{m.name}" for m in service.methods)
    return methods


def test_every_served_method_has_an_audit_target() -> None:
    served = _served_methods()
    assert len(served) > 20
    missing = [m for m in served if m not in auditing._TARGETS]
    assert missing == []
    assert set(auditing._TARGETS) <= set(served)  # no entry for a method that no longer exists


def test_every_target_names_a_kind_and_only_put_secret_leaves_its_capability_to_the_service() -> None:
    assert all(t.kind is not None for t in auditing._TARGETS.values())
    open_capability = [m for m, t in auditing._TARGETS.items() if t.capability is None]
    assert open_capability == ["/secretsvc.v1.Secrets/PutSecret"]


def test_only_methods_that_change_nothing_skip_waiting_for_their_record_on_disk() -> None:
    unchanged = {m for m, t in auditing._TARGETS.items() if not t.changes}
    # Every capability that alters stored state keeps its record's fsync before the answer.
    changing_capabilities = {"create", "update", "delete", "destroy", "rotate"}
    assert not [m for m in unchanged if auditing._TARGETS[m].capability in changing_capabilities]
    verbs = ("Get", "List", "Watch", "Encrypt", "Decrypt", "GenerateDataKey", "Rewrap", "Check", "Match", "Explain")
    assert all(m.rsplit("/", 1)[1].startswith(verbs) for m in unchanged), unchanged
    assert "/secretsvc.v1.Secrets/GetSecret" in unchanged and "/secretsvc.v1.Transit/Encrypt" in unchanged
    assert "/secretsvc.v1.Secrets/PutSecret" not in unchanged
    assert auditing._UNKNOWN.changes  # an unknown method is treated as changing
