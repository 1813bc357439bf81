"""A SoftHSM2 token for the PKCS#11 tests: Debian's `softhsm2`, with its configuration and token directory in a
temporary directory, so tests never touch /etc/softhsm or /var/lib/softhsm.

SoftHSM reads `SOFTHSM2_CONF` once, when the library is initialised, and a process initialises the library at
most once, so one configuration serves a whole test process (`softhsm_conf` sets the variable for it);
tests tell their keys apart by label. A server started as a subprocess gets the variable in its environment.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

# scripts/test.sh sets it: there the backend is installed, and a test that cannot find it fails, never skips.
REQUIRE_ENV = "SECRETSVC_REQUIRE_KEK_BACKENDS"

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
)


def softhsm_module() -> str | None:
    for candidate in MODULE_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return None


def require_softhsm() -> tuple[str, str]:
    """(module path, softhsm2-util path); scripts/test.sh installs softhsm2, so in CI absence fails."""
    module, util = softhsm_module(), shutil.which("softhsm2-util")
    if module is None or util is None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail("softhsm2 is not installed; scripts/test.sh installs it (apt softhsm2)")
        pytest.skip("softhsm2 not installed (apt install softhsm2)")
    return module, util


@dataclass(frozen=True)
class SoftHsm:
    module: str
    conf: Path
    token_label: str
    pin_file: Path
    pin: str
    so_pin: str

    def env(self) -> dict[str, str]:
        """Environment for a subprocess that uses this token."""
        return {"SOFTHSM2_CONF": str(self.conf)}

    def serve_args(self, key_label: str) -> tuple[str, ...]:
        """`secretsvc serve` flags for a key of this token (with `--kek pkcs11`, or `--kek-previous pkcs11`)."""
        return ("--pkcs11-module", self.module, "--pkcs11-token", self.token_label, "--pkcs11-key", key_label,
                "--pkcs11-pin-file", str(self.pin_file))


def make_softhsm(root: Path, token_label: str, rng: random.Random) -> SoftHsm:
    """Write a SoftHSM configuration under `root` and initialise a token there. The PINs are drawn from `rng`
    and the user PIN is written to a 0600 file, the way the service reads it."""
    module, util = require_softhsm()
    tokens = root / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    pin = "".join(rng.choice("0123456789") for _ in range(8))
    so_pin = "".join(rng.choice("0123456789") for _ in range(8))
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    subprocess.run(
        [util, "--init-token", "--free", "--label", token_label, "--pin", pin, "--so-pin", so_pin],
        check=True,
        env=env,
        capture_output=True,
        timeout=60,
    )
    pin_file = root / "pin"
    fd = os.open(pin_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(pin + "\n")
    return SoftHsm(module=module, conf=conf, token_label=token_label, pin_file=pin_file, pin=pin, so_pin=so_pin)
