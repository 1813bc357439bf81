"""Passwords on command lines: build history (`RUN` lines), scripts, `Cmd`/`Entrypoint`, manifests' args.

    --password X    --password=X    "--password", "X"    --db-password X    --api-key X    --token X
    mysql -uroot -pX    sshpass -p X    curl -u user:X    PGPASSWORD=X psql ...    export DB_PASSWORD=X
    docker login -u ci -p X registry    mongosh -u admin -p X    redis-cli -a X

A command line names what it passes, so the value needs no randomness; it must still be a value, not a
variable (`$PASS`, `${PASS}`, `%PASS%`, `$(cat ...)`), a usage line's metavariable (`PASSWORD`,
`<password>`), stdin (`-`) or a single word of prose (`chosen_password_ok`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from secretsvc.scan.rules.configfiles import chosen_password_ok, secret_key
from secretsvc.scan.rules.model import Confirmer, Detector
from secretsvc.scan.rules.registry import detector

MAX_COMMAND_CHARS = 300  # how far along a line a tool's option may follow the tool's name

# One argument: quoted without spaces, or bare up to a shell metacharacter.
_ARG = rb"(?:\"(?P<dq>[^\"\s]{1,256})\"|'(?P<sq>[^'\s]{1,256})'|(?P<bare>[^\s\"'|;&<>()`]{1,256}))"
_ARG_END = rb"(?=[\s\"'|;&)`,\]]|$)"
# `--password`, `--db-password`, `--admin-pass`, `--api-key`, `--client-secret`, `--token`: the flag ends in
# the secret word (so `--password-file` and `--token-ttl` are not values); plain `--secret` is docker build's
# secret mount, never a value.
_FLAG_WORDS = r"password|passwd|pass|pwd|passphrase|token|api-key|apikey|[a-z0-9]+-secret"
_FLAG = re.compile(
    rb"--(?P<flag>(?:[a-z0-9]+-){0,3}(?:" + _FLAG_WORDS.encode() + rb"))(?:=|[ \t]|\"?,[ \t]*\")" + _ARG + _ARG_END,
    re.IGNORECASE,
)
_MYSQL_TOOLS = r"(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlcheck|mysqlshow|mysqlpump|mysqlsh|mariadb[a-z-]{0,8})"
_MYSQL_P = re.compile(rb"[ \t]-p" + _ARG + _ARG_END)
_SSHPASS = re.compile(rb"(?<=sshpass)[ \t]+(?:-[a-zA-Z][ \t]+)*?-p[ \t]*" + _ARG + _ARG_END)
_CURL_USER = re.compile(
    rb"[ \t](?:-u|--user)[ \t]*(?P<q>[\"']?)[^\s:\"'$]{1,128}:(?P<secret>[^\s\"']{1,256})(?P=q)" + _ARG_END
)
# A short option whose value is a password, after the tools that take one that way: `docker login -p X`
# (and podman, buildah, nerdctl, skopeo, helm registry login), `mongosh -p X`, `redis-cli -a X`.
_LOGIN_TOOLS = r"(?:docker|podman|buildah|nerdctl|skopeo|helm[ \t]+registry)[ \t]+login"
_LOGIN_P = re.compile(rb"[ \t]-p[ \t]+" + _ARG + _ARG_END)
_MONGO_TOOLS = r"(?:mongo|mongosh|mongodump|mongorestore|mongoexport|mongoimport)"
_REDIS_A = re.compile(rb"[ \t]-a[ \t]+" + _ARG + _ARG_END)
# `PGPASSWORD=X psql`, `export DB_PASSWORD=X`, `ENV API_TOKEN=X`, `|1 DB_PASSWORD=X /bin/sh -c` (build args)
_ENV_ASSIGN = re.compile(
    rb"(?P<lead>(?:export|ENV|ARG|env)[ \t]+|\|[0-9]{1,3}[ \t]+|[ \t;&|(])?(?P<key>[A-Z][A-Z0-9_]{0,60})="
    + _ARG
    + rb"(?P<after>[ \t]+[A-Za-z./])?"
)


def _value_span(m: re.Match[bytes]) -> tuple[int, int]:
    group = next(g for g in ("dq", "sq", "bare") if m.start(g) >= 0)
    return m.span(group)


# `--next-token`, `--starting-token`, `--client-request-token`: pagination and idempotency tokens, not
# credentials. A compound token flag counts only when the word before `token` says it authenticates.
_CREDENTIAL_TOKEN_WORDS = frozenset({
    b"auth", b"access", b"api", b"bearer", b"session", b"refresh", b"bot", b"secret", b"personal", b"registration",
    b"runner", b"join", b"bootstrap", b"vault", b"oauth", b"admin", b"deploy", b"github", b"gitlab", b"npm",
    b"pypi", b"slack", b"discord", b"telegram", b"cloudflare", b"digitalocean", b"hf", b"huggingface",
})  # fmt: skip


def _credential_flag(flag: bytes) -> bool:
    flag = flag.lower()
    if not flag.endswith(b"token") or flag == b"token":
        return True
    return flag[: -len(b"token")].rstrip(b"-").rsplit(b"-", 1)[-1] in _CREDENTIAL_TOKEN_WORDS


def _flag_confirm(data: bytes, start: int, end: int) -> Iterator[tuple[int, int]]:
    for m in _FLAG.finditer(data, start, min(len(data), end + MAX_COMMAND_CHARS)):
        if m.start() >= end:
            break  # it starts past the window: a later trigger hit's, if any
        if not _credential_flag(m.group("flag")):
            continue
        s, e = _value_span(m)
        if chosen_password_ok(data[s:e]):
            yield s, e


def _line_end(data: bytes, pos: int) -> int:
    nl = data.find(b"\n", pos, pos + MAX_COMMAND_CHARS)
    return nl if nl >= 0 else min(len(data), pos + MAX_COMMAND_CHARS)


def _tool_confirm(option: re.Pattern[bytes]) -> Confirmer:
    def confirm(data: bytes, start: int, end: int) -> Iterator[tuple[int, int]]:
        """The option on the same line as the tool's name (the trigger), before any `|`, `;` or `&&`."""
        stop = _line_end(data, end)
        for sep in (b"|", b";", b"&&"):
            cut = data.find(sep, end, stop)
            if cut >= 0:
                stop = cut
        m = option.search(data, end - 1, stop)  # from the blank that ended the trigger
        if m is None:
            return
        s, e = m.span("secret") if "secret" in option.groupindex else _value_span(m)
        if chosen_password_ok(data[s:e]):
            yield s, e

    return confirm


def _env_confirm(data: bytes, start: int, end: int) -> Iterator[tuple[int, int]]:
    for m in _ENV_ASSIGN.finditer(data, start, min(len(data), end + MAX_COMMAND_CHARS)):
        if m.start() >= end:
            break  # it starts past the window: a later trigger hit's, if any
        lead = m.group("lead") or b""
        # A prefix assignment runs a command after it; `export`/`ENV`/`ARG`/build-arg lines set it for later.
        if not (lead.strip(b" \t;&|(") or m.group("after")):
            continue
        if not secret_key(m.group("key")):
            continue
        s, e = _value_span(m)
        if chosen_password_ok(data[s:e]):
            yield s, e


@detector("command-line-password")
def command_line_password() -> tuple[Detector, ...]:
    confirm_mysql = _tool_confirm(_MYSQL_P)
    confirm_sshpass = _tool_confirm(_SSHPASS)
    confirm_curl = _tool_confirm(_CURL_USER)
    confirm_login = _tool_confirm(_LOGIN_P)
    confirm_redis = _tool_confirm(_REDIS_A)
    env_words = r"(?:PASSWORD|PASSWD|PWD|PASS|PASSPHRASE|SECRET|TOKEN|API_KEY|APIKEY|ACCESS_KEY|AUTH)"
    return (
        Detector(r"--(?:[a-z0-9]+-){0,3}(?:" + _FLAG_WORDS + r")(?:=|[ \t]|\"?,[ \t]*\")", _flag_confirm,
                 back=48, forward=0, caseless=True),
        Detector(r"(?:^|[^A-Za-z0-9_/.-])" + _MYSQL_TOOLS + r"[ \t]", confirm_mysql, back=0, forward=0),
        Detector(r"sshpass[ \t]", confirm_sshpass, back=0, forward=0),
        Detector(r"(?:^|[^A-Za-z0-9_/.-])curl[ \t]", confirm_curl, back=0, forward=0),
        Detector(env_words + r"=", _env_confirm, back=80, forward=0),
        Detector(_LOGIN_TOOLS + r"[ \t]", confirm_login, back=0, forward=0),
        Detector(r"(?:^|[^A-Za-z0-9_/.-])" + _MONGO_TOOLS + r"[ \t]", confirm_login, back=0, forward=0),
        Detector(r"(?:^|[^A-Za-z0-9_/.-])redis-cli[ \t]", confirm_redis, back=0, forward=0),
    )  # fmt: skip
