"""Test doubles for Kubernetes service-account authentication: keys, tokens and HTTPS servers, all made at run time.

Nothing here is a literal key or token: keys are generated per test run with `cryptography`, tokens are
signed with them by PyJWT, and the TLS certificates of the loopback servers are issued by a CA made on the spot.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import http.server
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization  # noqa: TID251 - test issuers need key pairs
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: TID251 - and a CA
from cryptography.x509.oid import NameOID

# -- keys and tokens -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestKey:
    """A signing key pair with its JWK, as an issuer holds it."""

    __test__ = False  # not a pytest class

    private: Any
    kid: str | None
    alg: str

    @property
    def public(self) -> Any:
        return self.private.public_key()

    def jwk(self, *, with_alg: bool = True, **extra: Any) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        member: dict[str, Any] = json.loads(algorithm.to_jwk(self.public))
        member["use"] = "sig"
        if self.kid is not None:
            member["kid"] = self.kid
        if with_alg:
            member["alg"] = self.alg
        member.update(extra)
        return member

    def sign(self, claims: Mapping[str, Any], *, headers: Mapping[str, Any] | None = None,
             alg: str | None = None, kid: str | bool | None = True) -> str:
        """A token; `kid=True` puts this key's kid in the header, None or False leaves it out, a str names
        another."""
        header: dict[str, Any] = dict(headers or {})
        if kid is True and self.kid is not None:
            header["kid"] = self.kid
        elif isinstance(kid, str):
            header["kid"] = kid
        return jwt.encode(dict(claims), self.private, algorithm=alg or self.alg, headers=header or None)

    def public_pem(self) -> bytes:
        return bytes(self.public.public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))


def rsa_key(kid: str | None, alg: str = "RS256", bits: int = 2048) -> TestKey:
    return TestKey(rsa.generate_private_key(public_exponent=65537, key_size=bits), kid, alg)


def ec_key(kid: str | None, alg: str = "ES256") -> TestKey:
    curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}[alg]
    return TestKey(ec.generate_private_key(curve), kid, alg)


def kid_of(key: TestKey) -> str:
    """A Kubernetes-style key id: base64url SHA-256 of the DER public key."""
    der = key.public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


def jwks(*keys: TestKey | dict[str, Any]) -> bytes:
    return json.dumps({"keys": [k.jwk() if isinstance(k, TestKey) else k for k in keys]}).encode()


def sa_claims(now: float, *, issuer: str, audience: str | list[str] = "secretsvc", namespace: str = "payments",
              name: str = "api", pod: str | None = "api-7d9f8-xk2lp", lifetime: float = 3600,
              **overrides: Any) -> dict[str, Any]:
    """Claims shaped like a projected token from a kubelet (Kubernetes 1.29+)."""
    k8s: dict[str, Any] = {
        "namespace": namespace,
        "serviceaccount": {"name": name, "uid": "0b5c3f5e-6a0c-4b1d-9d0e-1f2a3b4c5d6e"},
    }
    if pod is not None:
        k8s["pod"] = {"name": pod, "uid": "7e2d1c0b-aaaa-4bbb-8ccc-123456789abc"}
        k8s["node"] = {"name": "node-1", "uid": "11111111-2222-4333-8444-555555555555"}
    claims: dict[str, Any] = {
        "aud": [audience] if isinstance(audience, str) else audience,
        "exp": int(now + lifetime),
        "iat": int(now),
        "nbf": int(now),
        "iss": issuer,
        "jti": "2b9a4d3e-9c1e-4f0a-8b7d-6e5f4a3b2c1d",
        "kubernetes.io": k8s,
        "sub": f"system:serviceaccount:{namespace}:{name}",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def forge(header: Mapping[str, Any], claims: Mapping[str, Any], *, hmac_secret: bytes | None = None,
          signature: bytes = b"") -> str:
    """A token put together by hand, as an attacker would: `alg: none`, or HMAC with any secret."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if hmac_secret is not None:
        signature = hmac.new(hmac_secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


# -- TLS -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # the CA certificate clients trust
    cert: Path  # the server certificate, for 127.0.0.1 and localhost
    key: Path


def make_tls(directory: Path, *, common_name: str = "test cluster CA") -> TlsFiles:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(ca=directory / "ca.pem", cert=directory / "server.pem", key=directory / "server-key.pem")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(server_key.private_bytes(serialization.Encoding.PEM,
                                                   serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
    return files


# -- servers -------------------------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay: float = 0.0  # seconds before answering
    chunked: bool = False  # no Content-Length: the client cannot know the size in advance
    drip: float = 0.0  # seconds between 1-byte writes of the body

    @classmethod
    def json(cls, doc: Any, status: int = 200) -> Response:
        return cls(status=status, body=json.dumps(doc).encode() if not isinstance(doc, bytes) else doc)


Responder = Callable[[Request], Response]


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that refuse our certificate or hang up early are what several tests are about


class FakeHttpsServer:
    """A real HTTP(S) server on 127.0.0.1 answering from `routes` (path -> Response) or a `responder`.

    Every request is recorded in `requests`. Stops on `close()` (or as a context manager).
    """

    def __init__(self, tls: TlsFiles | None, *, responder: Responder | None = None) -> None:
        self.routes: dict[str, Response] = {}
        self.requests: list[Request] = []
        self._responder = responder or self._route
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with outer._lock:
                    outer.requests.append(request)
                response = outer._responder(request)
                if response.delay:
                    time.sleep(response.delay)
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                if response.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for start in range(0, len(response.body), 8192):
                        chunk = response.body[start:start + 8192]
                        try:
                            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        except OSError:
                            return  # the client stopped reading, as it should
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if response.drip:
                    for byte in response.body:
                        try:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                        except OSError:
                            return
                        time.sleep(response.drip)
                    return
                self.wfile.write(response.body)

            do_GET = _handle
            do_POST = _handle

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert, tls.key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True,
                                                      do_handshake_on_connect=False)
        self.scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._server.server_address[1]}"

    def paths(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests]

    def _route(self, request: Request) -> Response:
        return self.routes.get(request.path.split("?", 1)[0], Response(status=404, body=b"{}"))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeHttpsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HungServer:
    """Accepts TCP connections on 127.0.0.1 and never says a word: not even the TLS handshake."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._held: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._socket.getsockname()[1]}"

    def _accept(self) -> None:
        self._socket.settimeout(0.1)
        while not self._closed.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self._socket.close()


def serve_issuer(server: FakeHttpsServer, keys: bytes, *, jwks_path: str = "/openid/v1/jwks",
                 issuer: str | None = None) -> str:
    """Publish a discovery document and a JWKS on `server`, as a Kubernetes API server does; the issuer URL."""
    issuer = issuer or server.url
    server.routes["/.well-known/openid-configuration"] = Response.json({
        "issuer": issuer,
        "jwks_uri": server.url + jwks_path,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    })
    server.routes[jwks_path] = Response(body=keys, headers={"Content-Type": "application/jwk-set+json"})
    return issuer


class FakeClock:
    """A settable clock for both wall time and monotonic time in tests."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
