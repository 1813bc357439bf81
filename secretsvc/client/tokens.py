"""Where the bearer token comes from: a fixed value, or a file read again when it changes.

Kubernetes rotates projected service-account tokens by rewriting the mounted file (an atomic symlink swap),
so a long-running client such as the injector's agent must not read its token once. `FileToken` looks at the
file (stat only) at most once per TOKEN_CHECK_INTERVAL_SECONDS and reads it again when it changed; if a
changed file cannot be read or holds no token, the last good token is kept until the file is fixed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from secretsvc.boundedio import read_bounded
from secretsvc.errors import ConfigError

log = logging.getLogger("secretsvc.client")

# Static tokens are short; projected service-account JWTs are a kilobyte or two.
MAX_TOKEN_FILE_BYTES = 16 * 1024
TOKEN_CHECK_INTERVAL_SECONDS = 1.0
MISSING_HINT = ("no token: set SECRETSVC_TOKEN or pass --token-file PATH (or --cert/--key where client "
                "certificates identify callers)")


class TokenSource(Protocol):
    def token(self) -> str:
        """The bearer token for the next call."""
        ...


def _checked(text: str, where: str) -> str:
    token = text.strip()
    if not token:
        raise ConfigError(f"{where} holds no token")
    # A token goes into a header: anything else would fail every call with a confusing transport error.
    if not token.isascii() or not token.isprintable() or " " in token:
        raise ConfigError(f"{where} holds more than one token, or characters a bearer token cannot have")
    return token


class StaticToken:
    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        self._token = _checked(token, "the token")

    def token(self) -> str:
        return self._token

    def __repr__(self) -> str:
        return "StaticToken(<redacted>)"


class FileToken:
    __slots__ = ("_interval", "_lock", "_monotonic", "_next_check", "_path", "_signature", "_token")

    def __init__(self, path: Path, *, monotonic: Callable[[], float] = time.monotonic,
                 interval: float = TOKEN_CHECK_INTERVAL_SECONDS) -> None:
        self._path = path
        self._monotonic = monotonic
        self._interval = interval
        self._lock = threading.Lock()
        self._signature = self._stat()
        self._token = self._read()  # ConfigError: no usable token at all
        self._next_check = monotonic() + interval

    def _stat(self) -> tuple[int, int, int, int] | None:
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _read(self) -> str:
        raw = read_bounded(self._path, MAX_TOKEN_FILE_BYTES, what="token file", limit_name="MAX_TOKEN_FILE_BYTES",
                           error=ConfigError)
        return _checked(raw.decode("utf-8", "replace"), f"token file {self._path}")

    def token(self) -> str:
        with self._lock:
            if self._monotonic() >= self._next_check:
                self._next_check = self._monotonic() + self._interval
                signature = self._stat()
                if signature != self._signature:
                    self._signature = signature
                    try:
                        self._token = self._read()
                    except ConfigError as exc:
                        log.warning("token file changed but was not read; keeping the previous token",
                                    extra={"reason": str(exc)})
            return self._token

    def __repr__(self) -> str:
        return f"FileToken({str(self._path)!r})"


def token_source(token_file: Path | None, environ: Mapping[str, str]) -> TokenSource:
    """--token-file if given, else $SECRETSVC_TOKEN; ConfigError if neither holds a token."""
    if token_file is not None:
        return FileToken(token_file)
    value = environ.get("SECRETSVC_TOKEN", "")
    if not value.strip():
        raise ConfigError(MISSING_HINT)
    return StaticToken(value)
