"""`TransitKek`: a key-encryption key kept in Vault or OpenBao's Transit engine, reached through `hvac`.

The data key is sent to Transit's encrypt endpoint and the ciphertext (`vault:vN:...`) is the wrapped key;
unwrap sends it back to decrypt. The key never leaves Vault.

The envelope's associated data is bound with Transit's `associated_data` (GCM AAD) on an AEAD key
(`aes256-gcm96`, `aes128-gcm96` or `chacha20-poly1305`), not with `context` on a derived key: the bytes are
authenticated exactly as the local keyring authenticates them, an existing non-derived key can be used as is,
and no per-request key derivation is needed. A derived key is refused at start, since we send no context.

Transit key versions are the KEK versions: `vault:v3:` is version 3 and is checked against the envelope's
header. Encrypt names the version explicitly, so a rotation by someone else between `primary_version()` and
`wrap()` cannot produce a ciphertext whose version differs from the header's. Versions below the key's
`min_decryption_version` are not offered by `versions()`, and Transit refuses to decrypt with them.

Failures fall in three kinds: Transit cannot be reached, answers 5xx, is sealed, or refuses our token after a
fresh login -> `KekUnavailable` (UNAVAILABLE with a retry hint; never data loss); the ciphertext does not
authenticate (tampered, other associated data, unknown or retired version) -> `DecryptionFailed`; the key is
missing or of the wrong type -> `KeyringError`. Each call (wrap, unwrap, a batch, rotate, a readiness check)
has one deadline, the configured timeout, covering login, renewal, the retry after a 403 and every request it
makes (`kek/deadline.py`): requests' own timeout is per socket operation, which a slow-dripping server defeats.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import hvac
import hvac.exceptions

from secretsvc import errors
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.kek.base import KeyVersionInfo, WrappedKey
from secretsvc.kek.deadline import DeadlineRunner
from secretsvc.kek.limits import MAX_TRANSIT_TIMEOUT_SECONDS, TRANSIT_TIMEOUT_SECONDS
from secretsvc.kek.vaultauth import AppRoleLogin, TokenLogin, VaultTokenKeeper

log = logging.getLogger(__name__)

KEY_ID_PREFIX = "vault-transit:"
AEAD_KEY_TYPES = frozenset({"aes128-gcm96", "aes256-gcm96", "chacha20-poly1305"})
DEFAULT_TIMEOUT_SECONDS = TRANSIT_TIMEOUT_SECONDS
MAX_TIMEOUT_SECONDS = MAX_TRANSIT_TIMEOUT_SECONDS
# How long key metadata (versions, primary) is trusted before it is read again; `rotate` refreshes at once.
METADATA_TTL_SECONDS = 5.0
MAX_BATCH_ITEMS = 1000
# Items per request: OpenBao and Vault refuse JSON with more than 1000 strings by default
# (max_request_json_strings), and keys count; an encrypt item holds five.
BATCH_REQUEST_ITEMS = 100
MAX_NAME_CHARS = 128
# Transit ciphertexts are "vault:v<N>:<base64>"; OpenBao kept Vault's prefix.
_CIPHERTEXT = re.compile(rb"vault:v([1-9][0-9]{0,9}):[A-Za-z0-9+/]+={0,2}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_MOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-/]*[A-Za-z0-9_.\-]|[A-Za-z0-9]")

# Transient: the server is down, sealed, overloaded or failing; the request may succeed later.
_TRANSIENT = (
    hvac.exceptions.VaultDown,
    hvac.exceptions.InternalServerError,
    hvac.exceptions.BadGateway,
    hvac.exceptions.RateLimitExceeded,
    hvac.exceptions.VaultNotInitialized,
    hvac.exceptions.UnexpectedError,
)
RETRY_AFTER_UNREACHABLE = 1.0
RETRY_AFTER_REFUSED = 5.0
# Requests that may be out at once per key, those abandoned at their deadline included (kek/deadline.py).
MAX_REQUESTS_IN_FLIGHT = 64


class TransitUnreachable(errors.KekUnavailable):
    """Transit gave no usable answer: refused the connection, timed out, is sealed or failing (5xx, 429).
    Unlike a refused token, this is what a Vault that is not up yet looks like, so a server may start without
    it (kek/gate.py)."""


@dataclass(frozen=True, slots=True)
class TransitSettings:
    addr: str  # http(s)://host:port
    key_name: str
    login: TokenLogin | AppRoleLogin
    mount: str = "transit"
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    ca_file: Path | None = None  # None: the system's CA bundle

    def __post_init__(self) -> None:
        if not self.addr.startswith(("http://", "https://")):
            raise errors.ConfigError(f"vault_addr {self.addr!r} must start with http:// or https://")
        if len(self.key_name) > MAX_NAME_CHARS or not _NAME.fullmatch(self.key_name):
            raise errors.ConfigError(f"vault_key {self.key_name!r} is not a Transit key name")
        if len(self.mount) > MAX_NAME_CHARS or not _MOUNT.fullmatch(self.mount):
            raise errors.ConfigError(f"vault_transit_mount {self.mount!r} is not a mount path")
        if not 0 < self.timeout_seconds <= MAX_TIMEOUT_SECONDS:
            raise errors.ConfigError(f"vault_timeout_seconds must be in (0, {MAX_TIMEOUT_SECONDS:g}]")


@dataclass(frozen=True, slots=True)
class _Metadata:
    key_type: str
    latest: int
    min_decryption: int
    created: dict[int, float]
    read_at: float


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class TransitKek:
    """Implements `secretsvc.kek.base.KeyEncryptionKey` over one Transit key."""

    __slots__ = ("_client", "_clock", "_keeper", "_key_id", "_lock", "_meta", "_runner", "_settings")

    def __init__(
        self,
        settings: TransitSettings,
        *,
        client: Any | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Use `open`, which checks the key before anything is wrapped under it.
        self._settings = settings
        verify: bool | str = str(settings.ca_file) if settings.ca_file is not None else True
        self._client = client or hvac.Client(url=settings.addr, timeout=settings.timeout_seconds, verify=verify)
        self._keeper = VaultTokenKeeper(settings.login)
        self._clock = clock
        self._lock = threading.Lock()
        self._meta: _Metadata | None = None
        self._runner = DeadlineRunner(MAX_REQUESTS_IN_FLIGHT, name="vault-transit")
        self._key_id = f"{KEY_ID_PREFIX}{settings.mount}/{settings.key_name}"

    @classmethod
    def open(cls, settings: TransitSettings, *, clock: Callable[[], float] = time.monotonic) -> TransitKek:
        """Log in and read the key; an unreachable Vault raises `KekUnavailable`, a missing or unsuitable key
        `KeyringError`."""
        kek = cls(settings, clock=clock)
        kek._metadata(fresh=True)
        return kek

    @classmethod
    def open_unchecked(cls, settings: TransitSettings, *, clock: Callable[[], float] = time.monotonic) -> TransitKek:
        """The key without reading it: for a server that starts before Vault is up, behind a `StartGate`
        whose check reads it (`check_reachable`) before anything is wrapped."""
        return cls(settings, clock=clock)

    # -- KeyEncryptionKey ------------------------------------------------------------------------------

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def addr(self) -> str:
        return self._settings.addr

    def primary_version(self) -> int:
        return self._metadata().latest

    def versions(self) -> list[KeyVersionInfo]:
        meta = self._metadata()
        return [
            KeyVersionInfo(version, meta.created.get(version, 0.0))
            for version in range(max(1, meta.min_decryption), meta.latest + 1)
        ]

    def wrap(self, data_key: SecretBytes, aad: bytes) -> WrappedKey:
        deadline = self._deadline()
        version = self._metadata(deadline=deadline).latest
        out = self._call(
            "encrypt",
            lambda c: c.secrets.transit.encrypt_data(
                self._settings.key_name,
                plaintext=_b64(data_key.reveal()),
                associated_data=_b64(aad),
                key_version=version,
                mount_point=self._settings.mount,
            ),
            deadline,
        )
        return self._wrapped(out["data"], version)

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> SecretBytes:
        ciphertext = self._check_wrapped(wrapped)
        try:
            out = self._call(
                "decrypt",
                lambda c: c.secrets.transit.decrypt_data(
                    self._settings.key_name,
                    ciphertext=ciphertext,
                    associated_data=_b64(aad),
                    mount_point=self._settings.mount,
                ),
            )
        except hvac.exceptions.InvalidRequest as exc:
            self._refused_decrypt(exc)
        return _plaintext(out["data"])

    def rotate(self) -> int:
        deadline = self._deadline()
        self._call(
            "rotate",
            lambda c: c.secrets.transit.rotate_key(self._settings.key_name, mount_point=self._settings.mount),
            deadline,
        )
        meta = self._metadata(fresh=True, deadline=deadline)
        log.info("Transit key rotated", extra={"key_id": self._key_id, "key_version": meta.latest})
        return meta.latest

    # -- batches: one round trip for many data keys ------------------------------------------------------

    def wrap_many(self, items: Sequence[tuple[SecretBytes, bytes]]) -> list[WrappedKey]:
        """Wrap each (data key, aad) under the primary version with one `batch_input` request."""
        if not items:
            return []
        _check_batch(len(items))
        deadline = self._deadline()
        version = self._metadata(deadline=deadline).latest
        batch = [
            {"plaintext": _b64(key.reveal()), "associated_data": _b64(aad), "key_version": version}
            for key, aad in items
        ]
        results = self._batched("encrypt", batch, deadline)
        wrapped = []
        for result in results:
            if result.get("error"):
                raise errors.KeyringError(f"Transit refused to wrap a data key under {self._key_id}")
            wrapped.append(self._wrapped(result, version))
        return wrapped

    def unwrap_many(self, items: Sequence[tuple[WrappedKey, bytes]]) -> list[SecretBytes | errors.DecryptionFailed]:
        """Unwrap each (wrapped key, aad) with one `batch_input` request; an item that does not authenticate
        comes back as a `DecryptionFailed` in its place, the others as their keys."""
        if not items:
            return []
        _check_batch(len(items))
        results: list[SecretBytes | errors.DecryptionFailed | None] = [None] * len(items)
        batch: list[dict[str, str]] = []
        sent: list[int] = []
        for i, (wrapped, aad) in enumerate(items):
            try:
                ciphertext = self._check_wrapped(wrapped)
            except errors.DecryptionFailed as exc:
                results[i] = exc
                continue
            batch.append({"ciphertext": ciphertext, "associated_data": _b64(aad)})
            sent.append(i)
        if batch:
            for i, result in zip(sent, self._batched("decrypt", batch, self._deadline()), strict=True):
                if result.get("error"):
                    results[i] = errors.DecryptionFailed()
                else:
                    try:
                        results[i] = _plaintext(result)
                    except errors.DecryptionFailed as exc:
                        results[i] = exc
        return [r if r is not None else errors.DecryptionFailed() for r in results]

    # -- readiness -------------------------------------------------------------------------------------

    def check_reachable(self) -> None:
        """Read the key afresh; raises `KekUnavailable` (or `KeyringError`) when Transit cannot serve it."""
        self._metadata(fresh=True)

    @property
    def requests_out(self) -> int:
        """Requests to Transit not yet ended, those abandoned at their deadline included (at most
        MAX_REQUESTS_IN_FLIGHT)."""
        return self._runner.busy

    def describe(self) -> str:
        return f"Vault Transit key {self._settings.mount}/{self._settings.key_name} at {self._settings.addr}"

    def __repr__(self) -> str:
        return f"TransitKek(addr={self._settings.addr!r}, key_id={self._key_id!r}, auth={self._keeper.method!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("TransitKek cannot be pickled")

    # -- internals -------------------------------------------------------------------------------------

    def _batched(self, op: str, batch: list[dict[str, Any]], deadline: float) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for start in range(0, len(batch), BATCH_REQUEST_ITEMS):
            chunk = batch[start : start + BATCH_REQUEST_ITEMS]
            out = self._call(f"{op} (batch)", functools.partial(self._post_batch, op=op, batch=chunk), deadline)
            results.extend(_batch_results(out, len(chunk)))
        return results

    def _post_batch(self, client: Any, op: str, batch: list[dict[str, Any]]) -> Any:
        # Every item's own error is reported in its result, with a 200, instead of one 400 for the whole batch.
        return client.adapter.post(
            f"/v1/{self._settings.mount}/{op}/{self._settings.key_name}",
            json={"batch_input": batch, "partial_failure_response_code": 200},
        )

    def _check_wrapped(self, wrapped: WrappedKey) -> str:
        """The ciphertext to send, after the checks that need no network: our key id, and a version that
        matches the one inside the ciphertext (so a header cannot be made to claim another version)."""
        if wrapped.key_id != self._key_id:
            raise errors.DecryptionFailed()
        match = _CIPHERTEXT.fullmatch(wrapped.blob)
        if match is None or int(match.group(1)) != wrapped.key_version:
            raise errors.DecryptionFailed()
        return wrapped.blob.decode("ascii")

    def _wrapped(self, data: dict[str, Any], version: int) -> WrappedKey:
        text = data.get("ciphertext")
        blob = text.encode("ascii") if isinstance(text, str) else b""
        match = _CIPHERTEXT.fullmatch(blob)
        if match is None or int(match.group(1)) != version:
            raise errors.KeyringError(f"Transit returned an unexpected ciphertext for {self._key_id}")
        return WrappedKey(self._key_id, version, blob)

    def _refused_decrypt(self, exc: hvac.exceptions.InvalidRequest) -> NoReturn:
        detail = " ".join(exc.errors or []).lower()
        if "key not found" in detail:
            raise errors.KeyringError(f"Transit key {self._settings.mount}/{self._settings.key_name} not found")
        # Authentication failure, unknown version, a version below min_decryption_version: all the same.
        raise errors.DecryptionFailed() from None

    def _metadata(self, *, fresh: bool = False, deadline: float | None = None) -> _Metadata:
        with self._lock:
            meta = self._meta
        if meta is not None and not fresh and self._clock() - meta.read_at < METADATA_TTL_SECONDS:
            return meta
        try:
            out = self._call(
                "read key",
                lambda c: c.secrets.transit.read_key(self._settings.key_name, mount_point=self._settings.mount),
                deadline,
            )
        except hvac.exceptions.InvalidPath:
            raise errors.KeyringError(
                f"Transit key {self._settings.key_name!r} not found at mount {self._settings.mount!r} of "
                f"{self._settings.addr}; create it with: bao write -f {self._settings.mount}/keys/"
                f"{self._settings.key_name} type=aes256-gcm96"
            ) from None
        except hvac.exceptions.InvalidRequest as exc:
            raise errors.KeyringError(f"Transit refused to read key {self._settings.key_name!r}: {exc}") from None
        meta = self._parse_metadata(out["data"])
        with self._lock:
            self._meta = meta
        return meta

    def _parse_metadata(self, data: dict[str, Any]) -> _Metadata:
        name = f"{self._settings.mount}/{self._settings.key_name}"
        key_type = str(data.get("type", ""))
        if key_type not in AEAD_KEY_TYPES:
            raise errors.KeyringError(
                f"Transit key {name} is of type {key_type!r}; a key-encryption key needs an AEAD type that "
                f"binds associated data: {', '.join(sorted(AEAD_KEY_TYPES))}"
            )
        if data.get("derived"):
            raise errors.KeyringError(
                f"Transit key {name} is a derived key; secretsvc binds associated data, not a context: use a "
                "key created without derived=true"
            )
        latest, min_dec = data.get("latest_version"), data.get("min_decryption_version", 1)
        if type(latest) is not int or not 1 <= latest <= 2**32 - 1 or type(min_dec) is not int:
            raise errors.KeyringError(f"Transit key {name} reports no usable latest_version")
        created: dict[int, float] = {}
        keys = data.get("keys")
        if isinstance(keys, dict):
            for k, v in keys.items():
                if str(k).isdigit() and isinstance(v, int | float) and not isinstance(v, bool):
                    created[int(k)] = float(v)
        return _Metadata(key_type, latest, max(1, min_dec), created, self._clock())

    def _deadline(self) -> float:
        return time.monotonic() + self._settings.timeout_seconds

    def _call(self, what: str, fn: Callable[[Any], Any], deadline: float | None = None) -> Any:
        """Run one Transit request with a valid token, mapping transport and server failures to
        `KekUnavailable`; the caller waits no later than `deadline` (time.monotonic(), by default the configured
        timeout from now). 4xx answers other than 403 reach the caller as hvac exceptions to interpret."""

        def expired() -> errors.KekUnavailable:
            return self._unreachable(f"{what} got no answer within {self._settings.timeout_seconds:g}s")

        return self._runner.run(
            functools.partial(self._call_now, what, fn), deadline if deadline is not None else self._deadline(), expired
        )

    def _call_now(self, what: str, fn: Callable[[Any], Any]) -> Any:
        for attempt in (1, 2):
            try:
                try:
                    self._keeper.ensure(self._client)
                except hvac.exceptions.VaultError as exc:
                    if isinstance(exc, _TRANSIENT):
                        raise
                    raise self._unavailable(
                        f"cannot log in ({self._keeper.method}): {type(exc).__name__}", RETRY_AFTER_REFUSED
                    ) from None
                return fn(self._client)
            except hvac.exceptions.Forbidden:
                if attempt == 1:
                    # The token may have been revoked or replaced (a new file from an agent): log in again once.
                    with contextlib.suppress(hvac.exceptions.VaultError):
                        self._keeper.refused(self._client)
                    continue
                raise self._unavailable(
                    f"{what} refused: permission denied ({self._keeper.method})", RETRY_AFTER_REFUSED
                ) from None
            except _TRANSIENT as exc:
                raise self._unreachable(f"{what} failed: {type(exc).__name__}") from None
            except OSError as exc:  # requests' connection errors and timeouts derive from OSError
                raise self._unreachable(f"{what} got no answer: {type(exc).__name__}") from None
        raise AssertionError("unreachable")

    def _unavailable(self, what: str, retry: float) -> errors.KekUnavailable:
        message = f"Vault Transit at {self._settings.addr} ({self._key_id}): {what}"
        # Debug only: the interceptor logs each failed call once, with this message; readiness logs the outage.
        log.debug("key-encryption key unavailable", extra={"key_id": self._key_id, "reason": what})
        return errors.KekUnavailable(message, retry_after_seconds=retry)

    def _unreachable(self, what: str) -> TransitUnreachable:
        log.debug("key-encryption key unreachable", extra={"key_id": self._key_id, "reason": what})
        return TransitUnreachable(
            f"Vault Transit at {self._settings.addr} ({self._key_id}): {what}",
            retry_after_seconds=RETRY_AFTER_UNREACHABLE,
        )


def _check_batch(count: int) -> None:
    if count > MAX_BATCH_ITEMS:
        raise errors.LimitExceeded(f"a Transit batch holds at most MAX_BATCH_ITEMS={MAX_BATCH_ITEMS} items")


def _batch_results(out: Any, expected: int) -> list[dict[str, Any]]:
    data = out.get("data") if isinstance(out, dict) else None
    results = data.get("batch_results") if isinstance(data, dict) else None
    if not isinstance(results, list) or len(results) != expected or not all(isinstance(r, dict) for r in results):
        raise errors.KeyringError("Transit answered a batch with the wrong number of results")
    return results


def _plaintext(data: dict[str, Any]) -> SecretBytes:
    text = data.get("plaintext")
    if not isinstance(text, str) or len(text) > 64:
        raise errors.DecryptionFailed()
    try:
        return SecretBytes(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        raise errors.DecryptionFailed() from None
