"""The test backends themselves: a real OpenBao with transit, and a SoftHSM2 token python-pkcs11 can log in to."""

from __future__ import annotations

import base64

import pkcs11

from tests.baokit import OpenBao
from tests.hsmkit import SoftHsm


def test_openbao_dev_server_encrypts_with_transit(openbao: OpenBao) -> None:
    openbao.create_key("fixture-check")
    plaintext = base64.b64encode(b"fixture").decode()
    out = openbao.api("POST", "transit/encrypt/fixture-check", {"plaintext": plaintext})
    data = out["data"]
    assert isinstance(data, dict)
    ciphertext = str(data["ciphertext"])
    assert ciphertext.startswith("vault:v1:")
    back = openbao.api("POST", "transit/decrypt/fixture-check", {"ciphertext": ciphertext})["data"]
    assert isinstance(back, dict)
    assert base64.b64decode(str(back["plaintext"])) == b"fixture"


def test_softhsm_token_accepts_the_pin_from_its_file(softhsm: SoftHsm) -> None:
    lib = pkcs11.lib(softhsm.module)
    token = lib.get_token(token_label=softhsm.token_label)
    pin = softhsm.pin_file.read_text().strip()
    with token.open(user_pin=pin) as session:
        assert list(session.get_objects({pkcs11.Attribute.LABEL: "nothing-here"})) == []
