"""The pod annotations under the webhook's prefix (default `secretsvc.io/`): every one parsed and checked.

Whoever may create pods writes these, so every value is bounded and validated, and nothing under the prefix is
ignored: an unknown or misspelled name is a problem, reported with the closest known name (a silently ignored
typo is how a pod ends up without its secret). docs/injector.md has the table of every annotation.

`parse_annotations` returns the request and every problem found (not just the first), so the author fixes
them in one round. Defaults that depend on the pod (owner, mode, containers) are resolved by planner.py.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from injector.plan import (
    MAX_DEADLINE_SECONDS,
    MAX_FILES,
    MAX_ID,
    MAX_ITEMS_PER_FILE,
    MAX_TEMPLATE_BYTES,
    MAX_URL_BYTES,
    AgentMode,
    Render,
    RenderFormat,
    SecretRef,
    check_env_key,
    check_file_name,
    check_reload_signal,
    parse_mode,
)
from secretsvc.errors import InvalidArgument

# Named bounds on what a pod's author may write.
MAX_VALUE_BYTES = 1024  # every value but a template body
MAX_ANNOTATIONS = 5 * MAX_FILES + 32  # under the prefix
MAX_CONTAINER_NAMES = 64
MAX_MOUNT_PATH_BYTES = 256
MAX_TMPFS_BYTES = 256 * 1024 * 1024
MIN_TMPFS_BYTES = 64 * 1024
MAX_CPU_CORES = 4
MAX_MEMORY_BYTES = 1024 * 1024 * 1024
MAX_NAME_SHOWN = 64

INJECTED = "injected"  # the value of the status annotation the webhook sets on a pod it changed

# Annotations with one fixed name, and the per-file families `FAMILY-NAME` where NAME is the file's name.
INJECT = "inject"
STATUS = "status"
AGENT_MODE = "agent-mode"
MOUNT_PATH = "mount-path"
CONTAINERS = "containers"
TMPFS_SIZE = "tmpfs-size"
CPU_REQUEST = "agent-cpu-request"
MEMORY_REQUEST = "agent-memory-request"
CPU_LIMIT = "agent-cpu-limit"
MEMORY_LIMIT = "agent-memory-limit"
RELOAD_SIGNAL = "reload-signal"
RELOAD_PROCESS = "reload-process"
RELOAD_URL = "reload-url"
DEADLINE = "agent-deadline-seconds"
FIXED = (INJECT, STATUS, AGENT_MODE, MOUNT_PATH, CONTAINERS, TMPFS_SIZE, CPU_REQUEST, MEMORY_REQUEST, CPU_LIMIT,
         MEMORY_LIMIT, RELOAD_SIGNAL, RELOAD_PROCESS, RELOAD_URL, DEADLINE)
SECRET = "secret-"  # noqa: S105 - an annotation family, not a credential
TEMPLATE = "template-"
FORMAT = "format-"
MODE = "mode-"
OWNER = "owner-"
FAMILIES = (SECRET, TEMPLATE, FORMAT, MODE, OWNER)

_CONTAINER_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?")
_SUFFIX: dict[str | None, Decimal | int] = {
    None: 1, "m": Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
# Mounting over these would hide what the app's image needs to run.
_SYSTEM_DIRS = frozenset({"/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/sbin", "/sys", "/usr",
                          "/var", "/var/run", "/run", "/tmp"})  # noqa: S108 - refused, not used


@dataclass(frozen=True, slots=True)
class FileRequest:
    name: str
    secret: SecretRef | None = None
    render: Render | None = None
    mode: int | None = None  # None: the default (planner.py)
    uid: int | None = None  # None: from the pod
    gid: int | None = None


@dataclass(frozen=True, slots=True)
class Resources:
    cpu_request: str | None = None  # None: the webhook's default
    memory_request: str | None = None
    cpu_limit: str | None = None
    memory_limit: str | None = None


@dataclass(frozen=True, slots=True)
class Reload:
    signal: str | None = None
    process: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class PodAnnotations:
    present: bool = False  # anything under the prefix at all
    inject: bool = False
    status: str | None = None
    files: tuple[FileRequest, ...] = ()
    agent_mode: AgentMode = AgentMode.INIT
    mount_path: str | None = None
    containers: tuple[str, ...] | None = None  # None: every app container
    tmpfs_size: str | None = None
    resources: Resources = field(default_factory=Resources)
    reload: Reload = field(default_factory=Reload)
    deadline_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Parsed:
    value: PodAnnotations
    problems: tuple[str, ...]  # each says what is wrong and how to fix it
    notes: tuple[str, ...]  # worth a warning, never a refusal


def _shown(text: str) -> str:
    return repr(text[:MAX_NAME_SHOWN] + ("…" if len(text) > MAX_NAME_SHOWN else ""))


def suggest(name: str) -> str | None:
    """The known annotation name closest to `name` (without the prefix), or None."""
    candidates = list(FIXED)
    lowered = name.lower()
    # A per-file family keeps the author's file name: "secrets-db" -> "secret-db", "fromat-app.env" -> "format-...".
    for i, ch in enumerate(lowered):
        if ch == "-":
            candidates += [f"{family}{name[i + 1:]}" for family in FAMILIES]
    candidates += [family.rstrip("-") for family in FAMILIES]
    match = difflib.get_close_matches(lowered, [c.lower() for c in candidates], n=1, cutoff=0.6)
    if not match:
        return None
    return next(c for c in candidates if c.lower() == match[0])


def parse_quantity(text: str, *, what: str, maximum: int) -> Decimal:
    """A Kubernetes quantity in the forms an agent's resources need (`10m`, `0.5`, `16Mi`, `1G`), bounded."""
    m = _QUANTITY.fullmatch(text) if len(text) <= 32 else None
    if m is None:
        raise InvalidArgument(f"{what} {_shown(text)} is not a quantity such as 10m, 0.5, 16Mi or 64Mi")
    try:
        value = Decimal(m.group(1)) * _SUFFIX[m.group(2)]
    except InvalidOperation:
        raise InvalidArgument(f"{what} {_shown(text)} is not a quantity") from None
    if value <= 0 or value > maximum:
        raise InvalidArgument(f"{what} {text} must be more than 0 and at most {maximum}")
    return value


def check_mount_path(path: str) -> str:
    if len(path.encode("utf-8", "surrogatepass")) > MAX_MOUNT_PATH_BYTES or not path.isprintable():
        raise InvalidArgument(f"mount path must be printable and at most MAX_MOUNT_PATH_BYTES={MAX_MOUNT_PATH_BYTES}")
    parts = path.split("/")
    if not path.startswith("/") or any(p in {".", ".."} for p in parts) or "//" in path or ":" in path:
        raise InvalidArgument(f"mount path {_shown(path)} must be an absolute path without '.', '..', '//' or ':', "
                              "such as /var/run/secrets/secretsvc")
    normal = path.rstrip("/") or "/"
    if normal in _SYSTEM_DIRS:
        raise InvalidArgument(f"mount path {normal} would hide the image's own {normal}; use a directory of its "
                              "own such as /var/run/secrets/secretsvc")
    return normal


def _owner(text: str) -> tuple[int, int | None]:
    uid_text, colon, gid_text = text.partition(":")
    ids = [uid_text] + ([gid_text] if colon else [])
    if not all(t.isdigit() and len(t) <= 10 and int(t) <= MAX_ID for t in ids):
        raise InvalidArgument(f"owner {_shown(text)} must be UID or UID:GID, numbers from 0 to {MAX_ID} "
                              "(names cannot be resolved outside the container's image)")
    return int(uid_text), (int(gid_text) if colon else None)


def _items(text: str, fmt: RenderFormat) -> dict[str, SecretRef]:
    items: dict[str, SecretRef] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, eq, ref = line.partition("=")
        if not eq:
            raise InvalidArgument(f"line {number}: expected KEY=NAMESPACE/PATH[@VERSION] (format {fmt.value})")
        key, ref = key.strip(), ref.strip()
        check_env_key(key)
        if key in items:
            raise InvalidArgument(f"line {number}: key {key} appears twice")
        try:
            items[key] = SecretRef.parse(ref)
        except InvalidArgument as exc:
            raise InvalidArgument(f"line {number}: {exc}") from None
        if len(items) > MAX_ITEMS_PER_FILE:
            raise InvalidArgument(f"more than MAX_ITEMS_PER_FILE={MAX_ITEMS_PER_FILE} items")
    if not items:
        raise InvalidArgument(f"no items: write one KEY=NAMESPACE/PATH[@VERSION] per line (format {fmt.value})")
    return items


def _render(body: str, fmt_text: str | None) -> Render:
    try:
        fmt = RenderFormat(fmt_text) if fmt_text is not None else RenderFormat.TEMPLATE
    except ValueError:
        raise InvalidArgument(f"format {_shown(fmt_text or '')} must be one of "
                              f"{', '.join(f.value for f in RenderFormat)}") from None
    if fmt is RenderFormat.TEMPLATE:
        render = Render(fmt, template=body)
        try:
            render.refs()
        except InvalidArgument as exc:
            hint = ""
            if fmt_text is None and re.search(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*=", body, re.MULTILINE):
                hint = "; for KEY=NAMESPACE/PATH lines, set the format annotation to env, json or yaml"
            raise InvalidArgument(f"{exc}{hint}") from None
        return render
    return Render(fmt, items=_items(body, fmt))


def _bool(text: str, name: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in {"true", "false"}:
        raise InvalidArgument(f"must be \"true\" or \"false\", got {_shown(text)}")
    return lowered == "true"


class _Collector:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.problems: list[str] = []
        self.notes: list[str] = []

    def problem(self, name: str, message: str) -> None:
        self.problems.append(f"annotation {self.prefix}{name}: {message}")


def _near_prefix(key: str, prefix: str) -> bool:
    """`key`'s prefix looks like a misspelling of ours (secretsvc.i0/inject, secretsvc/inject)."""
    head, slash, _ = key.rpartition("/")
    ours = prefix.rstrip("/")
    if not slash or head == ours:
        return False
    return difflib.SequenceMatcher(None, head.lower(), ours.lower()).ratio() >= 0.85


def parse_annotations(annotations: Mapping[str, object], prefix: str) -> Parsed:
    """Every annotation under `prefix`, checked. Values of a wrong type (not strings) are problems too."""
    c = _Collector(prefix)
    ours: dict[str, str] = {}
    for key, value in annotations.items():
        if key.startswith(prefix):
            name = key[len(prefix):]
            if not isinstance(value, str):
                c.problem(name, "the value must be a string")
                continue
            ours[name] = value
        elif _near_prefix(key, prefix):
            name = key.rpartition("/")[2]
            c.notes.append(f"annotation {_shown(key)} is ignored: it is not under {prefix}; did you mean "
                           f"{prefix}{suggest(name) or name}?")
    if not ours:
        return Parsed(PodAnnotations(), (), tuple(c.notes))
    if len(ours) > MAX_ANNOTATIONS:
        c.problems.append(f"more than MAX_ANNOTATIONS={MAX_ANNOTATIONS} annotations under {prefix}")
        return Parsed(PodAnnotations(present=True), tuple(c.problems), tuple(c.notes))

    fixed: dict[str, str] = {}
    per_file: dict[str, dict[str, str]] = {family: {} for family in FAMILIES}
    for name, value in sorted(ours.items()):
        limit = MAX_TEMPLATE_BYTES if name.startswith(TEMPLATE) else MAX_VALUE_BYTES
        if len(value.encode("utf-8", "surrogatepass")) > limit:
            c.problem(name, f"the value is longer than {limit} bytes")
            continue
        if name in FIXED:
            fixed[name] = value
            continue
        family = next((f for f in FAMILIES if name.startswith(f) and len(name) > len(f)), None)
        if family is None:
            close = suggest(name)
            hint = f"; did you mean {prefix}{close}?" if close else f"; known: {', '.join(FIXED)} and " \
                f"{', '.join(f + 'NAME' for f in FAMILIES)}"
            c.problem(name, f"unknown annotation{hint}")
            continue
        per_file[family][name[len(family):]] = value

    inject = False
    if INJECT in fixed:
        try:
            inject = _bool(fixed[INJECT], INJECT)
        except InvalidArgument as exc:
            c.problem(INJECT, str(exc))
    elif ours.keys() - {STATUS}:
        c.notes.append(f"annotations under {prefix} are set but {prefix}{INJECT} is not; nothing is injected until "
                       f"{prefix}{INJECT}: \"true\"")

    files = _files(per_file, c)
    mode = AgentMode.INIT
    if AGENT_MODE in fixed:
        try:
            mode = AgentMode(fixed[AGENT_MODE])
        except ValueError:
            c.problem(AGENT_MODE, f"must be one of {', '.join(m.value for m in AgentMode)}, got "
                                  f"{_shown(fixed[AGENT_MODE])}")

    mount_path = None
    if MOUNT_PATH in fixed:
        try:
            mount_path = check_mount_path(fixed[MOUNT_PATH])
        except InvalidArgument as exc:
            c.problem(MOUNT_PATH, str(exc))

    containers = None
    if CONTAINERS in fixed:
        names = [n.strip() for n in fixed[CONTAINERS].split(",") if n.strip()]
        bad = [n for n in names if len(n) > 63 or not _CONTAINER_NAME.fullmatch(n)]
        if not names or bad or len(names) > MAX_CONTAINER_NAMES:
            c.problem(CONTAINERS, "must be a comma-separated list of container names (at most "
                                  f"{MAX_CONTAINER_NAMES}){'; not a container name: ' + _shown(bad[0]) if bad else ''}")
        elif len(set(names)) != len(names):
            c.problem(CONTAINERS, "names a container twice")
        else:
            containers = tuple(names)

    tmpfs = None
    if TMPFS_SIZE in fixed:
        try:
            size = parse_quantity(fixed[TMPFS_SIZE], what="tmpfs size", maximum=MAX_TMPFS_BYTES)
            if size < MIN_TMPFS_BYTES:
                raise InvalidArgument(f"tmpfs size must be at least {MIN_TMPFS_BYTES // 1024}Ki")
            tmpfs = fixed[TMPFS_SIZE]
        except InvalidArgument as exc:
            c.problem(TMPFS_SIZE, str(exc))

    resources = _resources(fixed, c)
    reload = _reload(fixed, mode, c)

    deadline = None
    if DEADLINE in fixed:
        text = fixed[DEADLINE]
        if text.isdigit() and 1 <= int(text) <= MAX_DEADLINE_SECONDS:
            deadline = float(text)
        else:
            c.problem(DEADLINE, f"must be a whole number of seconds from 1 to {MAX_DEADLINE_SECONDS}")

    if inject and not files and not any(name.startswith(FAMILIES) for name in ours):
        c.problems.append(f"{prefix}{INJECT} is \"true\" but no file is requested; add "
                          f"{prefix}{SECRET}NAME: NAMESPACE/PATH or {prefix}{TEMPLATE}NAME")
    value = PodAnnotations(present=True, inject=inject, status=fixed.get(STATUS), files=files, agent_mode=mode,
                           mount_path=mount_path, containers=containers, tmpfs_size=tmpfs, resources=resources,
                           reload=reload, deadline_seconds=deadline)
    return Parsed(value, tuple(c.problems), tuple(c.notes))


def _files(per_file: dict[str, dict[str, str]], c: _Collector) -> tuple[FileRequest, ...]:
    secrets, templates = per_file[SECRET], per_file[TEMPLATE]
    for name in sorted(secrets.keys() & templates.keys()):
        c.problem(f"{TEMPLATE}{name}", f"file {name} is also requested by {c.prefix}{SECRET}{name}; each file "
                                       "has one source: rename one of them")
    names = sorted(secrets.keys() | templates.keys())
    for family in (FORMAT, MODE, OWNER):
        for name in sorted(per_file[family].keys() - set(names)):
            c.problem(f"{family}{name}", f"there is no file {name}: add {c.prefix}{SECRET}{name} or "
                                         f"{c.prefix}{TEMPLATE}{name}, or fix the name"
                                         + (f" (files: {', '.join(names[:10])})" if names else ""))
    for name in sorted(per_file[FORMAT].keys() & secrets.keys()):
        c.problem(f"{FORMAT}{name}", f"file {name} holds one secret as it is stored; a format applies to "
                                     f"{c.prefix}{TEMPLATE}{name}")
    if len(names) > MAX_FILES:
        c.problems.append(f"more than MAX_FILES={MAX_FILES} files are requested")
        return ()
    files = []
    for name in names:
        try:
            check_file_name(name)
        except InvalidArgument as exc:
            family = SECRET if name in secrets else TEMPLATE
            c.problem(f"{family}{name}", f"{exc}")
            continue
        request = FileRequest(name)
        ok = True
        try:
            if name in secrets:
                request = FileRequest(name, secret=SecretRef.parse(secrets[name].strip()))
            else:
                request = FileRequest(name, render=_render(templates[name], per_file[FORMAT].get(name)))
        except InvalidArgument as exc:
            c.problem(f"{SECRET if name in secrets else TEMPLATE}{name}", str(exc))
            ok = False
        mode = uid = gid = None
        if name in per_file[MODE]:
            try:
                mode = parse_mode(per_file[MODE][name].strip())
            except InvalidArgument as exc:
                c.problem(f"{MODE}{name}", str(exc))
                ok = False
        if name in per_file[OWNER]:
            try:
                uid, gid = _owner(per_file[OWNER][name].strip())
            except InvalidArgument as exc:
                c.problem(f"{OWNER}{name}", str(exc))
                ok = False
        if ok:
            files.append(FileRequest(name, secret=request.secret, render=request.render, mode=mode, uid=uid,
                                     gid=gid))
    return tuple(files)


def _resources(fixed: Mapping[str, str], c: _Collector) -> Resources:
    values: dict[str, str | None] = {}
    for name, maximum in ((CPU_REQUEST, MAX_CPU_CORES), (CPU_LIMIT, MAX_CPU_CORES),
                          (MEMORY_REQUEST, MAX_MEMORY_BYTES), (MEMORY_LIMIT, MAX_MEMORY_BYTES)):
        if name in fixed:
            try:
                parse_quantity(fixed[name], what=name.replace("-", " "), maximum=maximum)
                values[name] = fixed[name]
            except InvalidArgument as exc:
                c.problem(name, str(exc))
    return Resources(cpu_request=values.get(CPU_REQUEST), memory_request=values.get(MEMORY_REQUEST),
                     cpu_limit=values.get(CPU_LIMIT), memory_limit=values.get(MEMORY_LIMIT))


def _reload(fixed: Mapping[str, str], mode: AgentMode, c: _Collector) -> Reload:
    given = [n for n in (RELOAD_SIGNAL, RELOAD_PROCESS, RELOAD_URL) if n in fixed]
    if not given:
        return Reload()
    if mode is AgentMode.INIT:
        c.problem(given[0], f"reloading needs {c.prefix}{AGENT_MODE}: sidecar or native-sidecar (an init "
                            "container exits once the files are written, so nothing would ever reload)")
        return Reload()
    sig = process = url = None
    if (RELOAD_SIGNAL in fixed) != (RELOAD_PROCESS in fixed):
        missing = RELOAD_PROCESS if RELOAD_SIGNAL in fixed else RELOAD_SIGNAL
        c.problem(missing, f"is needed with {c.prefix}{RELOAD_SIGNAL if missing == RELOAD_PROCESS else RELOAD_PROCESS}"
                           " (which signal, to which process)")
    elif RELOAD_SIGNAL in fixed:
        try:
            sig = check_reload_signal(fixed[RELOAD_SIGNAL].strip())
        except InvalidArgument as exc:
            c.problem(RELOAD_SIGNAL, str(exc))
        process = fixed[RELOAD_PROCESS].strip()
        if not re.fullmatch(r"[A-Za-z0-9._+-]{1,64}", process):
            c.problem(RELOAD_PROCESS, "must be a process name (letters, digits, '.', '_', '+', '-'; at most 64)")
            process = None
    if RELOAD_URL in fixed:
        url = fixed[RELOAD_URL].strip()
        if len(url) > MAX_URL_BYTES or not url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")) \
                or not url.isprintable() or " " in url:
            c.problem(RELOAD_URL, "must be an http:// URL on the pod's loopback (127.0.0.1, localhost or [::1]), "
                                  "such as http://127.0.0.1:8080/-/reload")
            url = None
    return Reload(signal=sig, process=process, url=url)
