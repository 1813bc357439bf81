"""Which scoped detectors apply to a content, decided by where it came from (its path), not by its bytes.

Three scopes exist:

- `CONFIG_FILE`: an application's configuration file (`.env`, INI, TOML, YAML, `.properties`, `*.conf` ...)
  or an `Env` entry of the image config. There a secret-named key is set on purpose, so a short or
  not very random value (`DB_PASSWORD=summer2024`) is worth reporting; in source code and documentation
  the same text is usually a default, a test value or an example, and only the generic heuristic's
  stricter checks apply. Documentation, test, example and fixture paths (`origin.path_kind`) are never
  config files here.
- `KEYSTORE_FILE`: a file named as a PKCS#12 keystore (`*.p12`, `*.pfx`): a private key and its
  certificate chain, whatever password protects them (a keystore's password is often a default or sits
  beside it). Only the file's first block is in this scope.
- `SECRET_FILE`: a small file whose name says it holds one secret (`*.token`, `api.key`, `*.secret`,
  `.vault-token`, anything under a `secrets/` directory ...): its whole content may be the token, with
  no key naming it. Only the first block of a text file is in this scope (the detector checks the block is
  the whole, small file).

`RuleSet.match(content)` puts a content in the scopes `file_scopes(content)` gives.
"""

from __future__ import annotations

import posixpath
import re

from secretsvc.scan.model import Content, Location
from secretsvc.scan.origin import PathKind, path_kind

CONFIG_FILE = "config-file"
SECRET_FILE = "secret-file"  # noqa: S105 - a scope's name
KEYSTORE_FILE = "keystore-file"
NO_SCOPES: frozenset[str] = frozenset()
ALL_SCOPES = frozenset({CONFIG_FILE, SECRET_FILE, KEYSTORE_FILE})
_KEYSTORE_EXTENSIONS = (".p12", ".pfx")

_CONFIG_EXTENSIONS = frozenset(
    {"env", "ini", "cfg", "conf", "cnf", "toml", "yaml", "yml", "properties", "tfvars", "config", "envrc"}
)
_CONFIG_NAMES = frozenset({".env", ".envrc", "credentials", ".npmrc", ".pypirc", ".boto", ".s3cfg", ".pgpass"})
# `.env.production`, `app.env`, `prod.env.local`
_DOTENV = re.compile(r"(?:^|.*\.)env(?:\.[a-z0-9_-]{1,20})?$")
# The file's name says it holds a secret: `api.key`, `deploy.token`, `.vault-token`, `client_secret`.
_SECRET_NAME = re.compile(
    r"(?:.*[._-])?(?:token|secret|secrets|password|passwd|passphrase|pat|apikey|api[._-]key|key|credentials?)"
)
_SECRET_DIRS = frozenset({"secrets", "secret", "credentials", "tokens"})


def _inner(path: str) -> str:
    """The path that names the file itself: for `outer.jar!inner/x` the member's path."""
    return path.rsplit("!", 1)[-1].lstrip("/")


def is_config_path(path: str) -> bool:
    """A configuration file of the application (by name), not a doc, test, example or fixture path."""
    inner = _inner(path)
    name = posixpath.basename(inner).lower()
    ext = name.rsplit(".", 1)[-1] if "." in name.lstrip(".") else ""
    if not (name in _CONFIG_NAMES or ext in _CONFIG_EXTENSIONS or _DOTENV.fullmatch(name)):
        return False
    return path_kind(path.replace("!", "/")) is PathKind.APPLICATION


def is_secret_file_path(path: str) -> bool:
    """A file whose name (or directory) says it holds one secret."""
    inner = _inner(path).lower()
    parts = inner.split("/")
    if any(part in _SECRET_DIRS for part in parts[:-1]):
        return True
    return _SECRET_NAME.fullmatch(parts[-1].lstrip(".")) is not None


def file_scopes(content: Content) -> frozenset[str]:
    """The scopes `content` is in, for `RuleSet.match(content, scopes=...)`."""
    if content.layer_index is None:
        return frozenset({CONFIG_FILE}) if content.location is Location.CONFIG_ENV else NO_SCOPES
    scopes: set[str] = set()
    if content.offset == 0 and _inner(content.path).lower().endswith(_KEYSTORE_EXTENSIONS):
        scopes.add(KEYSTORE_FILE)  # binary, or text when its first block happens to hold no NUL
    if content.binary:
        return frozenset(scopes)
    if is_config_path(content.path):
        scopes.add(CONFIG_FILE)
    if content.offset == 0 and is_secret_file_path(content.path):
        scopes.add(SECRET_FILE)
    return frozenset(scopes)
