"""Example generators a rule file names as `{gen:NAME}`: fake values of formats a template cannot spell
(checksums, binary structures, documents). Each draws everything from the `random.Random` it is given, so a
seed reproduces it, and none is a real credential: keys are random bytes in the right framing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import zlib

from secretsvc.scan.rules.registry import generator

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
_PK = "PRIVATE " + "KEY"  # assembled, so no source line looks like a key's armour
_DASHES = "-----"


def pick(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def base62_crc32(body: str) -> str:
    """The 6-character checksum tail of GitHub and npm tokens: CRC32 of the random part in base62."""
    value = zlib.crc32(body.encode())
    out = ""
    while value:
        value, rem = divmod(value, 62)
        out = BASE62[rem] + out
    return out.rjust(6, "0")


@generator("crc32-base62")
def crc32_base62_body(rng: random.Random) -> str:
    """30 random base62 characters and their CRC32 tail: what follows `ghp_` or `npm_`."""
    body = pick(rng, BASE62, 30)
    return body + base62_crc32(body)


def _packet(kind: int, data: bytes) -> bytes:
    if len(data) >= 128:
        raise ValueError("one-byte lengths only")
    return bytes([kind, len(data)]) + data


@generator("pypi-token")
def pypi_token(rng: random.Random, location: bytes = b"pypi.org") -> str:
    """A macaroon (v2 binary format) as PyPI issues them: location, identifier, caveats, 32-byte signature."""
    ident = json.dumps({"nonce": pick(rng, HEX, 32), "version": 1}).encode()
    caveat = json.dumps({"permissions": "user", "version": 1}).encode()
    raw = b"\x02" + _packet(1, location) + _packet(2, ident) + b"\x00" + _packet(2, caveat) + b"\x00\x00"
    return "py" + "pi-" + b64url(raw + _packet(6, rng.randbytes(32)))


@generator("jwt")
def jwt(rng: random.Random) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": pick(rng, string.digits, 10), "iat": rng.randrange(1_600_000_000, 1_800_000_000)}
    return f"{header}.{b64url(json.dumps(claims).encode())}.{b64url(rng.randbytes(32))}"


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(body)) + body


def _der_int(rng: random.Random, nbytes: int) -> bytes:
    return _der(0x02, b"\x00" + bytes([rng.randrange(0x80, 0x100)]) + rng.randbytes(nbytes - 1))


def _rsa_der(rng: random.Random) -> bytes:
    ints = [_der(0x02, b"\x00"), _der_int(rng, 256), _der(0x02, b"\x01\x00\x01")]
    ints += [_der_int(rng, n) for n in (256, 128, 128, 128, 128, 128)]
    return _der(0x30, b"".join(ints))


def _armour(label: str, der: bytes, width: int = 64) -> str:
    body = base64.b64encode(der).decode()
    lines = [body[i : i + width] for i in range(0, len(body), width)]
    return "\n".join([f"{_DASHES}BEGIN {label}{_DASHES}", *lines, f"{_DASHES}END {label}{_DASHES}", ""])


def private_key_pem(rng: random.Random, kind: str = "rsa") -> str:
    """A PEM block with a structurally valid body (DER SEQUENCE or an openssh-key-v1 blob) of random bytes.

    kind: rsa (PKCS#1), ec (SEC1), dsa, pkcs8, encrypted (PKCS#8 encrypted), openssh.
    """
    if kind == "rsa":
        return _armour("RSA " + _PK, _rsa_der(rng))
    if kind == "ec":
        body = _der(0x02, b"\x01") + _der(0x04, rng.randbytes(32)) + _der(0xA0, bytes.fromhex("06082a8648ce3d030107"))
        return _armour("EC " + _PK, _der(0x30, body))
    if kind == "dsa":
        ints = [_der(0x02, b"\x00")] + [_der_int(rng, n) for n in (128, 20, 128, 128, 20)]
        return _armour("DSA " + _PK, _der(0x30, b"".join(ints)))
    if kind == "pkcs8":
        algo = _der(0x30, bytes.fromhex("06092a864886f70d010101") + b"\x05\x00")
        return _armour(_PK, _der(0x30, _der(0x02, b"\x00") + algo + _der(0x04, _rsa_der(rng))))
    if kind == "encrypted":
        algo = _der(0x30, bytes.fromhex("06092a864886f70d01050d") + _der(0x30, rng.randbytes(40)))
        return _armour("ENCRYPTED " + _PK, _der(0x30, algo + _der(0x04, rng.randbytes(1232))))
    if kind == "openssh":
        blob = b"openssh-key-v1\x00" + b"\x00\x00\x00\x04none" * 2 + b"\x00\x00\x00\x00\x00\x00\x00\x01"
        return _armour("OPENSSH " + _PK, blob + rng.randbytes(360), width=70)
    raise ValueError(f"unknown key kind {kind!r}")


KEY_KINDS = ("rsa", "ec", "dsa", "pkcs8", "encrypted", "openssh")


@generator("private-key-pem")
def any_private_key_pem(rng: random.Random) -> str:
    return private_key_pem(rng, rng.choice(KEY_KINDS))


@generator("private-key-pem-not-a-key")
def private_key_pem_not_a_key(rng: random.Random) -> str:
    """Private-key armour around base64 that decodes to no key structure: what a detector must not report."""
    return _armour("RSA " + _PK, b"\x04" + rng.randbytes(47))


@generator("private-key-header")
def private_key_header(_rng: random.Random) -> str:
    """The armour's first line alone, as code that looks for it holds it."""
    return f"{_DASHES}BEGIN {_PK}{_DASHES}"


@generator("gcp-service-account-json")
def gcp_service_account_json(rng: random.Random) -> str:
    project = "proj-" + pick(rng, string.ascii_lowercase + string.digits, 8)
    doc = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": pick(rng, HEX, 40),
        "private_key": private_key_pem(rng, "pkcs8"),
        "client_email": f"deployer@{project}.iam.gserviceaccount.com",
        "client_id": pick(rng, string.digits, 21),
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    return json.dumps(doc, indent=2)


@generator("azure-account-key")
def azure_account_key(rng: random.Random) -> str:
    return base64.b64encode(rng.randbytes(64)).decode()


@generator("password")
def password(rng: random.Random, n: int = 20) -> str:
    """A high-entropy password: letters, digits and a few punctuation marks, always all four classes."""
    core = pick(rng, ALNUM + "!#%*+-.^_", n - 3)
    return core + rng.choice(string.ascii_uppercase) + rng.choice(string.digits) + rng.choice("!#%*")


@generator("docker-auth")
def docker_auth(rng: random.Random) -> str:
    """The value of an `auths.<registry>.auth` entry: base64 of `user:password`."""
    user = "ci-" + pick(rng, string.ascii_lowercase, 6)
    return base64.b64encode(f"{user}:{password(rng)}".encode()).decode()


@generator("kube-client-key-data")
def kube_client_key_data(rng: random.Random) -> str:
    return base64.b64encode(private_key_pem(rng, rng.choice(["rsa", "ec"])).encode()).decode()


_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58check_encode(body: bytes) -> str:
    raw = body + hashlib.sha256(hashlib.sha256(body).digest()).digest()[:4]
    value = int.from_bytes(raw, "big")
    out = ""
    while value:
        value, rem = divmod(value, 58)
        out = _BASE58[rem] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\x00"))) + out


@generator("bitcoin-wif")
def bitcoin_wif(rng: random.Random) -> str:
    """A mainnet WIF private key of random bytes, compressed or not."""
    return base58check_encode(b"\x80" + rng.randbytes(32) + (b"\x01" if rng.random() < 0.5 else b""))


@generator("jwt-base64")
def jwt_base64(rng: random.Random) -> str:
    return base64.b64encode(jwt(rng).encode()).decode()
