"""Regular-expression pieces shared by the Python detectors."""

from __future__ import annotations

ALNUM_BEFORE = r"(?<![A-Za-z0-9_])"
ALNUM_AFTER = r"(?![A-Za-z0-9_])"
NOT_PRINTABLE = r"\x00-\x20\x7f-\xff"  # binary runs never form a secret value
ASSIGN = r"[\"']?[ \t]{0,4}(?::=|=>|=|:)[ \t]{0,4}[\"']?"  # `=`, `:`, `:=`, `=>`, quoted keys and values
MAX_SECRET_BYTES = 4096  # longest secret a regex-confirmed rule extracts
