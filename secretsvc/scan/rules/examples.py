"""Rule examples: templates filled with fake values at check time, so no rule file holds a credential.

    fill('TOKEN="hf_{alnum:34}"', random.Random(7))   # -> 'TOKEN="hf_<34 random letters and digits>"'

Placeholders: `{alnum:N}` `{lower:N}` `{upper:N}` `{digits:N}` `{hex:N}` `{HEX:N}` `{lowernum:N}`
`{uppernum:N}` `{b64:N}` `{b64url:N}` `{base32:N}` (N characters of that alphabet), `{uuid}` (a lowercase v4
UUID), `{gen:NAME}` (a registered generator, secretsvc/scan/rules/generators.py), and `{{` / `}}` for
literal braces. Each placeholder draws a fresh value.
"""

from __future__ import annotations

import random
import re
import string
import uuid
from collections.abc import Callable

from secretsvc.errors import InvalidArgument
from secretsvc.scan.rules import registry

ALPHABETS = {
    "alnum": string.ascii_letters + string.digits,
    "lower": string.ascii_lowercase,
    "upper": string.ascii_uppercase,
    "digits": string.digits,
    "hex": "0123456789abcdef",
    "HEX": "0123456789ABCDEF",
    "lowernum": string.ascii_lowercase + string.digits,
    "uppernum": string.ascii_uppercase + string.digits,
    "b64": string.ascii_letters + string.digits + "+/",
    "b64url": string.ascii_letters + string.digits + "-_",
    "base32": string.ascii_uppercase + "234567",
}
MAX_PLACEHOLDER_CHARS = 8192
MAX_EXAMPLE_CHARS = 65536

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z][A-Za-z0-9]*)(?::([A-Za-z0-9-]+))?\}|[{}]")


def check_template(template: str) -> None:
    """Raise InvalidArgument naming the first placeholder that cannot be filled."""
    if len(template) > MAX_EXAMPLE_CHARS:
        raise InvalidArgument(f"an example is longer than {MAX_EXAMPLE_CHARS} characters")
    for m in _TOKEN.finditer(template):
        _placeholder(m)


def fill(template: str, rng: random.Random) -> str:
    """The template with every placeholder replaced by a fresh fake value drawn from `rng`."""
    check_template(template)
    return _TOKEN.sub(lambda m: _placeholder(m)(rng), template)


def _placeholder(m: re.Match[str]) -> Callable[[random.Random], str]:
    text = m.group(0)
    if text in ("{{", "}}"):
        return lambda _rng: text[0]
    name, arg = m.group(1), m.group(2)
    if name is None:
        raise InvalidArgument(f"a lone {text!r} in an example: write {text * 2!r} for a literal brace")
    if name == "uuid" and arg is None:
        return lambda rng: str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if name == "gen":
        registry.load_builtins()
        gen = registry.GENERATORS.get(arg or "")
        if gen is None:
            known = ", ".join(sorted(registry.GENERATORS))
            raise InvalidArgument(f"unknown generator {{gen:{arg}}} in an example (known: {known})")
        return gen
    alphabet = ALPHABETS.get(name)
    if alphabet is None:
        raise InvalidArgument(f"unknown placeholder {text} in an example (known: {', '.join(ALPHABETS)}, uuid, gen)")
    if arg is None or not arg.isdigit() or not 1 <= int(arg) <= MAX_PLACEHOLDER_CHARS:
        raise InvalidArgument(f"{text}: the length must be a number from 1 to {MAX_PLACEHOLDER_CHARS}")
    n = int(arg)
    return lambda rng: "".join(rng.choice(alphabet) for _ in range(n))
