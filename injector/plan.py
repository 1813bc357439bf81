"""The agent's plan: what the webhook decided for a pod and the agent carries out, as one JSON document.

The webhook puts it in the agent container's environment (`SECRETSVC_AGENT_PLAN`); the agent reads it from
there or from `--plan-file`. Both sides parse it with `parse_plan` and write it with `Plan.to_json`, so the
format has one definition. docs/injector.md ("The agent's plan") documents it field by field:

    {
      "version": 1,
      "service": {"addr": "secretsvc.secretsvc.svc:8290", "ca_file": "/var/run/secretsvc/tls/ca.pem",
                  "token_file": "/var/run/secretsvc/token/token", "server_name": null},
      "target_dir": "/var/run/secrets/secretsvc",
      "mode": "init",
      "files": [
        {"name": "db-password", "mode": "0400", "uid": 1000, "gid": 1000,
         "secret": "payments/db/password"},
        {"name": "app.env", "mode": "0440", "uid": 1000, "gid": 2000,
         "render": {"format": "env", "items": {"DB_PASSWORD": "payments/db/password@3"}}},
        {"name": "config.yaml", "mode": "0400", "uid": null, "gid": null,
         "render": {"format": "template", "template": "password: {{ secret('payments/db/password') }}"}}
      ],
      "reload": {"signal": "SIGHUP", "process": "nginx", "url": null},
      "deadline_seconds": 120
    }

A secret reference is `NAMESPACE/PATH` or `NAMESPACE/PATH@VERSION`, validated as strictly as the service
validates names. Every length and count is bounded (`limits` below), because the plan comes from pod
annotations, which whoever may create pods writes.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from secretsvc.errors import InvalidArgument
from secretsvc.service.naming import split_ref

PLAN_VERSION = 1
ENV_VAR = "SECRETSVC_AGENT_PLAN"

MAX_PLAN_BYTES = 256 * 1024
MAX_FILES = 64
MAX_ITEMS_PER_FILE = 64
MAX_FILE_NAME_BYTES = 128
MAX_TEMPLATE_BYTES = 64 * 1024
MAX_PATH_BYTES = 1024
MAX_ADDR_BYTES = 512
MAX_URL_BYTES = 2048
MAX_DEADLINE_SECONDS = 3600
MAX_ID = 2**31 - 1  # uid/gid

DEFAULT_FILE_MODE = 0o400
DEFAULT_DEADLINE_SECONDS = 120.0

_FILE_NAME = re.compile(r"[A-Za-z0-9._-]+")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PROCESS_NAME = re.compile(r"[A-Za-z0-9._+-]{1,64}")


class AgentMode(StrEnum):
    INIT = "init"  # an init container: write every file, exit 0
    SIDECAR = "sidecar"  # a regular container beside the app: write, then keep files current
    NATIVE_SIDECAR = "native-sidecar"  # an init container with restartPolicy Always (Kubernetes 1.29+)


class RenderFormat(StrEnum):
    ENV = "env"  # KEY="value" lines (dotenv: double quotes, backslash escapes)
    JSON = "json"  # one object of strings
    YAML = "yaml"  # one mapping of strings
    TEMPLATE = "template"  # Jinja2, sandboxed; secret('NAMESPACE/PATH[@VERSION]') inserts a value


@dataclass(frozen=True, slots=True)
class SecretRef:
    namespace: str
    path: str
    version: int | None = None  # None: the current version

    @classmethod
    def parse(cls, text: str) -> SecretRef:
        """`NAMESPACE/PATH` or `NAMESPACE/PATH@VERSION` (VERSION >= 1)."""
        if not isinstance(text, str):
            raise InvalidArgument("a secret reference must be a string NAMESPACE/PATH[@VERSION]")
        ref, at, version_text = text.partition("@")
        version = None
        if at:
            if not version_text.isdigit() or len(version_text) > 19 or int(version_text) < 1:
                raise InvalidArgument(f"secret reference {text[:200]!r}: the version after '@' must be a number "
                                      "from 1")
            version = int(version_text)
        namespace, path = split_ref(ref)
        return cls(namespace, path, version)

    def sort_key(self) -> tuple[str, str, int]:
        return (self.namespace, self.path, self.version or 0)

    def __str__(self) -> str:
        base = f"{self.namespace}/{self.path}"
        return base if self.version is None else f"{base}@{self.version}"


@dataclass(frozen=True, slots=True)
class Render:
    format: RenderFormat
    items: Mapping[str, SecretRef] = field(default_factory=dict)  # env, json, yaml: key -> secret
    template: str = ""  # template only

    def refs(self) -> tuple[SecretRef, ...]:
        """Every secret this file needs, in a stable order."""
        if self.format is RenderFormat.TEMPLATE:
            from injector.render import template_refs

            return template_refs(self.template)
        return tuple(sorted(set(self.items.values()), key=SecretRef.sort_key))


@dataclass(frozen=True, slots=True)
class FileSpec:
    name: str  # a file name inside target_dir: no '/', not '.' or '..', not starting with '.'
    secret: SecretRef | None = None  # the value as it is stored, byte for byte
    render: Render | None = None  # several values rendered into one file
    mode: int = DEFAULT_FILE_MODE
    uid: int | None = None  # None: the agent's own
    gid: int | None = None

    def refs(self) -> tuple[SecretRef, ...]:
        if self.secret is not None:
            return (self.secret,)
        assert self.render is not None
        return self.render.refs()


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    addr: str
    ca_file: str | None = None  # None: plaintext, only for a loopback address
    token_file: str | None = None  # the projected service-account token, re-read when it changes
    server_name: str | None = None  # the name to check in the server's certificate, if not the address's host


@dataclass(frozen=True, slots=True)
class ReloadSpec:
    """How a sidecar tells the app that files changed: a signal to a process found by name (the pod shares its
    process namespace), an HTTP POST to a URL on the pod's loopback, or neither."""

    signal: str | None = None  # e.g. "SIGHUP"
    process: str | None = None  # the process name (comm) to signal
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    service: ServiceSpec
    target_dir: str
    files: tuple[FileSpec, ...]
    mode: AgentMode = AgentMode.INIT
    reload: ReloadSpec = field(default_factory=ReloadSpec)
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS

    def refs(self) -> tuple[SecretRef, ...]:
        """Every secret the plan needs, each once, sorted: what the agent fetches in one round trip."""
        return tuple(sorted({ref for spec in self.files for ref in spec.refs()}, key=SecretRef.sort_key))

    def to_json(self) -> str:
        return json.dumps(_plan_json(self), sort_keys=True, separators=(",", ":"))


# -- writing ------------------------------------------------------------------------------------------------

def _file_json(spec: FileSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": spec.name, "mode": f"{spec.mode:04o}", "uid": spec.uid, "gid": spec.gid}
    if spec.secret is not None:
        out["secret"] = str(spec.secret)
    elif spec.render is not None:
        render: dict[str, Any] = {"format": spec.render.format.value}
        if spec.render.format is RenderFormat.TEMPLATE:
            render["template"] = spec.render.template
        else:
            render["items"] = {k: str(v) for k, v in spec.render.items.items()}
        out["render"] = render
    return out


def _plan_json(plan: Plan) -> dict[str, Any]:
    s = plan.service
    return {
        "version": PLAN_VERSION,
        "service": {"addr": s.addr, "ca_file": s.ca_file, "token_file": s.token_file, "server_name": s.server_name},
        "target_dir": plan.target_dir,
        "mode": plan.mode.value,
        "files": [_file_json(f) for f in plan.files],
        "reload": {"signal": plan.reload.signal, "process": plan.reload.process, "url": plan.reload.url},
        "deadline_seconds": plan.deadline_seconds,
    }


# -- reading ------------------------------------------------------------------------------------------------

class _Reader:
    """Typed access to one JSON object, with errors that name the field."""

    def __init__(self, data: object, where: str, known: tuple[str, ...]) -> None:
        if not isinstance(data, dict):
            raise InvalidArgument(f"plan: {where} must be an object")
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise InvalidArgument(f"plan: {where} has unknown field(s) {', '.join(map(repr, unknown[:5]))}")
        self._data = data
        self._where = where

    def raw(self, key: str) -> object:
        return self._data.get(key)

    def text(self, key: str, max_bytes: int, *, required: bool = False, multiline: bool = False) -> str | None:
        value = self._data.get(key)
        if value is None:
            if required:
                raise InvalidArgument(f"plan: {self._where}.{key} is required")
            return None
        if not isinstance(value, str) or not value:
            raise InvalidArgument(f"plan: {self._where}.{key} must be a non-empty string")
        if len(value.encode("utf-8", "surrogatepass")) > max_bytes:
            raise InvalidArgument(f"plan: {self._where}.{key} is longer than {max_bytes} bytes")
        if not (value.replace("\n", "").replace("\t", "") if multiline else value).isprintable():
            raise InvalidArgument(f"plan: {self._where}.{key} has control characters")
        return value

    def identifier(self, key: str) -> int | None:
        value = self._data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
            raise InvalidArgument(f"plan: {self._where}.{key} must be an integer 0..{MAX_ID}")
        return value


def parse_mode(text: str) -> int:
    """A file mode in octal ("0400", "440"): owner read at least, nothing executable, no special bits."""
    if not isinstance(text, str) or not re.fullmatch(r"0?[0-7]{3}", text):
        raise InvalidArgument(f"file mode {str(text)[:16]!r} must be three octal digits such as 0400 or 0440")
    mode = int(text, 8)
    if mode & 0o111:
        raise InvalidArgument(f"file mode {text} makes the file executable; secrets are data (use 0400 or 0440)")
    if not mode & 0o400:
        raise InvalidArgument(f"file mode {text} does not let the owner read the file")
    return mode


def check_file_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidArgument("file name is empty")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_FILE_NAME_BYTES:
        raise InvalidArgument(f"file name {name[:64]!r}... is longer than MAX_FILE_NAME_BYTES={MAX_FILE_NAME_BYTES}")
    if not _FILE_NAME.fullmatch(name) or name.startswith("."):
        # A leading dot is kept for the agent's own temporary and .version files.
        raise InvalidArgument(f"file name {name[:64]!r} may only hold letters, digits, '.', '_', '-' and may not "
                              "start with '.' (it names a file directly inside the mount)")
    return name


def check_env_key(key: str) -> str:
    if not isinstance(key, str) or not _ENV_KEY.fullmatch(key) or len(key) > 128:
        raise InvalidArgument(f"key {str(key)[:64]!r} must be a variable name: letters, digits, '_', not "
                              "starting with a digit, at most 128 characters")
    return key


def check_reload_signal(name: str) -> str:
    upper = name.upper()
    full = upper if upper.startswith("SIG") else f"SIG{upper}"
    if full not in signal.Signals.__members__ or full in {"SIGKILL", "SIGSTOP"}:
        raise InvalidArgument(f"reload signal {name[:16]!r} is not a signal name such as SIGHUP or SIGUSR1")
    return full


def _render(data: object, where: str) -> Render:
    r = _Reader(data, where, ("format", "items", "template"))
    fmt_text = r.text("format", 16, required=True) or ""
    try:
        fmt = RenderFormat(fmt_text)
    except ValueError:
        raise InvalidArgument(f"plan: {where}.format must be one of {', '.join(RenderFormat)}") from None
    if fmt is RenderFormat.TEMPLATE:
        template = r.text("template", MAX_TEMPLATE_BYTES, required=True, multiline=True)
        assert template is not None
        if r.raw("items") is not None:
            raise InvalidArgument(f"plan: {where} is a template: it takes no items")
        render = Render(fmt, template=template)
        render.refs()  # a template that does not parse, or names a secret other than literally, is refused here
        return render
    items = r.raw("items")
    if not isinstance(items, dict) or not items:
        raise InvalidArgument(f"plan: {where}.items must be a non-empty object KEY -> NAMESPACE/PATH[@VERSION]")
    if len(items) > MAX_ITEMS_PER_FILE:
        raise InvalidArgument(f"plan: {where}.items holds more than MAX_ITEMS_PER_FILE={MAX_ITEMS_PER_FILE}")
    if r.raw("template") is not None:
        raise InvalidArgument(f"plan: {where} is {fmt.value}: it takes items, not a template")
    return Render(fmt, items={check_env_key(k): SecretRef.parse(v) for k, v in items.items()})


def _file(data: object, where: str) -> FileSpec:
    r = _Reader(data, where, ("name", "mode", "uid", "gid", "secret", "render"))
    name = check_file_name(r.text("name", MAX_FILE_NAME_BYTES, required=True) or "")
    mode_text = r.text("mode", 8)
    mode = DEFAULT_FILE_MODE if mode_text is None else parse_mode(mode_text)
    secret_text, render_data = r.raw("secret"), r.raw("render")
    if (secret_text is None) == (render_data is None):
        raise InvalidArgument(f"plan: {where} ({name}) needs exactly one of secret and render")
    return FileSpec(
        name=name, mode=mode, uid=r.identifier("uid"), gid=r.identifier("gid"),
        secret=None if secret_text is None else SecretRef.parse(secret_text),  # type: ignore[arg-type]
        render=None if render_data is None else _render(render_data, f"{where}.render"),
    )


def _service(data: object) -> ServiceSpec:
    r = _Reader(data, "service", ("addr", "ca_file", "token_file", "server_name"))
    return ServiceSpec(
        addr=r.text("addr", MAX_ADDR_BYTES, required=True) or "",
        ca_file=r.text("ca_file", MAX_PATH_BYTES), token_file=r.text("token_file", MAX_PATH_BYTES),
        server_name=r.text("server_name", MAX_ADDR_BYTES),
    )


def _reload(data: object) -> ReloadSpec:
    if data is None:
        return ReloadSpec()
    r = _Reader(data, "reload", ("signal", "process", "url"))
    sig, process, url = r.text("signal", 16), r.text("process", 64), r.text("url", MAX_URL_BYTES)
    if (sig is None) != (process is None):
        raise InvalidArgument("plan: reload.signal and reload.process go together (which signal, to which process)")
    if process is not None and not _PROCESS_NAME.fullmatch(process):
        raise InvalidArgument(f"plan: reload.process {process[:64]!r} must be a process name (letters, digits, "
                              "'.', '_', '+', '-')")
    if url is not None and not url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
        raise InvalidArgument("plan: reload.url must be an http:// URL on the pod's loopback (127.0.0.1, "
                              "localhost or [::1])")
    return ReloadSpec(signal=None if sig is None else check_reload_signal(sig), process=process, url=url)


def parse_plan(text: str | bytes) -> Plan:
    """The plan in `text`, or `InvalidArgument` naming the first thing wrong."""
    if len(text) > MAX_PLAN_BYTES:
        raise InvalidArgument(f"plan is larger than MAX_PLAN_BYTES={MAX_PLAN_BYTES}")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidArgument(f"plan is not JSON: {str(exc)[:200]}") from None
    r = _Reader(data, "plan", ("version", "service", "target_dir", "mode", "files", "reload", "deadline_seconds"))
    if r.raw("version") != PLAN_VERSION:
        raise InvalidArgument(f"plan: version must be {PLAN_VERSION} (this agent reads version {PLAN_VERSION})")
    target_dir = r.text("target_dir", MAX_PATH_BYTES, required=True) or ""
    if not target_dir.startswith("/") or "/../" in f"{target_dir}/" or "\x00" in target_dir:
        raise InvalidArgument("plan: target_dir must be an absolute path without '..'")
    mode_text = r.text("mode", 32) or AgentMode.INIT.value
    try:
        mode = AgentMode(mode_text)
    except ValueError:
        raise InvalidArgument(f"plan: mode must be one of {', '.join(AgentMode)}") from None
    files_data = r.raw("files")
    if not isinstance(files_data, list) or not files_data:
        raise InvalidArgument("plan: files must be a non-empty list")
    if len(files_data) > MAX_FILES:
        raise InvalidArgument(f"plan: files holds more than MAX_FILES={MAX_FILES}")
    files = tuple(_file(item, f"files[{i}]") for i, item in enumerate(files_data))
    names = [f.name for f in files]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidArgument(f"plan: file name(s) {', '.join(duplicates)} appear more than once")
    deadline = r.raw("deadline_seconds")
    if deadline is None:
        deadline = DEFAULT_DEADLINE_SECONDS
    if isinstance(deadline, bool) or not isinstance(deadline, int | float) or not 0 < deadline <= MAX_DEADLINE_SECONDS:
        raise InvalidArgument(f"plan: deadline_seconds must be a number 0..{MAX_DEADLINE_SECONDS}")
    return Plan(service=_service(r.raw("service")), target_dir=target_dir, files=files, mode=mode,
                reload=_reload(r.raw("reload")), deadline_seconds=float(deadline))
