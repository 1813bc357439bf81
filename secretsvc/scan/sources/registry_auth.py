"""The registry's auth flow, as an `httpx.Auth`: answer a 401 challenge once, then reuse the answer.

A request goes out with what is known to work for its scope (nothing at first). On 401 from the registry:

- `Basic realm=...`: the user's credentials, sent from then on with every request to the registry;
- `Bearer realm=...,service=...,scope=...`: a token fetched from the realm (with the user's credentials as
  basic auth when there are some; anonymous otherwise), kept per scope until it expires;

and the request is sent once more. A second 401 goes back to the caller, which maps it to an error naming
the registry and repository. The realm must be https unless the registry itself may be plain http (loopback
or `--insecure-registry`). Tokens and credentials appear in no message or repr.
"""

from __future__ import annotations

import base64
import re
import time
import urllib.parse
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field

import httpx

from secretsvc import errors, netaddr
from secretsvc.scan.sources.jsondoc import load_json
from secretsvc.scan.sources.registry_http import MAX_BODY, RETRYABLE_STATUS, TransientStatus, parse_retry_after

MAX_CHALLENGE_BYTES = 4096  # a WWW-Authenticate header longer than this is not parsed
MAX_TOKEN_RESPONSE_BYTES = 256 * 1024
MAX_TOKEN_JSON_DEPTH = 8
#: Tokens without `expires_in` live this long (the distribution spec's default).
DEFAULT_TOKEN_TTL_S = 60
#: A token is not sent this close to its expiry.
TOKEN_EXPIRY_MARGIN_S = 5
_PARAM_RE = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')
_REPO_PATH_RE = re.compile(r"^/v2/(.+)/(?:manifests|blobs|tags)/")


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # lower case: "basic" or "bearer"
    params: Mapping[str, str]


def parse_challenge(header: str | None) -> Challenge | None:
    """Parse one WWW-Authenticate challenge (`Bearer realm="...",service="...",scope="..."`)."""
    if not header or len(header) > MAX_CHALLENGE_BYTES:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)) for m in _PARAM_RE.finditer(rest)
    }
    params = {k: re.sub(r"\\(.)", r"\1", v) for k, v in params.items()}
    return Challenge(scheme=scheme.lower(), params=params)


@dataclass(slots=True)
class _Token:
    header: str = field(repr=False)
    expires_at: float


class RegistryAuth(httpx.Auth):
    """Credentials and tokens for one registry host (see the module)."""

    def __init__(
        self,
        host: str,
        repo: str,
        *,
        creds: tuple[str, str] | None,
        plain_ok: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._host = host.lower()
        self._repo = repo
        self._creds = creds
        self._plain_ok = plain_ok
        self._clock = clock
        self._basic_ok = False  # the registry asked for Basic: send it with every request
        self._tokens: dict[str, _Token] = {}  # scope -> token
        self._scope_of: dict[str, str] = {}  # the scope a request path implies -> the scope its challenge named
        self.token_fetches = 0

    def __repr__(self) -> str:
        return f"RegistryAuth(host={self._host!r}, repo={self._repo!r})"

    def _for_registry(self, url: httpx.URL) -> bool:
        return url.netloc.decode("ascii", "replace").lower() == self._host

    def _path_scope(self, url: httpx.URL) -> str:
        m = _REPO_PATH_RE.match(url.path)
        return f"repository:{m.group(1) if m else self._repo}:pull"

    def _known(self, path_scope: str) -> str | None:
        if self._basic_ok:
            return self._basic()
        token = self._tokens.get(self._scope_of.get(path_scope, path_scope))
        if token is not None and self._clock() < token.expires_at:
            return token.header
        return None

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self._for_registry(request.url):
            yield request
            return
        path_scope = self._path_scope(request.url)
        sent = self._known(path_scope)
        if sent is not None:
            request.headers["Authorization"] = sent
        response = yield request
        # After redirects `response.request` may be blob storage's: its 401 is not the registry's challenge.
        if response.status_code != 401 or not self._for_registry(response.request.url):
            return
        challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
        if challenge is None:
            raise errors.Unauthenticated(
                f"registry {self._host} requires authentication for {self._repo} but sent no usable challenge"
            )
        if challenge.scheme == "basic":
            if self._creds is None or sent is not None:
                return  # nothing (more) to offer: the caller reports the 401
            self._basic_ok = True
            request.headers["Authorization"] = self._basic()
        elif challenge.scheme == "bearer":
            scope = challenge.params.get("scope") or path_scope
            token_response = yield self._token_request(challenge, scope)
            request.headers["Authorization"] = self._read_token(token_response, scope)
            self._scope_of[path_scope] = scope
        else:
            raise errors.Unauthenticated(
                f"registry {self._host}: unsupported auth scheme {challenge.scheme[:40]!r} for {self._repo}"
            )
        yield request

    def _basic(self) -> str:
        assert self._creds is not None
        raw = f"{self._creds[0]}:{self._creds[1]}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def _token_request(self, challenge: Challenge, scope: str) -> httpx.Request:
        realm = challenge.params.get("realm", "")
        parts = urllib.parse.urlsplit(realm)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise errors.Unauthenticated(f"registry {self._host}: bad token realm")
        if parts.scheme == "http" and not (self._plain_ok or netaddr.is_loopback(netaddr.host_of(parts.netloc))):
            raise errors.Unauthenticated(f"registry {self._host}: refusing a token realm over plain http")
        params = {"scope": scope}
        if challenge.params.get("service"):
            params["service"] = challenge.params["service"]
        headers = {"Accept": "application/json"}
        if self._creds is not None:
            headers["Authorization"] = self._basic()
        self.token_fetches += 1
        return httpx.Request(
            "GET", realm, params=params, headers=headers, extensions={MAX_BODY: MAX_TOKEN_RESPONSE_BYTES}
        )

    def _read_token(self, response: httpx.Response, scope: str) -> str:
        where = f"token server for {self._host} ({self._repo})"
        status = response.status_code
        if status in RETRYABLE_STATUS:
            raise TransientStatus(status, parse_retry_after(response.headers.get("Retry-After")), where)
        if status in (401, 403):
            raise errors.Unauthenticated(f"{where} refused the credentials (HTTP {status})")
        if status != 200:
            raise errors.Unauthenticated(f"{where} answered HTTP {status}")
        doc = load_json(response.read(), "token response", MAX_TOKEN_JSON_DEPTH)
        token = (doc.get("token") or doc.get("access_token")) if isinstance(doc, Mapping) else None
        if not isinstance(token, str) or not token or not token.isprintable():
            raise errors.Unauthenticated(f"{where} returned no token")
        ttl = doc.get("expires_in") if isinstance(doc, Mapping) else None
        life = ttl if type(ttl) is int and ttl > 0 else DEFAULT_TOKEN_TTL_S
        header = "Bearer " + token
        self._tokens[scope] = _Token(header, self._clock() + max(life - TOKEN_EXPIRY_MARGIN_S, 1))
        return header
