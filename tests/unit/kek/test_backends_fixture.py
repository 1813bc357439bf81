"""The test backends themselves: a real OpenBao with transit, and a SoftHSM2 token python-pkcs11 can log in to."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

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
    # In a process of its own: login is per process, and other tests in this one may be logged in already.
    script = (
        "import sys, pkcs11\n"
        "token = pkcs11.lib(sys.argv[1]).get_token(token_label=sys.argv[2])\n"
        "with token.open(user_pin=open(sys.argv[3]).read().strip()) as session:\n"
        "    print(len(session.generate_random(64)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, softhsm.module, softhsm.token_label, str(softhsm.pin_file)],
        env={**os.environ, **softhsm.env()},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.stdout.strip() == "8", out.stderr
    assert softhsm.pin_file.stat().st_mode & 0o777 == 0o600
