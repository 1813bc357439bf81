"""HTTP for the registry client: one `httpx.Client` per scan, retries with backoff, errors mapped once.

Every request of a scan goes through one client, so connections are kept alive and reused (HTTP/1.1; a pull
is a sequence of one request at a time, which HTTP/2 would not speed up). A request answered 429, 502, 503
or 504, or that fails to connect or times out, is sent again after an exponential backoff with jitter, or
after the server's `Retry-After` when it gives one (at most `RetryPolicy.max_retry_after_s`), until
`RetryPolicy.attempts` or the request's `RetryPolicy.deadline_s` runs out; then `RegistryUnavailable`.
Other answers map to the project's errors: 401 `Unauthenticated`, 403 `PermissionDenied` (both naming the
registry and repository, never the credentials), 404 `NotFound`, a failed TLS handshake `RegistryTLSError`
(which says so and points to `--insecure-registry`).

Bodies that httpx reads whole are bounded: a request may carry `MAX_BODY` (the limit of its own answer: the
token request does), and any redirect or error answer is cut at `MAX_ERROR_BODY_BYTES`. Manifests and blobs are streamed
through `BodyReader`, bounded by their readers (`stream.read_bounded`, `stream.SizedReader`). Redirects
are followed (blob storage); `Authorization` is dropped when one leads to another host.
"""

from __future__ import annotations

import email.utils
import random
import ssl
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType

import httpx

from secretsvc import errors, netaddr

#: Request extension: the most bytes that request's answer may have (its body is refused past this).
MAX_BODY = "secretsvc.max_body"
#: A redirect or error answer (3xx, 4xx, 5xx) is never read past this many bytes.
MAX_ERROR_BODY_BYTES = 64 * 1024
MAX_REDIRECTS = 5
CONNECT_TIMEOUT_S = 15.0
READ_TIMEOUT_S = 60.0
RETRYABLE_STATUS = frozenset({429, 502, 503, 504})


class RegistryUnavailable(errors.SecretsvcError):
    """The registry (or its token server) cannot answer now: throttled, overloaded or unreachable, still so
    after the retries. Trying again later may work; the request itself is not at fault."""


class RegistryTLSError(errors.InvalidArgument):
    """The TLS handshake with the registry failed (an untrusted or mismatched certificate, or no TLS)."""


class TransientStatus(Exception):
    """Raised inside a request (the auth flow's token fetch) for an answer worth retrying."""

    def __init__(self, status: int, retry_after: float | None, what: str) -> None:
        super().__init__(f"{what} answered HTTP {status}")
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5  # tries of one request in all, the first included
    base_delay_s: float = 0.25  # the first backoff; doubled each time
    max_delay_s: float = 8.0
    max_retry_after_s: float = 30.0  # a longer Retry-After is cut to this
    deadline_s: float = 60.0  # one request, all its tries and waits included

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.deadline_s <= 0 or self.base_delay_s < 0 or self.max_retry_after_s < 0:
            raise errors.InvalidArgument("retry policy: attempts >= 1, a positive deadline, delays >= 0")

    def backoff(self, retry: int, rng: random.Random) -> float:
        """The wait before retry number `retry` (0 for the first): half fixed, half random."""
        full = min(self.max_delay_s, self.base_delay_s * (2**retry))
        return float(full / 2 + rng.uniform(0, full / 2))


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent or bad."""
    if not value or len(value) > 64:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


class _BoundedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, limit: int, what: str) -> None:
        self._inner = inner
        self._limit = limit
        self._what = what

    def __iter__(self) -> Iterator[bytes]:
        seen = 0
        for chunk in self._inner:
            seen += len(chunk)
            if seen > self._limit:
                raise errors.LimitExceeded(f"{self._what} is larger than the limit of {self._limit} bytes")
            yield chunk

    def close(self) -> None:
        self._inner.close()


def _bound_body(response: httpx.Response) -> None:
    """Response hook: cut bodies that httpx reads whole (token answers, redirects, error pages) at a limit."""
    limit = response.request.extensions.get(MAX_BODY)
    if response.status_code >= 300:
        limit = MAX_ERROR_BODY_BYTES if limit is None else min(limit, MAX_ERROR_BODY_BYTES)
    if limit is not None and isinstance(response.stream, httpx.SyncByteStream):
        response.stream = _BoundedStream(response.stream, limit, f"answer from {response.request.url.host}")


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    for _ in range(8):  # httpx wraps httpcore's error, which wraps the ssl module's
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _proxy_for(host: str, scheme: str) -> str | None:
    """The proxy the environment names for this registry, as urllib (and docker) read it; none for loopback."""
    if netaddr.is_loopback(netaddr.host_of(host)):
        return None
    proxies = urllib.request.getproxies()
    if urllib.request.proxy_bypass(netaddr.host_of(host)):
        return None
    return proxies.get(scheme)


class RegistryHttp:
    """GET requests to one registry for one repository, over one kept-alive connection where possible."""

    def __init__(
        self,
        host: str,
        repo: str,
        *,
        tls: bool,
        verify: bool,
        auth: httpx.Auth | None,
        policy: RetryPolicy = RetryPolicy(),
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        plain_fallback: bool = False,
    ) -> None:
        self.host = host
        self.repo = repo
        self._scheme = "https" if tls else "http"
        # --insecure-registry: TLS unverified first, then plain HTTP if the registry does not speak TLS.
        self._plain_fallback = plain_fallback and tls
        self._auth = auth
        self._policy = policy
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._clock = clock
        self._sleep = sleep
        self._verify = verify
        self._client = self._new_client(self._scheme)

    def _new_client(self, scheme: str) -> httpx.Client:
        return httpx.Client(
            verify=self._verify,
            trust_env=False,
            proxy=_proxy_for(self.host, scheme),
            http1=True,
            http2=False,
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
            headers={"Accept-Encoding": "identity", "User-Agent": "secretsvc-scan"},
            event_hooks={"response": [_bound_body]},
        )

    @property
    def base(self) -> str:
        return f"{self._scheme}://{self.host}"

    def get(self, path: str, *, accept: str | None = None) -> httpx.Response:
        """The streamed 2xx answer to GET `path` (the caller closes it); errors as the module says."""
        what = path.rsplit("/", 1)[-1]
        policy = self._policy
        started = self._clock()
        retry = 0
        while True:
            wait: float | None
            try:
                response = self._send(path, accept)
            except TransientStatus as exc:
                status, wait, reason = exc.status, exc.retry_after, str(exc)
            except httpx.TransportError as exc:
                tls = _tls_failure(exc)
                if tls is not None and self._plain_fallback:
                    self._fall_back_to_plain()
                    continue
                if tls is not None:
                    raise RegistryTLSError(
                        f"TLS handshake with registry {self.host} failed ({tls.reason or type(tls).__name__});"
                        " if it uses a self-signed or private certificate, or no TLS, pass --insecure-registry"
                    ) from None
                status, wait, reason = 0, None, f"cannot reach registry {self.host}: {_describe(exc)}"
            else:
                if response.status_code < 300:
                    self._plain_fallback = False  # the scheme works: stay on it
                    return response
                status = response.status_code
                if status not in RETRYABLE_STATUS:
                    _discard(response)
                    raise self._error(status, what) from None
                wait = parse_retry_after(response.headers.get("Retry-After"))
                reason = f"registry {self.host} answered HTTP {status}"
                _discard(response)
            retry += 1
            wait = policy.backoff(retry - 1, self._rng) if wait is None else min(wait, policy.max_retry_after_s)
            spent = self._clock() - started
            if retry >= policy.attempts or spent + wait > policy.deadline_s:
                raise RegistryUnavailable(
                    f"{reason} ({what}), still after {retry} tries in {spent:.1f}s;"
                    " the registry is unavailable or throttling: try again later"
                ) from None
            self._sleep(wait)

    def _send(self, path: str, accept: str | None) -> httpx.Response:
        headers = {"Accept": accept} if accept else {}
        request = self._client.build_request("GET", self.base + path, headers=headers)
        return self._client.send(request, stream=True, auth=self._auth)

    def _fall_back_to_plain(self) -> None:
        self._plain_fallback = False
        self._client.close()
        self._scheme = "http"
        self._client = self._new_client("http")

    def _error(self, status: int, what: str) -> errors.SecretsvcError:
        where = f"registry {self.host}, repository {self.repo}"
        if status == 401:
            return errors.Unauthenticated(
                f"{where}: not authorised (credentials missing or refused; see --creds, --docker-config)"
            )
        if status == 403:
            return errors.PermissionDenied(f"{where}: access denied to these credentials")
        if status == 404:
            return errors.NotFound(f"{self.host}/{self.repo}: not found ({what})")
        if status >= 500:
            return RegistryUnavailable(f"{where} answered HTTP {status} ({what}); try again later")
        return errors.InvalidArgument(f"{where} answered HTTP {status} ({what})")

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RegistryHttp:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _discard(response: httpx.Response) -> None:
    """Read a small error answer to its end, so its connection can be reused, then close it."""
    try:
        response.read()
    except (httpx.HTTPError, errors.LimitExceeded):
        pass
    finally:
        response.close()


def _describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return text[:200]


class BodyReader:
    """A streamed answer as a file: `read(n)` returns n bytes unless the body ends first.

    Transport failures while reading become `RegistryUnavailable` (the walker reports the layer unread).
    """

    def __init__(self, response: httpx.Response, what: str) -> None:
        self._response = response
        self._chunks = response.iter_raw()
        self._what = what
        self._buf = b""
        self._eof = False

    @property
    def headers(self) -> httpx.Headers:
        return self._response.headers

    def read(self, n: int = -1, /) -> bytes:
        parts = [self._buf] if self._buf else []
        have = len(self._buf)
        self._buf = b""
        while not self._eof and (n < 0 or have < n):
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._eof = True
                break
            except httpx.TransportError as exc:
                raise RegistryUnavailable(f"{self._what}: the connection failed mid-read ({_describe(exc)})") from None
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        if n >= 0 and len(data) > n:
            data, self._buf = data[:n], data[n:]
        return data

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> BodyReader:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
