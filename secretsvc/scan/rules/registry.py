"""The Python parts a rule file may name: validators, detectors and example generators.

A rule in a data file is mostly regular expressions; what a regular expression cannot say (a checksum, a
decoded structure, a context several lines away) is written in Python once and registered here by name, so
rule files stay data and a misspelled name is an error when the file is loaded, not a rule that never fires.

    @validator("crc32-base62")
    def _crc(secret: bytes) -> bool: ...

    @detector("pem-private-key")
    def _pem() -> tuple[Detector, ...]: ...

    @generator("jwt")
    def _jwt(rng: random.Random) -> str: ...
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from typing import TypeVar

from secretsvc.scan.rules.model import Detector

Validator = Callable[[bytes], bool]
DetectorFactory = Callable[[], tuple[Detector, ...]]
Generator = Callable[[random.Random], str]

VALIDATORS: dict[str, Validator] = {}
DETECTORS: dict[str, DetectorFactory] = {}
GENERATORS: dict[str, Generator] = {}

# Modules that register built-in parts when imported.
_BUILTIN_MODULES = (
    "secretsvc.scan.rules.validators",
    "secretsvc.scan.rules.places",
    "secretsvc.scan.rules.generic",
    "secretsvc.scan.rules.configfiles",
    "secretsvc.scan.rules.cmdline",
    "secretsvc.scan.rules.generators",
)

F = TypeVar("F")


def _register(table: dict[str, F], kind: str, name: str) -> Callable[[F], F]:
    def add(fn: F) -> F:
        if name in table:
            raise ValueError(f"{kind} {name!r} is registered twice")
        table[name] = fn
        return fn

    return add


def validator(name: str) -> Callable[[Validator], Validator]:
    return _register(VALIDATORS, "validator", name)


def detector(name: str) -> Callable[[DetectorFactory], DetectorFactory]:
    return _register(DETECTORS, "detector", name)


def generator(name: str) -> Callable[[Generator], Generator]:
    return _register(GENERATORS, "generator", name)


def load_builtins() -> None:
    """Import every module that registers built-in parts (idempotent: Python imports a module once)."""
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
