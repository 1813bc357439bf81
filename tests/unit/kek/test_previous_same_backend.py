"""A previous key of the same backend type as the current one (`kek_previous_*`), on real backends: one
SoftHSM2 key label to another, and one Transit key to another, through `open_configured` and the chain."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from secretsvc import errors
from secretsvc.crypto import envelope
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.kek.base import KeyEncryptionKey
from secretsvc.kek.configured import open_configured
from secretsvc.kek.pkcs11 import Pkcs11Kek, Pkcs11Settings
from secretsvc.kek.settings import KekConfig
from secretsvc.kek.transit import TransitKek, TransitSettings
from secretsvc.kek.vaultauth import TokenLogin
from tests.baokit import OpenBao
from tests.hsmkit import SoftHsm

_labels = itertools.count(1)
CONTEXT = envelope.EnvelopeContext.for_secret("app", "moved", 1)


def _label(stem: str) -> str:
    return f"{stem}-{os.getpid()}-{next(_labels)}"


def _hsm(softhsm: SoftHsm, label: str) -> Pkcs11Settings:
    return Pkcs11Settings(Path(softhsm.module), softhsm.token_label, label, softhsm.pin_file)


def _no_local() -> KeyEncryptionKey:
    raise AssertionError("no local keyring here")


def _no_check(kek: KeyEncryptionKey, where: str) -> None:
    return None


def test_one_hsm_label_to_another(softhsm: SoftHsm) -> None:
    old_label, new_label = _label("old"), _label("new")
    old = Pkcs11Kek.open(_hsm(softhsm, old_label))
    try:
        sealed = envelope.seal(old, b"moved value", CONTEXT)
    finally:
        old.close()
    config = KekConfig(
        backend="pkcs11", previous="pkcs11", pkcs11=_hsm(softhsm, new_label), previous_pkcs11=_hsm(softhsm, old_label)
    )
    opened = open_configured(config, _no_local, _no_check)
    try:
        assert opened.kek.key_id == f"pkcs11:{softhsm.token_label}/{new_label}"
        assert envelope.open_envelope(opened.kek, sealed, CONTEXT).reveal() == b"moved value"
        [moved] = envelope.rewrap_many(opened.kek, [(sealed, CONTEXT)])
        assert isinstance(moved, bytes)
        assert envelope.parse_header(moved).key_id == opened.kek.key_id
        assert envelope.open_envelope(opened.kek, moved, CONTEXT).reveal() == b"moved value"
    finally:
        opened.close()
    alone = Pkcs11Kek.open(_hsm(softhsm, new_label), create=False)
    try:  # the new key alone opens what was moved
        assert envelope.open_envelope(alone, moved, CONTEXT).reveal() == b"moved value"
    finally:
        alone.close()


def test_a_previous_hsm_label_that_finds_no_key_is_refused_not_generated(softhsm: SoftHsm) -> None:
    missing = _label("typo")
    config = KekConfig(
        backend="pkcs11", previous="pkcs11", pkcs11=_hsm(softhsm, _label("new")), previous_pkcs11=_hsm(softhsm, missing)
    )
    with pytest.raises(errors.KeyringError, match=f"no key labelled {missing}.v1"):
        open_configured(config, _no_local, _no_check)


def test_one_transit_key_to_another(openbao: OpenBao) -> None:
    old_name, new_name = _label("old"), _label("new")
    openbao.create_key(old_name)
    openbao.create_key(new_name)
    login = TokenLogin(token=SecretBytes(openbao.root_token.encode()))
    old = TransitKek.open(TransitSettings(openbao.addr, old_name, login))
    sealed = envelope.seal(old, b"moved value", CONTEXT)
    config = KekConfig(
        backend="vault-transit",
        previous="vault-transit",
        transit=TransitSettings(openbao.addr, new_name, login),
        previous_transit=TransitSettings(openbao.addr, old_name, login),
    )
    opened = open_configured(config, _no_local, _no_check)
    try:
        [moved] = envelope.rewrap_many(opened.kek, [(sealed, CONTEXT)])
        assert isinstance(moved, bytes)
        assert envelope.parse_header(moved).key_id == f"vault-transit:transit/{new_name}"
        alone = TransitKek.open(TransitSettings(openbao.addr, new_name, login))
        assert envelope.open_envelope(alone, moved, CONTEXT).reveal() == b"moved value"
    finally:
        opened.close()
