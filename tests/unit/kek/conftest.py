"""Real backends for the key-encryption-key tests: one OpenBao dev server and one SoftHSM2 token per test
process (each is slow to start, and SoftHSM's configuration is read once per process)."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.baokit import OpenBao, start_openbao
from tests.hsmkit import SoftHsm, make_softhsm


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    bao = start_openbao(tmp_path_factory.mktemp("openbao"))
    try:
        yield bao
    finally:
        bao.stop()


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    root: Path = tmp_path_factory.mktemp("softhsm")
    hsm = make_softhsm(root, "secretsvc-test", random.Random(2211))
    before = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(hsm.conf)
    try:
        yield hsm
    finally:
        if before is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = before
