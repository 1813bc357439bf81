"""Settings given as flags, environment variables or TOML keys: their value parsers, and the lookup that finds
each one's raw value and where it came from.

A parser takes a string (flag or environment) or a typed TOML value and returns the typed value, or raises
ValueError with a reason that reads after the setting's name ("must be a whole number"). The modules that own
the settings (`config.py`, `auth/serviceaccount_config.py`) turn that reason into a ConfigError naming the
origin, so this module knows no setting and raises nothing of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Parser = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Setting:
    name: str  # TOML key, and the flag name with dashes
    env: str
    parse: Parser  # raises ValueError (or TypeError from a conversion) with a reason
    default: Any
    field: str = ""  # the config field it sets, when that is not `name`
    meaning: str = ""  # help text, where the flags are built from the settings

    def __post_init__(self) -> None:
        if not self.field:
            object.__setattr__(self, "field", self.name)


@dataclass(frozen=True, slots=True)
class Given:
    """A setting's raw value and where it came from: "--flag-name", "ENV_VAR" or "FILE: name"."""

    raw: Any
    origin: str
    from_file: bool


def find_given(settings: Iterable[Setting], flags: Mapping[str, Any], environ: Mapping[str, str],
               from_file: Mapping[str, Any], config_file: Path | None) -> dict[str, Given]:
    """The settings given somewhere, by name: a flag that is not None, else the environment (an empty value
    counts), else the file. Settings given nowhere are absent; their defaults are the caller's."""
    found: dict[str, Given] = {}
    for s in settings:
        if flags.get(s.name) is not None:
            found[s.name] = Given(flags[s.name], f"--{s.name.replace('_', '-')}", from_file=False)
        elif s.env in environ:
            found[s.name] = Given(environ[s.env], s.env, from_file=False)
        elif s.name in from_file:
            found[s.name] = Given(from_file[s.name], f"{config_file}: {s.name}", from_file=True)
    return found


# -- parsers -------------------------------------------------------------------------------------------------


def parse_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be true or false")


def parse_int(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError("must be a whole number")
    return int(value)


def parse_float(value: Any) -> float:
    """A number; a string float() refuses raises its own ValueError, which callers may word as they like."""
    if isinstance(value, bool):
        raise ValueError("must be a number")
    return float(value)


def parse_path(value: Any) -> Path:
    return Path(str(value)).expanduser()


def parse_optional_path(value: Any) -> Path | None:
    """A path, or None for an empty (or blank) string: a setting that may be unset from the environment."""
    text = str(value) if isinstance(value, Path) else parse_str(value).strip()
    return Path(text).expanduser() if text else None


def parse_paths(value: Any) -> tuple[Path, ...]:
    """A list (TOML, repeated flags) or one string of paths separated by ':' (the environment)."""
    items = value.split(os.pathsep) if isinstance(value, str) else list(value)
    return tuple(parse_path(item) for item in items if str(item).strip())


def one_of(*allowed: str, fold_case: bool = False) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = parse_str(value)
        if (text.lower() if fold_case else text) not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return text

    return parse


def bounded(parse: Parser, low: float, high: float) -> Parser:
    """`parse`, then refuse a number outside [low, high] (NaN included)."""

    def check(value: Any) -> Any:
        number = parse(value)
        if not low <= number <= high:
            raise ValueError(f"must be between {low:g} and {high:g}")
        return number

    return check
