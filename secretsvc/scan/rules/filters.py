"""Precision filters: reasons a string that matched a credential shape is not a credential.

Placeholders and template references, documented example values, low entropy, digests and UUIDs, code
references, and the `pragma: allowlist secret` comment (the convention detect-secrets established), honoured
on the matched line or, as `pragma: allowlist nextline secret`, on the line before it.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter

from detect_secrets.filters.heuristic import is_potential_uuid, is_sequential_string, is_templated_secret

# Documented example credentials (AWS's EXAMPLE key pair, the Azure storage emulator's well-known account
# key, ...), stored as SHA-256 so the tree holds no credential-shaped literal.
DOCUMENTED_EXAMPLE_SHA256 = frozenset(
    {
        "1a5d44a2dca19669d72edf4c4f1c27c4c1ca4b4408fbb17f6ce4ad452d78ddb3",  # AWS docs: access key id
        "78314b11be2e581549ac1c4f616563fad3fdf0c3b71678f6e2299182080e0598",  # AWS docs: secret key
        "c6ea27c534f993d31f0aef882e3d200e7b87470c379ae79c8f9b19d3bd363dc9",  # AWS docs: second key id
        "e21b597ba6b9cafa59d9ebc4d65c0385f5eb3fa56abab2607fa76589ad849a33",  # AWS docs: second secret
        "0011cc25eb4320717494d2703e8cba85743e71b500283c21c8b88147992f9059",  # Azure storage emulator key
        "6c96130f130ab0d6d158397e24d2bcc1c9a5e73ae081f6e983f1c7b545d24a4c",  # RFC 6749 example access token
        "00cf4c781dc37003f7c7dd7d4c9a6ef1e0f4c62d9a291aa8bc398774e3fefd32",  # RFC 6749 example refresh token
    }
)
# Words that mark a value as a stand-in rather than a secret. Only applied to values without a checksum:
# a checksum-valid token is real whatever letters it happens to contain.
PLACEHOLDER_WORDS = (
    "example",
    "changeme",
    "change_me",
    "change-me",
    "placeholder",
    "dummy",
    "sample",
    "your",
    "redacted",
    "replace",
    "insert",
    "fake",
    "notreal",
    "not_real",
    "secret",
    "password",
    "passwd",
    "xxxx",
    "****",
    "...",
    "test",
    "todo",
    "fixme",
    "qwerty",
    "hunter2",
    "123456",
    "letmein",
)
PLACEHOLDER_EXACT = frozenset({b"null", b"none", b"nil", b"true", b"false", b"undefined", b"empty", b"string"})
MAX_LINE_SCAN_BYTES = 4096  # how far to look for the start/end of the matched line (pragma)
PRAGMA = b"pragma: allowlist secret"
PRAGMA_NEXTLINE = b"pragma: allowlist nextline secret"

_TEMPLATE = re.compile(rb"\$\{|\$\(|\{\{|\}\}|\{%|%\(|<[A-Za-z_ -]{2,40}>|^\$[A-Za-z_]|^%[A-Za-z_]+%$|^@[A-Za-z_]+@$")
_PLACEHOLDER_WORDS = re.compile(b"|".join(re.escape(w.encode()) for w in PLACEHOLDER_WORDS), re.IGNORECASE)
_LOWER, _UPPER, _DIGIT, _OTHER = (re.compile(p) for p in (rb"[a-z]", rb"[A-Z]", rb"[0-9]", rb"[^A-Za-z0-9]"))
_REPEAT = re.compile(rb"(.)\1{5,}")
_HEX = re.compile(rb"[0-9a-fA-F]+")
_CODE_REF = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+|[A-Za-z_][A-Za-z0-9_]*\(")
DIGEST_HEX_LENGTHS = frozenset({32, 40, 56, 64, 96, 128})


def is_documented_example(value: bytes) -> bool:
    return hashlib.sha256(value).hexdigest() in DOCUMENTED_EXAMPLE_SHA256 or b"EXAMPLE" in value


def is_placeholder(value: bytes) -> bool:
    """`${VAR}`, `{{ .Values.x }}`, `<your-key>`, `changeme`, `xxxxxxxx`, `****`, test-looking words."""
    if not value or value.lower() in PLACEHOLDER_EXACT:
        return True
    if _TEMPLATE.search(value) or _REPEAT.search(value):
        return True
    if _PLACEHOLDER_WORDS.search(value):
        return True
    text = value.decode("utf-8", "replace")
    return is_templated_secret(text) or is_sequential_string(text)


def shannon_entropy(value: bytes) -> float:
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def char_classes(value: bytes) -> int:
    """How many of lower case, upper case, digits and other characters `value` uses."""
    return sum(1 for p in (_LOWER, _UPPER, _DIGIT, _OTHER) if p.search(value))


def has_digit(value: bytes) -> bool:
    return _DIGIT.search(value) is not None


def is_digest_or_uuid(value: bytes) -> bool:
    if _HEX.fullmatch(value) and len(value) in DIGEST_HEX_LENGTHS:
        return True
    return is_potential_uuid(value.decode("ascii", "replace"))


def looks_random(value: bytes, *, min_len: int = 8, min_entropy: float = 3.0) -> bool:
    """A password-like value: long enough, varied enough, not a sequence."""
    if len(value) < min_len or shannon_entropy(value) < min_entropy:
        return False
    classes = char_classes(value)
    return classes >= 3 or (classes == 2 and len(value) >= 16 and shannon_entropy(value) >= 3.7)


def is_code_reference(value: bytes) -> bool:
    """`settings.SECRET_KEY`, `os.environ.get(`, `config.db.password`: a name, not a value."""
    return _CODE_REF.fullmatch(value) is not None or value.endswith(b"(")


def line_bounds(data: bytes, start: int, end: int) -> tuple[int, int]:
    lo = max(0, start - MAX_LINE_SCAN_BYTES)
    line_start = data.rfind(b"\n", lo, start) + 1 or lo
    nl = data.find(b"\n", end, end + MAX_LINE_SCAN_BYTES)
    line_end = nl if nl >= 0 else min(len(data), end + MAX_LINE_SCAN_BYTES)
    return line_start, line_end


def _previous_line_start(data: bytes, line_start: int) -> int:
    lo = max(0, line_start - 1 - MAX_LINE_SCAN_BYTES)
    return data.rfind(b"\n", lo, line_start - 1) + 1 or lo


def is_allowlisted(data: bytes, start: int, end: int) -> bool:
    """The `pragma: allowlist secret` comment on any line the secret spans, or `nextline` just above.

    A multi-line secret (a PEM body) starts on the line after its header; the header line counts as one
    of its lines.
    """
    line_start, line_end = line_bounds(data, start, end)
    if line_start > 0 and data.find(b"\n", start, end) >= 0:
        line_start = _previous_line_start(data, line_start)
    if data.find(PRAGMA, line_start, line_end) >= 0:
        return True
    if line_start == 0:
        return False
    return data.find(PRAGMA_NEXTLINE, _previous_line_start(data, line_start), line_start) >= 0
