"""The one JSON loader for documents an image or a registry supplies: manifests, indexes, `manifest.json`,
image configs, token responses, and the docker config file.

`json.loads` recurses once per level of nesting, so `"[" * 200000` ends in a RecursionError (and near the
interpreter's limit can crash it outright). The nesting is therefore measured before parsing, in linear
time: strings are cut out with a regular expression that cannot backtrack (possessive, and matching an
unterminated string to the end rather than failing), and the brackets left are counted. A document nested
deeper than `ScanLimits.max_json_depth` is refused with `errors.LimitExceeded`; one that is not JSON with
`errors.InvalidArgument`. Both are input errors: the CLI exits with status 2.
"""

from __future__ import annotations

import json
import re
from typing import Any

from secretsvc import errors

_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")


def nesting_exceeds(text: str, max_depth: int) -> bool:
    """Whether arrays and objects in `text` nest deeper than `max_depth` (strings ignored)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if len(brackets) <= max_depth:
        return False
    depth = 0
    for ch in brackets:
        if ch in "[{":
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1  # a stray closer makes the document invalid; json.loads says so
    return False


def load_json(data: bytes, what: str, max_depth: int) -> Any:
    """The parsed document, or InvalidArgument naming `what` (LimitExceeded when nested too deeply)."""
    try:
        text = data.decode(json.detect_encoding(data), "surrogatepass")
    except UnicodeDecodeError:
        raise errors.InvalidArgument(f"{what} is not valid JSON") from None
    if nesting_exceeds(text, max_depth):
        raise errors.LimitExceeded(f"{what} nests arrays or objects deeper than max_json_depth={max_depth}")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise errors.InvalidArgument(f"{what} is not valid JSON") from None
