"""Candidate values for known-secret matching: strings in scanned content that might equal a stored secret.

No rule is needed to recognise a stored secret (the service compares it by value), so this module casts a
wide net over the places a value is written beside its name, and leaves deciding to the service:

    key=value, key: value, key = "value"   assignments: env files, YAML, INI, properties, JSON members,
                                            XML attributes, source code
    <password>value</password>             XML element text
    --password value, --password=value     command-line flags (shell history, scripts, Cmd/Entrypoint)
    scheme://user:PASSWORD@host            the password of a URL's userinfo
    a small file holding one token         a mounted secret file, a .pgpass-style single value
    NAME=value in the image config's Env   the whole value after the first "="

A candidate is 6..1024 bytes (shorter strings equal too many things by chance; the service accepts no
longer), has no line break and no NUL. Every pattern is a single pass with bounded repetition, so the cost is
linear in the content; the number of candidates per content is capped, and the caller is told when the cap cut
the list short.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from secretsvc.scan.model import Content, Location

MIN_CANDIDATE_BYTES = 6
MAX_CANDIDATE_BYTES = 1024
#: Candidates taken from one `Content` (one file, or one chunk of a large one); past it the rest are dropped
#: and `Extraction.truncated` is set.
MAX_CANDIDATES_PER_CONTENT = 4096
#: A file this small that holds one token and nothing else is a candidate as a whole.
MAX_WHOLE_FILE_BYTES = MAX_CANDIDATE_BYTES + 64

# Each pattern starts only where a name (or scheme, or flag) starts: the one-character lookbehind turns away
# every other position of a long run of name characters at once, which keeps the scan linear. A bare value is
# taken possessively up to the bound and the scan goes on after it; a value the bound cut short (a value
# character follows it) is dropped afterwards rather than backtracked over.
_NAME_CHAR = rb"A-Za-z0-9_.\-"
_BARE = rb"""[^\s"'`,;#&|<>(){}\[\]\x00]"""
_ASSIGNMENT = re.compile(
    rb"(?<!["
    + _NAME_CHAR
    + rb""""'])["']?[A-Za-z_]["""
    + _NAME_CHAR
    + rb"""]{0,127}["']?[ \t]{0,16}(?::=|:|=)[ \t]{0,16}"""
    rb"""(?:"([^"\r\n\x00]{6,1024})"|'([^'\r\n\x00]{6,1024})'|(""" + _BARE + rb"{6,1024}+))"
)
_XML_ELEMENT = re.compile(rb"<([A-Za-z_][A-Za-z0-9_.:\-]{0,127})(?:[ \t][^<>\r\n]{0,512})?>([^<\r\n\x00]{6,1024})</\1>")
_FLAG = re.compile(
    # Starts with the literal "-" (so the engine can skip ahead to it), then checks what came before it.
    rb"""-(?<![^\s"']-)-?[A-Za-z][A-Za-z0-9_\-]{0,63}(?:=|[ \t]{1,16})"""
    rb"""(?:"([^"\r\n\x00]{6,1024})"|'([^'\r\n\x00]{6,1024})'|([^\s"'`;&|<>\x00-]"""
    rb"""[^\s"'`;&|<>\x00]{5,1023}+))""",
)
# From the literal "://": any scheme will do, and the engine skips ahead to it.
_URL_PASSWORD = re.compile(rb"://[^\s:/@\x00]{0,256}:([^\s/@\x00]{1,1024})@")
# Bytes that end a bare value (of an assignment or a flag): after a cut-short value comes none of these.
_BARE_STOPS = frozenset(b" \t\r\n\x0b\x0c\"'`,;#&|<>(){}[]\x00")
_TOKEN = re.compile(rb"[^\s\x00]{6,1024}")


@dataclass(frozen=True, slots=True)
class Span:
    """A candidate's place in `Content.data`: data[start:end] is the value."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Extraction:
    spans: tuple[Span, ...]
    truncated: bool  # MAX_CANDIDATES_PER_CONTENT was reached: later candidates in this content were dropped


def extract(content: Content, *, limit: int = MAX_CANDIDATES_PER_CONTENT) -> Extraction:
    """The candidate spans of one content, first occurrence of each value first, at most `limit`."""
    data = content.data
    found: list[Span] = []
    seen: set[bytes] = set()
    truncated = False

    def take(start: int, end: int) -> bool:
        nonlocal truncated
        start, end = _trim(data, start, end)
        if not MIN_CANDIDATE_BYTES <= end - start <= MAX_CANDIDATE_BYTES:
            return True
        value = data[start:end]
        if value in seen:
            return True
        if len(found) >= limit:
            truncated = True
            return False
        seen.add(value)
        found.append(Span(start, end))
        return True

    if content.location is Location.CONFIG_ENV:
        eq = data.find(b"=")
        if eq >= 0:
            take(eq + 1, len(data))
    if content.binary:
        return Extraction(tuple(found), truncated)  # machine code and images: only the rules' matches count
    if content.offset == 0 and len(data) <= MAX_WHOLE_FILE_BYTES and content.layer_index is not None:
        whole = _TOKEN.fullmatch(data.strip())
        if whole is not None:
            lead = len(data) - len(data.lstrip())
            take(lead + whole.start(), lead + whole.end())
    for pattern in (_ASSIGNMENT, _FLAG, _XML_ELEMENT, _URL_PASSWORD):
        for m in pattern.finditer(data):
            # The value is the last group that took part: one alternative of several, or the element's text
            # after its name.
            group = m.lastindex or 0
            if group == 3 and m.end(3) < len(data) and data[m.end(3)] not in _BARE_STOPS:
                continue  # a bare value longer than MAX_CANDIDATE_BYTES, cut short by the pattern's bound
            if not take(m.start(group), m.end(group)):
                return Extraction(tuple(found), truncated)
    return Extraction(tuple(found), truncated)


def _trim(data: bytes, start: int, end: int) -> tuple[int, int]:
    """Without surrounding blanks, and without a trailing comma or quote that a bare value swept up."""
    while start < end and data[start] in b" \t":
        start += 1
    while end > start and data[end - 1] in b" \t\r,":
        end -= 1
    return start, end
