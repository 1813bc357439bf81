"""`Pkcs11Kek`: a key-encryption key inside a PKCS#11 token (an HSM, or SoftHSM2), through `python-pkcs11`.

Each KEK version is an AES-256 secret key object in the token labelled `NAME.v1`, `NAME.v2`, ...: generated
there as sensitive and not extractable, so the key never leaves the token. Wrapping is AES-GCM done by the
token (`CKM_AES_GCM`) with the envelope's associated data as GCM AAD and a 96-bit IV drawn from the token's
generator; the wrapped key is `iv(12) || ciphertext(32) || tag(16)`. The highest version is primary; rotation
generates the next label. PKCS#11 keeps no creation time for a key, so versions report `created_at` 0.

Sessions come from a bounded pool: a PKCS#11 session must not be used by two threads at once, and tokens
limit how many may be open. Calls into the module are also serialized process-wide (`_MODULE_LOCK`, see
there), so today the pool bounds and reuses sessions rather than running calls in parallel. A caller that
cannot get a session within `acquire_timeout_seconds` gets `KekUnavailable`, as does one whose session broke
(device removed, session closed, the token answering CKR_GENERAL_ERROR to anything); the broken session is
dropped and a new one opened on the next call. PKCS#11 calls themselves cannot be interrupted, so that wait
is the only deadline this backend can keep.

A token that fails even on a fresh session may need the module itself started again: SoftHSM, whose storage
went away and came back, answers CKR_GENERAL_ERROR until C_Finalize and C_Initialize. So a readiness check
that fails twice re-initialises the module (`SessionPool.restart_module`); every session opened before is then
void, and each pool drops its idle ones and finds its token again before its next call.

A decrypt that fails is `DecryptionFailed` only when the token is otherwise healthy: some tokens (SoftHSM
among them) answer a GCM tag mismatch with CKR_GENERAL_ERROR, so the session is asked for random bytes before
the failure is blamed on the ciphertext rather than on the device.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pkcs11
import pkcs11.exceptions as p11err
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.mechanisms import GCMParams

from secretsvc import errors
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.kek.base import KeyVersionInfo, WrappedKey
from secretsvc.kek.limits import MAX_PKCS11_POOL_SIZE, PKCS11_POOL_SIZE
from secretsvc.kek.vaultauth import read_credential_file

log = logging.getLogger(__name__)

KEY_ID_PREFIX = "pkcs11:"
IV_BYTES = 12
TAG_BYTES = 16
DATA_KEY_BYTES = 32
WRAPPED_BYTES = IV_BYTES + DATA_KEY_BYTES + TAG_BYTES
DEFAULT_POOL_SIZE = PKCS11_POOL_SIZE
MAX_POOL_SIZE = MAX_PKCS11_POOL_SIZE
DEFAULT_ACQUIRE_TIMEOUT_SECONDS = 5.0
MAX_LABEL_CHARS = 100
MAX_VERSIONS = 10_000
RETRY_AFTER_SECONDS = 2.0
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]*")

# python-pkcs11 initialises the module with C_Initialize(NULL), which by the standard promises the module that
# no two threads call it at once, and modules (SoftHSM among them) then take no locks of their own: concurrent
# calls corrupt its state. So every call into the module, from any KEK in this process, holds this lock.
_MODULE_LOCK = threading.Lock()


@dataclass(slots=True)
class _ModuleState:
    generation: int = 0  # bumped (under _MODULE_LOCK) when the module is re-initialised: older sessions are void


# Process-wide like the module it describes; read and written only under _MODULE_LOCK.
_MODULE_STATE = _ModuleState()

# The device or the session is gone: transient from the caller's point of view.
_BROKEN = (
    p11err.DeviceError,
    p11err.DeviceRemoved,
    p11err.DeviceMemory,
    p11err.TokenNotPresent,
    p11err.TokenNotRecognised,
    p11err.SessionClosed,
    p11err.SessionHandleInvalid,
    p11err.SessionCount,
    p11err.ObjectHandleInvalid,
    p11err.KeyHandleInvalid,
    p11err.UserNotLoggedIn,
    p11err.FunctionCancelled,
    p11err.HostMemory,
)
# What a failing device also answers (SoftHSM with its storage gone): a failure of the token when it escapes a
# call. Not part of _BROKEN, since SoftHSM gives the same answer to a GCM tag mismatch (see `unwrap`).
_FAILED = (*_BROKEN, p11err.GeneralError)


class TokenFailed(errors.KekUnavailable):
    """The token or its session failed during a call (as opposed to no session being free in time)."""


@dataclass(frozen=True, slots=True)
class Pkcs11Settings:
    module: Path  # the vendor's PKCS#11 library (.so)
    token_label: str
    key_label: str  # versions are KEY_LABEL.v1, KEY_LABEL.v2, ...
    pin_file: Path
    pool_size: int = DEFAULT_POOL_SIZE
    acquire_timeout_seconds: float = DEFAULT_ACQUIRE_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        for name in ("token_label", "key_label"):
            value = getattr(self, name)
            if len(value) > MAX_LABEL_CHARS or not _LABEL.fullmatch(value):
                raise errors.ConfigError(f"pkcs11 {name} {value!r} must be 1..{MAX_LABEL_CHARS} of A-Z a-z 0-9 _ . : -")
        if not 1 <= self.pool_size <= MAX_POOL_SIZE:
            raise errors.ConfigError(f"pkcs11 pool size must be 1..{MAX_POOL_SIZE}")
        if not 0 < self.acquire_timeout_seconds <= 120:
            raise errors.ConfigError("pkcs11 session wait must be in (0, 120] seconds")


@dataclass(slots=True)
class _Pooled:
    session: Any
    keys: dict[int, Any] = field(default_factory=dict)  # version -> key handle, valid in this session


class SessionPool:
    """At most `size` sessions, opened on demand and reused; a broken one is closed and forgotten."""

    def __init__(self, lib: Any, token: Any, pin: SecretBytes, size: int, acquire_timeout: float) -> None:
        self._lib = lib
        self._token = token
        self._token_label = str(token.label)
        self._generation = _MODULE_STATE.generation
        self._pin = pin
        self._size = size
        self._timeout = acquire_timeout
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[_Pooled] = []
        self._lock = threading.Lock()
        self.opened = 0  # sessions opened over the pool's life, for tests and logs

    @contextmanager
    def session(self) -> Iterator[_Pooled]:
        started = time.monotonic()
        if not self._slots.acquire(timeout=self._timeout):
            raise self._busy()
        if not _MODULE_LOCK.acquire(timeout=max(0.0, self._timeout - (time.monotonic() - started))):
            self._slots.release()
            raise self._busy()
        try:
            self._follow_module()
            with self._lock:
                pooled = self._idle.pop() if self._idle else None
            if pooled is None:
                pooled = _Pooled(self._open())
            try:
                yield pooled
            except _FAILED:
                self._discard(pooled)
                raise
            except BaseException:
                self._keep(pooled)  # the session is fine; the call failed for its own reasons
                raise
            self._keep(pooled)
        finally:
            _MODULE_LOCK.release()
            self._slots.release()

    def _busy(self) -> errors.KekUnavailable:
        return errors.KekUnavailable(
            f"all {self._size} PKCS#11 sessions stayed busy for {self._timeout:g}s",
            retry_after_seconds=RETRY_AFTER_SECONDS,
        )

    def restart_module(self, *, announce: bool = True) -> None:
        """C_Finalize and C_Initialize: how a module is made to look for a token that failed. Voids every
        session in the process; each pool opens new ones (`_follow_module`)."""
        if not _MODULE_LOCK.acquire(timeout=self._timeout):
            return  # busy: the module is answering someone; the next check tries again
        try:
            try:
                self._lib.reinitialize()
            except p11err.PKCS11Error as exc:
                log.warning("PKCS#11 module re-initialisation failed", extra={"error": type(exc).__name__})
            _MODULE_STATE.generation += 1
            if announce:  # once per outage: readiness re-initialises on every check until the token answers
                log.info("PKCS#11 module re-initialised after a token failure", extra={"token": self._token_label})
        finally:
            _MODULE_LOCK.release()

    def _follow_module(self) -> None:
        """Under _MODULE_LOCK: after a re-initialisation, forget the void sessions and find the token again."""
        if self._generation == _MODULE_STATE.generation:
            return
        with self._lock:
            self._idle = []  # void already; closing them would only fail
        self._token = self._lib.get_token(token_label=self._token_label)  # NoSuchToken: still gone
        self._generation = _MODULE_STATE.generation

    def _keep(self, pooled: _Pooled) -> None:
        with self._lock:
            self._idle.append(pooled)

    def close(self) -> None:
        """Close the idle sessions (those in use are closed by their callers, or when the process ends)."""
        with self._lock:
            idle, self._idle = self._idle, []
        with _MODULE_LOCK:  # C_CloseSession is a call into the module like any other
            for pooled in idle:
                self._discard(pooled)

    def _open(self) -> Any:
        # Login is per application, not per session: the first session logs in, later ones share it.
        try:
            session = self._token.open(user_pin=self._pin.reveal().decode("ascii"), rw=True)
        except p11err.UserAlreadyLoggedIn:
            session = self._token.open(rw=True)
        self.opened += 1
        return session

    @staticmethod
    def _discard(pooled: _Pooled) -> None:
        with contextlib.suppress(p11err.PKCS11Error):  # already gone with the device
            pooled.session.close()


class Pkcs11Kek:
    """Implements `secretsvc.kek.base.KeyEncryptionKey` over AES keys in a PKCS#11 token."""

    __slots__ = ("_failing", "_key_id", "_lock", "_pool", "_settings", "_versions")

    def __init__(self, settings: Pkcs11Settings, pool: SessionPool) -> None:
        # Use `open`.
        self._settings = settings
        self._pool = pool
        self._lock = threading.Lock()
        self._versions: list[int] = []
        self._failing = False  # the last readiness check failed: re-initialising again is not news
        self._key_id = f"{KEY_ID_PREFIX}{settings.token_label}/{settings.key_label}"

    @classmethod
    def open(cls, settings: Pkcs11Settings, *, create: bool = True) -> Pkcs11Kek:
        """Load the module, find the token, log in with the PIN from its file and find the key versions;
        with `create`, generate version 1 in the token when there is none."""
        try:
            with _MODULE_LOCK:
                lib = pkcs11.lib(str(settings.module))
        except (RuntimeError, OSError) as exc:
            raise errors.KeyringError(f"cannot load PKCS#11 module {settings.module}: {exc}") from None
        try:
            with _MODULE_LOCK:
                token = lib.get_token(token_label=settings.token_label)
        except p11err.NoSuchToken:
            raise errors.KeyringError(
                f"no PKCS#11 token labelled {settings.token_label!r} in {settings.module}"
            ) from None
        except p11err.MultipleTokensReturned:
            raise errors.KeyringError(f"more than one PKCS#11 token is labelled {settings.token_label!r}") from None
        pin = read_credential_file(settings.pin_file, "PKCS#11 PIN file")
        pool = SessionPool(lib, token, pin, settings.pool_size, settings.acquire_timeout_seconds)
        kek = cls(settings, pool)
        try:
            kek._rescan()
            if not kek._versions:
                if not create:
                    raise errors.KeyringError(f"the token holds no key labelled {settings.key_label}.v1")
                kek._generate(1)
                log.info("PKCS#11 key generated", extra={"key_id": kek.key_id, "key_version": 1})
        except (p11err.PinIncorrect, p11err.PinInvalid, p11err.PinLenRange):
            raise errors.KeyringError(f"the PIN in {settings.pin_file} is not accepted by the token") from None
        except p11err.PinLocked:
            raise errors.KeyringError(f"the token {settings.token_label!r} has locked its user PIN") from None
        except p11err.PKCS11Error as exc:
            raise errors.KeyringError(f"PKCS#11 token {settings.token_label!r}: {type(exc).__name__}") from None
        return kek

    # -- KeyEncryptionKey ------------------------------------------------------------------------------

    @property
    def key_id(self) -> str:
        return self._key_id

    def primary_version(self) -> int:
        with self._lock:
            return self._versions[-1]

    def versions(self) -> list[KeyVersionInfo]:
        with self._lock:
            return [KeyVersionInfo(v, 0.0) for v in self._versions]

    def wrap(self, data_key: SecretBytes, aad: bytes) -> WrappedKey:
        version = self.primary_version()
        with self._call("wrap") as pooled:
            key = self._key(pooled, version)
            iv = pooled.session.generate_random(IV_BYTES * 8)
            sealed = key.encrypt(data_key.reveal(), mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv, aad))
        blob = bytes(iv) + bytes(sealed)
        if len(blob) != WRAPPED_BYTES:
            raise errors.KeyringError(f"the token returned {len(blob)} bytes for a wrapped key")
        return WrappedKey(self._key_id, version, blob)

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> SecretBytes:
        if wrapped.key_id != self._key_id or len(wrapped.blob) != WRAPPED_BYTES:
            raise errors.DecryptionFailed()
        if not self._knows(wrapped.key_version):
            raise errors.DecryptionFailed()
        iv, sealed = wrapped.blob[:IV_BYTES], wrapped.blob[IV_BYTES:]
        with self._call("unwrap") as pooled:
            key = self._key(pooled, wrapped.key_version)
            try:
                plain = key.decrypt(sealed, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv, aad))
            except _BROKEN:
                raise
            except p11err.PKCS11Error:
                # Ciphertext or device? A device that still answers is blamed for nothing.
                pooled.session.generate_random(64)
                raise errors.DecryptionFailed() from None
        if len(plain) != DATA_KEY_BYTES:
            raise errors.DecryptionFailed()
        return SecretBytes(plain)

    def rotate(self) -> int:
        with self._lock:
            if len(self._versions) >= MAX_VERSIONS:
                raise errors.KeyringError(f"the token already holds MAX_VERSIONS={MAX_VERSIONS} versions")
        self._rescan()  # another server may have rotated since
        version = self.primary_version() + 1
        self._generate(version)
        log.info("PKCS#11 key rotated", extra={"key_id": self._key_id, "key_version": version})
        return version

    # -- readiness and lifecycle -----------------------------------------------------------------------

    def check_reachable(self) -> None:
        """Draw a few random bytes through a pooled session: proves the token is present and logged in. A
        failure is tried once more on a fresh session (the idle ones are dropped); when that fails too, the
        module is re-initialised, which is how it sees a token that has come back, and asked a last time."""
        try:
            self._draw_random()
            self._failing = False
            return
        except TokenFailed:
            self._pool.close()  # the other idle sessions too: the retry opens a fresh one
        try:
            self._draw_random()
        except TokenFailed:
            self._pool.restart_module(announce=not self._failing)
            self._failing = True
            self._draw_random()
        self._failing = False

    def _draw_random(self) -> None:
        with self._call("health check") as pooled:
            pooled.session.generate_random(64)

    def describe(self) -> str:
        return f"PKCS#11 key {self._settings.key_label} in token {self._settings.token_label}"

    def close(self) -> None:
        self._pool.close()

    @property
    def pool(self) -> SessionPool:
        return self._pool

    def __repr__(self) -> str:
        return f"Pkcs11Kek(key_id={self._key_id!r}, versions={len(self._versions)})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("Pkcs11Kek cannot be pickled")

    # -- internals -------------------------------------------------------------------------------------

    @contextmanager
    def _call(self, what: str) -> Iterator[_Pooled]:
        try:
            with self._pool.session() as pooled:
                yield pooled
        except (*_FAILED, p11err.NoSuchToken) as exc:  # NoSuchToken: not found again after a re-initialisation
            # Debug only: the interceptor logs each failed call once; readiness logs the outage.
            log.debug("key-encryption key unavailable", extra={"key_id": self._key_id, "reason": type(exc).__name__})
            raise TokenFailed(
                f"PKCS#11 token {self._settings.token_label!r} failed during {what}: {type(exc).__name__}",
                retry_after_seconds=RETRY_AFTER_SECONDS,
            ) from None

    def _label(self, version: int) -> str:
        return f"{self._settings.key_label}.v{version}"

    def _key(self, pooled: _Pooled, version: int) -> Any:
        key = pooled.keys.get(version)
        if key is None:
            try:
                key = pooled.session.get_key(
                    object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=self._label(version)
                )
            except p11err.NoSuchKey:
                raise errors.DecryptionFailed() from None
            except p11err.MultipleObjectsReturned:
                raise errors.KeyringError(
                    f"the token holds more than one key labelled {self._label(version)}"
                ) from None
            pooled.keys[version] = key
        return key

    def _knows(self, version: int) -> bool:
        with self._lock:
            if version in self._versions:
                return True
        self._rescan()  # rotated by another server sharing the token
        with self._lock:
            return version in self._versions

    def _rescan(self) -> None:
        pattern = re.compile(re.escape(self._settings.key_label) + r"\.v([1-9][0-9]{0,9})")
        found: set[int] = set()
        with self._call("listing keys") as pooled:
            for obj in pooled.session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}):
                match = pattern.fullmatch(str(obj[Attribute.LABEL]))
                if match is None:
                    continue
                version = int(match.group(1))
                if version in found:
                    raise errors.KeyringError(f"the token holds more than one key labelled {self._label(version)}")
                if obj[Attribute.KEY_TYPE] != KeyType.AES or obj[Attribute.VALUE_LEN] != DATA_KEY_BYTES:
                    raise errors.KeyringError(f"{self._label(version)} is not an AES-256 key")
                found.add(version)
        with self._lock:
            self._versions = sorted(found)

    def _generate(self, version: int) -> None:
        template = {
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.PRIVATE: True,
            Attribute.ENCRYPT: True,
            Attribute.DECRYPT: True,
            Attribute.WRAP: False,
            Attribute.UNWRAP: False,
        }
        with self._call("generating a key") as pooled:
            pooled.session.generate_key(KeyType.AES, 256, label=self._label(version), store=True, template=template)
        with self._lock:
            self._versions = sorted({*self._versions, version})
