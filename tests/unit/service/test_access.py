"""Every use case asks the authorizer before it touches the store, with the capability the operation needs."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from secretsvc.auth.principal import Principal, PrincipalId
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import NotFound, PermissionDenied
from secretsvc.kek.local import LocalKeyring
from secretsvc.service.access import ROOT_KEY, AdminPolicyOnly, Capability, Resource, require
from secretsvc.service.rootkey import RootKeyService
from secretsvc.service.secrets import SecretService
from secretsvc.service.transit import TransitService
from secretsvc.store.sqlite import SqliteStore
from tests.unit.service.support import ADMIN, ManualClock

NS = "team"
ALICE = Principal(principal_id=PrincipalId("token:alice"), name="alice", kind="token", policies=("app",))


@dataclass
class Grants:
    """An authorizer that allows exactly the (resource, capability) pairs it holds, and records each question."""

    allowed: set[tuple[Resource, Capability]] = field(default_factory=set)
    asked: list[tuple[Resource, Capability]] = field(default_factory=list)

    def allows(self, caller: Principal, resource: Resource, capability: Capability) -> bool:
        self.asked.append((resource, capability))
        return caller is ADMIN or (resource, capability) in self.allowed

    def grant(self, resource: Resource, *capabilities: Capability) -> None:
        self.allowed.update((resource, c) for c in capabilities)


@pytest.fixture
def grants() -> Grants:
    return Grants()


@pytest.fixture
def svc(store: SqliteStore, keyring: LocalKeyring, clock: ManualClock, grants: Grants) -> SecretService:
    return SecretService(store, keyring, clock, grants)


@pytest.fixture
def transit_svc(store: SqliteStore, keyring: LocalKeyring, clock: ManualClock, grants: Grants) -> TransitService:
    return TransitService(store, keyring, clock, grants)


def _secret(path: str) -> Resource:
    return Resource.secret(NS, path)


def test_the_admin_policy_allows_everything_and_nothing_else_does() -> None:
    authz = AdminPolicyOnly()
    nobody = Principal(principal_id=PrincipalId("token:n"), name="n", kind="token", policies=())
    for capability in Capability:
        assert authz.allows(ADMIN, _secret("p"), capability)
        assert not authz.allows(ALICE, _secret("p"), capability)
        assert not authz.allows(nobody, ROOT_KEY, capability)
    with pytest.raises(PermissionDenied, match="token:alice may not read secret team/p"):
        require(authz, ALICE, _secret("p"), Capability.READ)


def test_put_needs_create_for_a_new_secret_and_update_for_an_existing_one(svc: SecretService,
                                                                          grants: Grants) -> None:
    value = SecretBytes(random.Random(1).randbytes(16))
    with pytest.raises(PermissionDenied, match="may not create secret team/p") as refused:
        svc.put(ALICE, NS, "p", value)
    assert refused.value.capability == Capability.CREATE
    grants.grant(_secret("p"), Capability.CREATE)
    created = svc.put(ALICE, NS, "p", value)
    assert (created.version, created.capability) == (1, Capability.CREATE)
    with pytest.raises(PermissionDenied, match="may not update secret team/p") as refused:
        svc.put(ALICE, NS, "p", value)
    assert refused.value.capability == Capability.UPDATE
    grants.allowed.clear()
    with pytest.raises(PermissionDenied, match="may not update secret team/p"):
        svc.put(ALICE, NS, "p", value)  # neither granted: the refusal names what this put would have needed
    grants.allowed.clear()
    grants.grant(_secret("p"), Capability.UPDATE)
    updated = svc.put(ALICE, NS, "p", value)
    assert (updated.version, updated.capability) == (2, Capability.UPDATE)
    grants.grant(_secret("q"), Capability.UPDATE)
    with pytest.raises(PermissionDenied, match="may not create secret team/q"):
        svc.put(ALICE, NS, "q", value)


def test_each_secret_operation_asks_for_its_capability(svc: SecretService, grants: Grants) -> None:
    svc.put(ADMIN, NS, "p", SecretBytes(b"v1"))
    calls = [
        (Capability.READ, lambda: svc.get(ALICE, NS, "p")),
        (Capability.READ, lambda: svc.metadata(ALICE, NS, "p")),
        (Capability.UPDATE, lambda: svc.update_metadata(ALICE, NS, "p", max_versions=5)),
        (Capability.DELETE, lambda: svc.delete_versions(ALICE, NS, "p", [1])),
        (Capability.DELETE, lambda: svc.undelete_versions(ALICE, NS, "p", [1])),
        (Capability.DESTROY, lambda: svc.destroy_versions(ALICE, NS, "p", [1])),
        (Capability.DESTROY, lambda: svc.delete_secret(ALICE, NS, "p")),
    ]
    for capability, call in calls:
        with pytest.raises(PermissionDenied, match=f"may not {capability.value} secret team/p"):
            call()
        grants.grant(_secret("p"), capability)
        call()
        grants.allowed.clear()


def test_a_refusal_does_not_say_whether_the_secret_exists(svc: SecretService) -> None:
    with pytest.raises(PermissionDenied):
        svc.get(ALICE, NS, "never-written")
    with pytest.raises(NotFound):
        svc.get(ADMIN, NS, "never-written")


def test_listing_shows_only_what_the_caller_may_list(svc: SecretService, grants: Grants) -> None:
    for path in ("a/1", "a/2", "b/1"):
        svc.put(ADMIN, NS, path, SecretBytes(b"v"))
    assert svc.list_paths(ALICE, NS).paths == []
    grants.grant(_secret("a/2"), Capability.LIST)
    grants.grant(_secret("b/1"), Capability.READ)  # read alone does not make a path listed
    assert svc.list_paths(ALICE, NS).paths == ["a/2"]
    assert svc.list_paths(ADMIN, NS).paths == ["a/1", "a/2", "b/1"]


def test_transit_operations_ask_for_their_capability(transit_svc: TransitService, grants: Grants) -> None:
    key = Resource.transit_key("orders")
    with pytest.raises(PermissionDenied, match="may not create transit_key orders"):
        transit_svc.create_key(ALICE, "orders")
    grants.grant(key, Capability.CREATE)
    transit_svc.create_key(ALICE, "orders")
    sealed = transit_svc.encrypt(ADMIN, "orders", b"data")
    calls = [
        (Capability.READ, lambda: transit_svc.key_info(ALICE, "orders")),
        (Capability.ENCRYPT, lambda: transit_svc.encrypt(ALICE, "orders", b"x")),
        (Capability.ENCRYPT, lambda: transit_svc.encrypt_batch(ALICE, "orders", [(b"x", b"")])),
        (Capability.ENCRYPT, lambda: transit_svc.generate_data_key(ALICE, "orders", include_plaintext=False)),
        (Capability.DECRYPT, lambda: transit_svc.decrypt(ALICE, "orders", sealed.ciphertext)),
        (Capability.DECRYPT, lambda: transit_svc.decrypt_batch(ALICE, "orders", [(sealed.ciphertext, b"")])),
        (Capability.REWRAP, lambda: transit_svc.rewrap(ALICE, "orders", sealed.ciphertext)),
        (Capability.ROTATE, lambda: transit_svc.rotate_key(ALICE, "orders")),
        (Capability.UPDATE, lambda: transit_svc.set_min_decryption_version(ALICE, "orders", 1)),
    ]
    for capability, call in calls:
        grants.allowed.clear()
        with pytest.raises(PermissionDenied, match=f"may not {capability.value} transit_key orders"):
            call()
        grants.grant(key, capability)
        call()
    grants.allowed.clear()
    transit_svc.create_key(ADMIN, "billing")
    grants.grant(Resource.transit_key("billing"), Capability.LIST)
    assert transit_svc.list_keys(ALICE) == ["billing"]


def test_root_key_operations_need_admin(store: SqliteStore, keyring: LocalKeyring, grants: Grants) -> None:
    rootkey = RootKeyService(store, keyring, grants)
    for call in (lambda: rootkey.info(ALICE), lambda: rootkey.rotate(ALICE),
                 lambda: rootkey.rewrap_stored(ALICE)):
        with pytest.raises(PermissionDenied, match="may not admin system root-key"):
            call()
    grants.grant(ROOT_KEY, Capability.ADMIN)
    assert rootkey.rotate(ALICE).primary_version == 2
    assert list(rootkey.rewrap_stored(ALICE))[-1].done
