"""The breadth benchmark's corpus: fake credentials per vendor family, generated at run time, written to files.

A `Family` names a vendor and lists its credential forms (`Variant`): the variable a user would keep the
value in, and a template of the documented format (prefix, alphabet, length) or a function where the format
carries structure or a checksum. The families themselves are in `breadth_families.py`.

Template fields: `{kind:N}` or `{kind:N-M}` draws N (N..M) characters of an alphabet (`KINDS`), `{uuid}` a
random UUID4, `{UUID}` the same in upper case. Literal text is the vendor's fixed prefix or separator.
`write_corpus` places every value in a realistic context line (env file, YAML, JSON, Python, JavaScript or
shell), one file per family, and returns where each sample went; nothing credential-shaped is stored here.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import string
import tarfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
ALNUM = string.ascii_letters + string.digits
KINDS: dict[str, str] = {
    "hex": "0123456789abcdef",
    "HEX": "0123456789ABCDEF",
    "an": ALNUM,  # mixed-case letters and digits
    "lan": string.ascii_lowercase + string.digits,
    "uan": string.ascii_uppercase + string.digits,
    "b64": ALNUM + "+/",
    "b64u": ALNUM + "-_",
    "d": string.digits,
    "low": string.ascii_lowercase,
    "up": string.ascii_uppercase,
    "alpha": string.ascii_letters,
    "b32": string.ascii_uppercase + "234567",
    "b32l": string.ascii_lowercase + "234567",
    "bech32": "qpzry9x8gf2tvdw0s3jn54khce6mua7l".upper(),
}
#: Context styles a family file can be written in; raw families bring their own file content.
STYLES = ("env", "yaml", "json", "py", "js", "sh")
EXTENSIONS = {"env": ".env", "yaml": ".yaml", "json": ".json", "py": ".py", "js": ".js", "sh": ".sh", "raw": ""}
#: Environment qualifiers put in front of the variable name so several samples can share one file.
QUALIFIERS = ("", "PROD_", "STAGING_", "BACKUP_", "CI_", "DEV_", "EU_", "US_", "OLD_", "NEW_", "QA_", "DR_")
MAX_TEMPLATE_FIELD = 4096

_FIELD = re.compile(r"\{(uuid|UUID|[A-Za-z0-9]+:\d+(?:-\d+)?)\}")

Generator = Callable[[random.Random], str]


def pick(rng: random.Random, kind: str, n: int) -> str:
    return "".join(rng.choice(KINDS[kind]) for _ in range(n))


def render(template: str, rng: random.Random) -> str:
    """Fill every `{kind:N}` / `{kind:N-M}` / `{uuid}` field of a template with seeded random characters."""

    def one(m: re.Match[str]) -> str:
        spec = m.group(1)
        if spec in ("uuid", "UUID"):
            u = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            return u.upper() if spec == "UUID" else u
        kind, _, count = spec.partition(":")
        if kind not in KINDS:
            raise ValueError(f"unknown template kind {kind!r}")
        lo, _, hi = count.partition("-")
        n = rng.randint(int(lo), int(hi)) if hi else int(lo)
        if n > MAX_TEMPLATE_FIELD:
            raise ValueError("template field longer than MAX_TEMPLATE_FIELD")
        return pick(rng, kind, n)

    return _FIELD.sub(one, template)


# -- the families -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variant:
    """One documented credential form: where people keep it (the variable) and how it is built."""

    var: str
    make: str | Generator
    raw: bool = False  # the value is a whole file body (PEM, manifest, config file), not an assignment

    def generate(self, rng: random.Random) -> str:
        return render(self.make, rng) if isinstance(self.make, str) else self.make(rng)


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    variants: tuple[Variant, ...]
    source: str = ""  # the vendor's page (docs, changelog) describing the credential, where one is named
    filename: str = ""  # raw families: the file name the content usually has
    styles: tuple[str, ...] = STYLES  # where the value is usually kept (framework settings live in env files)
    # Non-secret settings that sit next to the credential in real configs (account id, host, client id): written
    # first in the family's file, not planted. Some detectors only report a secret with its companion.
    companions: tuple[Variant, ...] = ()

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")

    @property
    def raw(self) -> bool:
        return any(v.raw for v in self.variants)


def F(  # the table in breadth_families reads better with short names
    name: str,
    *variants: tuple[str, str | Generator],
    source: str = "",
    styles: tuple[str, ...] = STYLES,
    companions: tuple[tuple[str, str | Generator], ...] = (),
) -> Family:
    return Family(
        name,
        tuple(Variant(var, make) for var, make in variants),
        source,
        styles=styles,
        companions=tuple(Variant(var, make) for var, make in companions),
    )


#: Settings whose variable name is fixed by a framework or tool: kept as is, in env files and shell exports.
ENV_ONLY = ("env", "sh")


def R(name: str, make: Generator, filename: str, source: str = "") -> Family:
    return Family(name, (Variant("", make, raw=True),), source, filename)


# -- writing the corpus ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Planted:
    family: str
    variant: str  # the variable name (or "raw")
    path: str  # relative to the corpus root
    lines: tuple[int, int]  # first and last line (1-based) of the sample
    value: str

    def __repr__(self) -> str:  # never the value
        return f"Planted({self.family!r}, {self.path!r}:{self.lines[0]})"


@dataclass(slots=True)
class Corpus:
    root: Path
    planted: list[Planted] = field(default_factory=list)

    def by_family(self) -> dict[str, list[Planted]]:
        out: dict[str, list[Planted]] = {}
        for p in self.planted:
            out.setdefault(p.family, []).append(p)
        return out


def _var_name(var: str, style: str, qualifier: str) -> str:
    name = qualifier + var
    if style == "yaml":
        return name.lower()
    if style in ("json", "js"):
        head, *rest = name.lower().split("_")
        return head + "".join(w.capitalize() for w in rest)
    return name


def context_line(style: str, var: str, value: str) -> str:
    """One assignment of `value` to `var` as it reads in a file of `style`."""
    if style == "env":
        return f"{var}={value}"
    if style == "sh":
        # Single quotes where double quotes would let the shell expand a `$` in the value.
        return f"export {var}='{value}'" if "$" in value else f'export {var}="{value}"'
    if style == "yaml":
        return f'{var}: "{value}"'
    if style == "json":
        return f"  {json.dumps(var)}: {json.dumps(value)},"
    if style == "py":
        return f'{var} = "{value}"'
    if style == "js":
        return f'const {var} = "{value}";'
    raise ValueError(f"unknown style {style!r}")


def samples_for(family: Family, per_family: int) -> int:
    """Every documented variant is planted at least once; at least `per_family` samples in all."""
    return max(per_family, len(family.variants))


def family_file(family: Family, style: str, index: int = 0) -> str:
    """Where a family's samples go: one file per family; raw families (whole files) one file per sample."""
    if family.raw:
        return f"{family.slug}/{index + 1}/{family.filename}"
    return f"{family.slug}/config{EXTENSIONS[style]}" if style != "env" else f"{family.slug}/.env"


def build_family(
    family: Family, rng: random.Random, per_family: int, style: str
) -> tuple[dict[str, str], list[Planted]]:
    """The text of a family's file(s), by relative path, and where each sample sits."""
    files: dict[str, str] = {}
    planted: list[Planted] = []
    lines: list[str] = []
    path = family_file(family, style)
    for companion in family.companions:
        lines.append(context_line(style, _var_name(companion.var, style, ""), companion.generate(rng)))
    for i in range(samples_for(family, per_family)):
        variant = family.variants[i % len(family.variants)]
        value = variant.generate(rng)
        if family.raw:
            body = value.split("\n")
            files[family_file(family, style, i)] = "\n".join(body) + "\n"
            planted.append(Planted(family.name, "file", family_file(family, style, i), (1, len(body)), value))
            continue
        var = _var_name(variant.var, style, QUALIFIERS[(i // len(family.variants)) % len(QUALIFIERS)])
        lines.append(context_line(style, var, value))
        planted.append(Planted(family.name, variant.var, path, (len(lines), len(lines)), value))
    if lines:
        if style == "json":
            # The object's braces take a line each: samples move down one line.
            planted = [Planted(p.family, p.variant, p.path, (p.lines[0] + 1, p.lines[1] + 1), p.value) for p in planted]
            lines = ["{", *lines[:-1], lines[-1].rstrip(","), "}"]
        files[path] = "\n".join(lines) + "\n"
    return files, planted


def write_corpus(root: Path, seed: int, per_family: int, families: Sequence[Family]) -> Corpus:
    """One file per family under `root`, every value from `random.Random(seed)`; returns what went where."""
    if per_family < 1:
        raise ValueError("per_family must be at least 1")
    rng = random.Random(seed)
    corpus = Corpus(root)
    for family in families:
        style = "raw" if family.raw else rng.choice(family.styles)
        files, planted = build_family(family, rng, per_family, style)
        for rel, text in files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            # Every value is ASCII except binary files (PKCS#12), whose bytes travel as latin-1 text.
            target.write_bytes(text.encode("latin-1"))
        corpus.planted.extend(planted)
    return corpus


#: Where the corpus sits inside the docker-archive image (`write_image`).
IMAGE_ROOT = "srv/breadth"


def write_image(root: Path, dest: Path) -> Path:
    """The corpus as a one-layer `docker save` archive (files under IMAGE_ROOT), for ours' image mode."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(f"{IMAGE_ROOT}/{path.relative_to(root).as_posix()}")
            data = path.read_bytes()
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tf.addfile(info, io.BytesIO(data))
    blob = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(blob).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "COPY breadth corpus"}],
    }).encode()  # fmt: skip
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["breadth:latest"], "Layers": ["layer0/layer.tar"]}])
    with tarfile.open(dest, "w") as out:
        for name, data in ((config_name, config), ("layer0/layer.tar", blob), ("manifest.json", manifest.encode())):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            out.addfile(info, io.BytesIO(data))
    return dest
