"""Logging in to Vault/OpenBao and keeping the token alive, for the Transit key-encryption key.

Two ways in: a token (from `VAULT_TOKEN` or a file, re-read when Vault refuses it, so an agent that rotates the
file is followed), or AppRole (role id and secret id from files, logged in again when the token cannot be
renewed). A token with a TTL is renewed once two thirds of it have passed; renewal happens on the call that
notices, under a lock, so no background thread is needed. Tokens are held as `SecretBytes` and never logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac.exceptions

from secretsvc import errors
from secretsvc.boundedio import read_bounded
from secretsvc.crypto.secretbytes import SecretBytes

log = logging.getLogger(__name__)

MAX_CREDENTIAL_FILE_BYTES = 64 * 1024
# Renew when this share of the token's TTL has passed: late enough not to renew on every call, early enough
# that a slow or briefly unreachable Vault still leaves time before expiry.
RENEW_AT_FRACTION = 2 / 3


def read_credential_file(path: Path, what: str) -> SecretBytes:
    """A token, role id or secret id from a file: bounded, surrounding whitespace dropped, never echoed."""
    raw = read_bounded(
        path, MAX_CREDENTIAL_FILE_BYTES, what=what, limit_name="MAX_CREDENTIAL_FILE_BYTES", error=errors.KeyringError
    )
    value = raw.strip()
    if not value:
        raise errors.KeyringError(f"{what} {path} is empty")
    if not value.isascii() or any(c < 0x21 or c > 0x7E for c in value):
        raise errors.KeyringError(f"{what} {path} holds characters a Vault credential cannot have")
    return SecretBytes(value)


@dataclass(frozen=True, slots=True)
class TokenLogin:
    """A static token: from the environment (`token`) or a file (`token_file`, re-read when refused)."""

    token: SecretBytes | None = None
    token_file: Path | None = None

    def login(self, client: Any) -> dict[str, Any] | None:
        token = self.token if self.token_file is None else read_credential_file(self.token_file, "Vault token file")
        if token is None:
            raise errors.KeyringError("no Vault token: set VAULT_TOKEN or --vault-token-file")
        client.token = token.reveal().decode("ascii")
        return None  # the lease is learned from lookup-self

    def describe(self) -> str:
        return "token file" if self.token_file is not None else "token"


@dataclass(frozen=True, slots=True)
class AppRoleLogin:
    role_id_file: Path
    secret_id_file: Path
    mount: str = "approle"

    def login(self, client: Any) -> dict[str, Any] | None:
        role_id = read_credential_file(self.role_id_file, "AppRole role id file")
        secret_id = read_credential_file(self.secret_id_file, "AppRole secret id file")
        out = client.auth.approle.login(
            role_id=role_id.reveal().decode("ascii"),
            secret_id=secret_id.reveal().decode("ascii"),
            mount_point=self.mount,
        )
        auth: dict[str, Any] = out["auth"]
        return auth

    def describe(self) -> str:
        return f"AppRole at auth/{self.mount}"


class VaultTokenKeeper:
    """Holds the client's token valid: logs in on first use, renews past `RENEW_AT_FRACTION` of the TTL, logs in
    again when renewal is refused or Vault says the token is no longer good."""

    def __init__(self, login: TokenLogin | AppRoleLogin, clock: Callable[[], float] = time.monotonic) -> None:
        self._login = login
        self._clock = clock
        self._lock = threading.Lock()
        self._logged_in = False
        self._renew_at: float | None = None  # None: the token does not expire (or is not ours to renew)
        self._renewable = False

    @property
    def method(self) -> str:
        return self._login.describe()

    def ensure(self, client: Any) -> None:
        """Before a call: log in if needed, renew if due. Errors from Vault propagate to the caller's mapping."""
        with self._lock:
            if not self._logged_in:
                self._fresh_login(client)
            elif self._renew_at is not None and self._clock() >= self._renew_at:
                self._renew_or_login(client)

    def refused(self, client: Any) -> None:
        """Vault answered 403 with our token: log in again (re-reading the files) before one retry."""
        with self._lock:
            self._fresh_login(client)

    def _fresh_login(self, client: Any) -> None:
        auth = self._login.login(client)
        if auth is None:
            try:
                auth = client.auth.token.lookup_self()["data"]
            except hvac.exceptions.Forbidden:
                # A token without the default policy may not look itself up: use it as it is, unrenewed.
                auth = {}
            ttl = float(auth.get("ttl") or 0)
        else:
            ttl = float(auth.get("lease_duration") or 0)
        self._renewable = bool(auth.get("renewable"))
        self._schedule(ttl)
        self._logged_in = True
        log.info("logged in to Vault", extra={"method": self._login.describe(), "ttl_seconds": int(ttl)})

    def _renew_or_login(self, client: Any) -> None:
        if self._renewable:
            try:
                auth = client.auth.token.renew_self()["auth"]
                ttl = float(auth.get("lease_duration") or 0)
                # A token at its max TTL renews to less than it had: log in again once that is close.
                if ttl > 0:
                    self._schedule(ttl)
                    return
            except Exception as exc:  # any refusal means: log in again below
                log.warning("Vault token renewal failed; logging in again", extra={"error": type(exc).__name__})
        self._fresh_login(client)

    def _schedule(self, ttl: float) -> None:
        self._renew_at = None if ttl <= 0 else self._clock() + ttl * RENEW_AT_FRACTION
