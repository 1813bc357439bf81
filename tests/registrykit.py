"""A real `docker-registry` (distribution) on loopback for tests and benchmarks, and skopeo to push to it.

`start_registry` runs one with no auth, htpasswd basic auth, or token auth (`TokenAuthConfig`: the registry
verifies JWTs signed by a key whose certificate chains to the given root, as it would behind a real token
service). The bcrypt line for htpasswd is made with the `bcrypt` package when installed, else with Python's
`crypt`, which libxcrypt backs on Debian.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

REGISTRY = shutil.which("docker-registry")
SKOPEO = shutil.which("skopeo")


@dataclass(frozen=True)
class TokenAuthConfig:
    realm: str  # the token endpoint's URL
    service: str
    issuer: str
    root_bundle: Path  # PEM certificates the registry trusts to sign tokens


@dataclass
class Registry:
    host: str
    creds: str | None
    proc: subprocess.Popen[bytes]
    root: Path | None = None

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def bcrypt_line(user: str, password: str) -> str | None:
    try:
        import bcrypt  # type: ignore[import-not-found]

        return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}"
    except ImportError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
        except ImportError:
            return None
    salt = "$2b$05$" + "".join(
        random.Random(9).choice("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") for _ in range(22)
    )
    hashed = crypt.crypt(password, salt)
    return f"{user}:{hashed}" if hashed and hashed.startswith("$2b$") else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_registry(root: Path, htpasswd: str | None = None, token: TokenAuthConfig | None = None) -> Registry:
    assert REGISTRY is not None, "docker-registry is not installed"
    root.mkdir(parents=True)
    port = free_port()
    auth = ""
    if htpasswd is not None:
        (root / "htpasswd").write_text(htpasswd + "\n")
        auth = f"auth:\n  htpasswd:\n    realm: test\n    path: {root / 'htpasswd'}\n"
    elif token is not None:
        auth = (
            f"auth:\n  token:\n    realm: {token.realm}\n    service: {token.service}\n"
            f"    issuer: {token.issuer}\n    rootcertbundle: {token.root_bundle}\n"
        )
    (root / "config.yml").write_text(
        "version: 0.1\n"
        "log:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + auth
    )
    log = open(root / "registry.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen([str(REGISTRY), "serve", str(root / "config.yml")], stdout=log, stderr=log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
            break
        except urllib.error.HTTPError:
            break  # 401: up, and asking for credentials
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError((root / "registry.log").read_text()) from None
            time.sleep(0.1)
    return Registry(f"127.0.0.1:{port}", None, proc, root)


def push(layout: Path, tag: str, host: str, repo: str, creds: str | None = None) -> str:
    """Copy `oci:layout:tag` to `docker://host/repo:tag` and return that reference."""
    ref = f"docker://{host}/{repo}:{tag}"
    cmd = ["skopeo", "copy", "-q", "--dest-tls-verify=false"]
    if creds:
        cmd += ["--dest-creds", creds]
    subprocess.run([*cmd, f"oci:{layout}:{tag}", ref], check=True)
    return ref
