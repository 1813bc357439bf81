"""A real `secretsvc serve` with TLS and mutual TLS, reached by the real CLI and by gRPC stubs.

Here the certificates secure and gate the connection and the calls carry tokens; identities from client
certificates alone are in tests/integration/test_identities.py and, after a real handshake, in
tests/unit/rpc/test_tls.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from secretsvc.v1 import secrets_pb2
from tests.integration.serverproc import ServerProcess, Stubs, cli_command
from tests.tlskit import DevPki, credentials, make_pki

SPIFFE = "spiffe://cluster.local/ns/payments/sa/api"


@pytest.fixture
def dev(tmp_path: Path) -> DevPki:
    return make_pki(tmp_path / "pki")


def _tls_args(cert: Path, key: Path, client_ca: Path | None = None) -> tuple[str, ...]:
    args = ("--tls-cert", str(cert), "--tls-key", str(key))
    return (*args, "--client-ca", str(client_ca)) if client_ca is not None else args


def _env(server: ServerProcess, **tls: Path) -> dict[str, str]:
    names = {"ca": "SECRETSVC_CA_FILE", "cert": "SECRETSVC_CLIENT_CERT", "key": "SECRETSVC_CLIENT_KEY"}
    env = {k: v for k, v in server.cli_env().items() if k not in names.values()}
    return {**env, **{names[k]: str(v) for k, v in tls.items()}}


def test_mutual_tls_with_a_token_through_the_cli(make_server: Callable[..., ServerProcess], dev: DevPki) -> None:
    cert, key = dev.client("api", uris=(SPIFFE,))
    server = make_server(extra_args=_tls_args(dev.server_cert, dev.server_key, dev.ca),
                         credentials=credentials(dev.ca, cert, key)).start()
    assert "TLS on the gRPC listener" in server.log() and '"client_auth": "required"' in server.log()

    put = server.cli("put", "app/db/password", stdin=b"s3cret", env=_env(server, ca=dev.ca, cert=cert, key=key))
    assert put.returncode == 0, put.stderr
    # The same by flags instead of the environment.
    got = server.cli("get", "app/db/password", "--ca-file", str(dev.ca), "--cert", str(cert), "--key", str(key),
                     env=_env(server))
    assert got.returncode == 0, got.stderr
    assert got.stdout == b"s3cret"

    # No client certificate: the handshake fails, and the CLI says where to look.
    refused = server.cli("get", "app/db/password", "--timeout", "5", env=_env(server, ca=dev.ca))
    assert refused.returncode == 1
    assert b"unavailable" in refused.stderr and b"--cert/--key" in refused.stderr
    assert b"s3cret" not in refused.stdout

    # Without a token the certificate identifies the caller, who holds no policy (tests/integration/test_identities.py).
    no_token = {k: v for k, v in _env(server, ca=dev.ca, cert=cert, key=key).items() if k != "SECRETSVC_TOKEN"}
    alone = server.cli("get", "app/db/password", env=no_token)
    assert alone.returncode == 1 and b"permission_denied" in alone.stderr


def test_tls_without_client_certificates(make_server: Callable[..., ServerProcess], dev: DevPki) -> None:
    server = make_server(extra_args=_tls_args(dev.server_cert, dev.server_key),
                         credentials=credentials(dev.ca)).start()
    stubs = Stubs(server)
    try:
        stubs.secrets.PutSecret(secrets_pb2.PutSecretRequest(
            ref=secrets_pb2.SecretRef(namespace="app", path="k"), value=b"v"), metadata=stubs.md, timeout=10)
    finally:
        stubs.close()
    assert server.cli("get", "app/k", env=_env(server, ca=dev.ca)).stdout == b"v"
    # Plaintext (loopback without TLS settings) does not reach a TLS listener.
    plain = server.cli("get", "app/k", "--timeout", "5", env=_env(server))
    assert plain.returncode == 1 and b"unavailable" in plain.stderr


def test_a_rotated_certificate_is_served_without_a_restart(make_server: Callable[..., ServerProcess],
                                                           dev: DevPki, tmp_path: Path) -> None:
    """A Kubernetes-style mount (files -> ..data -> ..<version>) whose ..data symlink is swapped."""
    mount = tmp_path / "mount"
    mount.mkdir()

    def publish(source: DevPki, version: str) -> None:
        (mount / version).mkdir()
        shutil.copy(source.server_cert, mount / version / "tls.crt")
        shutil.copy(source.server_key, mount / version / "tls.key")
        (mount / "..data_tmp").symlink_to(version)
        os.rename(mount / "..data_tmp", mount / "..data")

    publish(dev, "..v1")
    for name in ("tls.crt", "tls.key"):
        (mount / name).symlink_to(Path("..data") / name)
    server = make_server(extra_args=_tls_args(mount / "tls.crt", mount / "tls.key"),
                         credentials=credentials(dev.ca)).start()
    assert server.cli("put", "app/r", stdin=b"1", env=_env(server, ca=dev.ca)).returncode == 0

    new = make_pki(tmp_path / "new-pki")
    publish(new, "..v2")
    deadline = time.monotonic() + 10  # the server looks at the files at most once a second
    while True:
        result = server.cli("get", "app/r", "--timeout", "5", env=_env(server, ca=new.ca))
        if result.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"1"
    assert server.cli("get", "app/r", "--timeout", "5", env=_env(server, ca=dev.ca)).returncode == 1
    assert "TLS certificates reloaded" in server.log()


def _serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cli_command("serve", "--data-dir", str(tmp_path / "data"), "--metrics-listen", "", *args),
                          capture_output=True, timeout=30, check=False)


def test_start_up_refusals(tmp_path: Path, dev: DevPki) -> None:
    other = make_pki(tmp_path / "other")
    cases = [
        (("--client-auth", "optional", *_tls_args(dev.server_cert, dev.server_key, dev.ca)),
         b"--client-auth: client_auth optional is not available"),
        (("--tls-cert", str(dev.server_cert), "--tls-key", str(other.server_key)), b"does not belong"),
        (("--tls-cert", str(dev.server_cert)), b"tls_key is not"),
        (("--listen", "0.0.0.0:8290"), b"not loopback and TLS is not configured"),
    ]
    for args, message in cases:
        result = _serve(tmp_path, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, result.stderr
    env = {**os.environ, "SECRETSVC_TLS_CERT": str(tmp_path / "absent.pem"), "SECRETSVC_TLS_KEY": str(dev.server_key)}
    result = subprocess.run(cli_command("serve", "--data-dir", str(tmp_path / "data")), capture_output=True,
                            timeout=30, check=False, env=env)
    assert result.returncode == 2
    assert b"SECRETSVC_TLS_CERT: tls_cert: cannot read TLS certificate file" in result.stderr
