"""The leak detector benchmark's corpus: one docker-archive image with real noise and planted fake secrets.

The plan (what is planted where) is a pure function of the seed, so the benchmark can rebuild it to score
any run without the secrets ever being written outside the work directory. Noise is real files from this
machine's /usr/lib (mostly binaries) and /usr/share (mostly text), chosen by the same seed, so every tool
reads the same bytes. Layers are written with tarfile straight to disk and compressed by the `gzip` (or
`zstd`) program, so a 1 GB image never has to fit in memory.

Layer 0 holds half the noise, the planted files, the files later deleted or overwritten, the nested
archives and the decoys; layer 1 holds more noise, the whiteouts (single-file and opaque-directory) and the
overwriting files; layer 2 holds the rest of the noise. Config Env, Labels and history carry planted values
too. Locations are named as `secretsvc scan` reports them.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import random
import sqlite3
import string
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import fakecreds  # the project's seeded credential generators

#: Largest noise file taken from the machine: bigger ones would dominate a small corpus.
MAX_NOISE_FILE_BYTES = 16 * 1024 * 1024
#: Noise roots, each contributing half of the noise bytes.
NOISE_ROOTS = ("/usr/lib", "/usr/share")
#: Path prefixes of the planted material inside layer 0.
FILE_DIR = "srv/app/conf"
DELETED_DIR = "srv/old"
OPAQUE_DIR = "var/cache/app"
OVERWRITTEN_DIR = "etc/app"
NESTED_DIR = "opt/app/lib"
DECOY_DIR = "srv/app/decoys"
MTIME = 1_700_000_000

LOCATIONS = (
    "file",
    "deleted_file",
    "overwritten_file",
    "config_env",
    "config_label",
    "config_history",
    "nested_archive",
)


@dataclass(frozen=True, slots=True)
class Planted:
    """One planted secret: where it is (as `secretsvc scan` names it) and its value, kept in memory only."""

    item_id: str
    location: str  # one of LOCATIONS; nested_archive findings are reported by ours as `file`
    rule_id: str
    path: str  # ours' path: layer path, `outer!inner`, `config.Env[3]`, `config.Labels.k`, `history[4].created_by`
    layer_index: int | None
    file_path: str  # the file holding it inside the layer (the outer archive for nested); "" for config
    lines: tuple[int, int] | None  # 1-based span of the secret in its (inner) file; None for config
    secret: str
    alts: tuple[str, ...] = ()  # other forms a scanner may report (decoded base64, the whole URI)

    def __repr__(self) -> str:
        return f"Planted({self.item_id!r}, {self.location}, {self.rule_id}, {self.path!r})"


@dataclass(frozen=True, slots=True)
class Decoy:
    item_id: str
    path: str  # layer path of the decoy file, or config entry path
    text: str

    def __repr__(self) -> str:
        return f"Decoy({self.item_id!r}, {self.path!r})"


@dataclass(frozen=True, slots=True)
class LayerFile:
    path: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything planted, derived from the seed alone."""

    seed: int
    planted: tuple[Planted, ...]
    decoys: tuple[Decoy, ...]
    layer0: tuple[LayerFile, ...]
    layer1: tuple[LayerFile, ...]  # overwriting files and whiteout markers
    env: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    history: tuple[dict[str, object], ...]

    def digest(self) -> str:
        """A hash of the plan that names no secret, to tell whether a cached corpus is this plan's."""
        h = hashlib.sha256()
        for f in (*self.layer0, *self.layer1):
            h.update(f.path.encode() + b"\0" + hashlib.sha256(f.data).digest())
        h.update(json.dumps([self.env, self.labels, self.history], sort_keys=True).encode())
        return h.hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Plan(seed={self.seed}, {len(self.planted)} planted, {len(self.decoys)} decoys)"


@dataclass(frozen=True, slots=True)
class Corpus:
    """A written corpus: the image, its compressed layers (as stored in the archive) and their sizes."""

    root: Path
    image: Path  # docker-archive with gzip (or zstd) layers
    layer_blobs: tuple[Path, ...]
    layer_tar_bytes: tuple[int, ...]  # uncompressed size of each layer
    noise_files: int
    noise_bytes: int
    sample_dir: Path  # planted material plus a slice of noise, for detect-secrets

    @property
    def total_tar_bytes(self) -> int:
        return sum(self.layer_tar_bytes)


# -- the plan --------------------------------------------------------------------------------------------


def _file_name(sample: fakecreds.Sample) -> str:
    """A natural file name for a sample, from its rule and the shape of its text."""
    rid, text = sample.rule_id, sample.text
    by_rule = {
        "aws-access-key-id": "credentials",
        "aws-secret-access-key": "credentials",
        "gcp-service-account-key": "service-account.json",
        "npm-token": ".npmrc",
        "pypi-token": ".pypirc",
        "docker-config-auth": "config.json",
        "kubeconfig-client-key": "kubeconfig",
        "kubeconfig-token": "kubeconfig",
        "private-key": "id_key.pem",
        "netrc-password": ".netrc",
        "git-credentials": ".git-credentials",
        "jwt": "call-api.sh",
    }
    if rid in by_rule:
        return by_rule[rid]
    if text.startswith("{"):
        return "settings.json"
    if text.startswith("import os"):
        return "settings.py"
    if text.startswith("cd /srv/app"):
        return "deploy.sh"
    if text.startswith("[default]"):
        return "app.ini"
    if text.startswith("service:"):
        return "values.yaml"
    return "app.env"


def _line_span(text: str, secret: str) -> tuple[int, int]:
    start = text.find(secret)
    if start < 0:  # a PEM inside JSON (the GCP service account) is stored with escaped newlines
        secret = json.dumps(secret)[1:-1]
        start = text.find(secret)
    if start < 0:
        raise ValueError("secret not in its sample text")
    first = text.count("\n", 0, start) + 1
    return first, first + secret.count("\n", 0, len(secret.rstrip("\n")))


def _alts(sample: fakecreds.Sample) -> tuple[str, ...]:
    """Forms other than the planted string that a scanner may report for the same secret."""
    if sample.rule_id in ("kubeconfig-client-key", "docker-config-auth"):
        decoded = base64.b64decode(sample.secret).decode()
        return (decoded, decoded.split(":", 1)[-1]) if ":" in decoded else (decoded,)
    if sample.rule_id == "private-key":
        return (fakecreds.pem_secret_span(sample),)
    return ()


def _file_items(rng: random.Random, location: str, base: str, prefix: str) -> tuple[list[Planted], list[LayerFile]]:
    items: list[Planted] = []
    files: list[LayerFile] = []
    written: set[str] = set()
    for n, s in enumerate(fakecreds.samples(rng)):
        # The AWS pair shares one file: plant it once, score both values in it.
        path = f"{base}/{n:02d}/{_file_name(s)}"
        if s.rule_id == "aws-secret-access-key" and items and items[-1].rule_id == "aws-access-key-id":
            path = items[-1].file_path
        if path not in written:
            files.append(LayerFile(path, s.text.encode()))
            written.add(path)
        items.append(
            Planted(
                f"{prefix}{n:02d}", location, s.rule_id, path, 0, path, _line_span(s.text, s.secret), s.secret, _alts(s)
            )
        )
    return items, files


def _nested_items(rng: random.Random) -> tuple[list[Planted], list[LayerFile]]:
    """Samples spread over a jar, a zip and a tar.gz, each member at a path of its own."""
    kinds = ("jar", "zip", "tgz")
    members: dict[str, dict[str, bytes]] = {k: {} for k in kinds}
    items: list[Planted] = []
    for n, s in enumerate(fakecreds.samples(rng)):
        kind = kinds[n % 3]
        outer = f"{NESTED_DIR}/bundle-{kind}.{'tar.gz' if kind == 'tgz' else kind}"
        inner = f"{'BOOT-INF/classes/' if kind == 'jar' else 'conf/'}{n:02d}/{_file_name(s)}"
        if s.rule_id == "aws-secret-access-key" and items and items[-1].rule_id == "aws-access-key-id":
            kind, outer = items[-1].item_id.split(":")[1], items[-1].file_path
            inner = items[-1].path.split("!", 1)[1]
        members[kind][inner] = s.text.encode()
        items.append(
            Planted(
                f"n{n:02d}:{kind}",
                "nested_archive",
                s.rule_id,
                f"{outer}!{inner}",
                0,
                outer,
                _line_span(s.text, s.secret),
                s.secret,
                _alts(s),
            )
        )
    files = [
        LayerFile(f"{NESTED_DIR}/bundle-jar.jar", _zip(members["jar"])),
        LayerFile(f"{NESTED_DIR}/bundle-zip.zip", _zip(members["zip"])),
        LayerFile(f"{NESTED_DIR}/bundle-tgz.tar.gz", _tgz(members["tgz"])),
    ]
    return items, files


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def _tgz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode = len(data), MTIME, 0o644
            tf.addfile(ti, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


def _config_values(rng: random.Random) -> list[tuple[str, str, str, str]]:
    """(NAME, rule_id, secret, value) for single-line credentials that fit an env var or a label."""
    out: list[tuple[str, str, str, str]] = []
    key_id, secret = fakecreds.fake_aws_key_pair(rng)
    out.append(("AWS_ACCESS_KEY_ID", "aws-access-key-id", key_id, key_id))
    out.append(("AWS_SECRET_ACCESS_KEY", "aws-secret-access-key", secret, secret))
    simple = [
        ("GITHUB_TOKEN", "github-classic-token", fakecreds.fake_github_token),
        ("GITLAB_TOKEN", "gitlab-token", fakecreds.fake_gitlab_token),
        ("SLACK_BOT_TOKEN", "slack-token", fakecreds.fake_slack_token),
        ("SLACK_WEBHOOK_URL", "slack-webhook", fakecreds.fake_slack_webhook),
        ("STRIPE_API_KEY", "stripe-secret-key", fakecreds.fake_stripe_secret_key),
        ("SENDGRID_API_KEY", "sendgrid-api-key", fakecreds.fake_sendgrid_api_key),
        ("OPENAI_API_KEY", "openai-api-key", fakecreds.fake_openai_api_key),
        ("ANTHROPIC_API_KEY", "anthropic-api-key", fakecreds.fake_anthropic_api_key),
        ("NPM_TOKEN", "npm-token", fakecreds.fake_npm_token),
        ("PYPI_TOKEN", "pypi-token", fakecreds.fake_pypi_token),
        ("VAULT_TOKEN", "vault-token", fakecreds.fake_vault_token),
        ("GOOGLE_API_KEY", "gcp-api-key", fakecreds.fake_gcp_api_key),
        ("TWILIO_API_KEY", "twilio-api-key", fakecreds.fake_twilio_api_key),
        ("AUTH_JWT", "jwt", fakecreds.fake_jwt),
        ("DB_PASSWORD", "generic-secret-assignment", fakecreds.fake_password),
    ]
    for name, rid, gen in simple:
        v = gen(rng)
        out.append((name, rid, v, v))
    uri, pw = fakecreds.fake_database_uri(rng)
    out.append(("DATABASE_URL", "database-uri-password", pw, uri))
    return out


def _config_decoys(rng: random.Random) -> list[str]:
    sha = "".join(rng.choice(fakecreds.HEX) for _ in range(64))
    uuid = "-".join("".join(rng.choice(fakecreds.HEX) for _ in range(n)) for n in (8, 4, 4, 4, 12))
    return [
        "AWS_SECRET_ACCESS_KEY=${AWS_SECRET}",
        "AWS_ACCESS_KEY_ID=" + "AK" + "IA" + "IOSFODNN7" + "EXAMPLE",
        "DB_PASSWORD=changeme",
        f"API_TOKEN={uuid}",
        f"RELEASE_DIGEST=sha256:{sha}",
        "GITHUB_TOKEN=${{ secrets.GITHUB_TOKEN }}",
    ]


def _decoy_ext(text: str) -> str:
    if text.startswith("if line.") or text.startswith("password = ") or text.startswith("secret_key"):
        return "py"
    if ": " in text.split("\n", 1)[0]:
        return "yaml"
    return "conf"


def make_plan(seed: int) -> Plan:
    rng = random.Random(seed)
    planted: list[Planted] = []
    file_items, layer0 = _file_items(rng, "file", FILE_DIR, "f")
    planted += file_items
    del_items, del_files = _file_items(rng, "deleted_file", DELETED_DIR, "d")
    # Every other deleted file goes under a directory that layer 1 makes opaque instead of whiting it out.
    renamed = {f.path: OPAQUE_DIR + f.path[len(DELETED_DIR) :] for i, f in enumerate(del_files) if i % 2}
    fixed = [
        replace(it, path=renamed[it.file_path], file_path=renamed[it.file_path]) if it.file_path in renamed else it
        for it in del_items
    ]
    planted += fixed
    layer0 += [LayerFile(renamed.get(f.path, f.path), f.data) for f in del_files]
    ow_items, ow_files = _file_items(rng, "overwritten_file", OVERWRITTEN_DIR, "o")
    planted += ow_items
    layer0 += ow_files
    nested_items, nested_files = _nested_items(rng)
    planted += nested_items
    layer0 += nested_files

    decoys: list[Decoy] = []
    for n, text in enumerate(fakecreds.decoys(rng)):
        path = f"{DECOY_DIR}/{n:02d}.{_decoy_ext(text)}"
        decoys.append(Decoy(f"decoy{n:02d}", path, text))
        layer0.append(LayerFile(path, text.encode()))

    layer1: list[LayerFile] = []
    for path in sorted({it.file_path for it in fixed if it.file_path.startswith(DELETED_DIR)}):
        head, _, name = path.rpartition("/")
        layer1.append(LayerFile(f"{head}/.wh.{name}", b""))
    layer1.append(LayerFile(f"{OPAQUE_DIR}/.wh..wh..opq", b""))
    for f in ow_files:
        layer1.append(LayerFile(f.path, b"# replaced at build time; see the deployment's secret store\n"))

    # Its own RNG, so the rest of the plan (and its planted values) stays what it was before this section.
    pkg_files, pkg_databases = package_noise(random.Random(f"{seed}/packages"))
    layer0 += pkg_files
    layer1 += pkg_databases
    # Likewise: secrets without a vendor format where real images keep them, and their decoys.
    generic = generic_cases(random.Random(f"{seed}/generic"))
    planted += generic.planted
    decoys += generic.decoys
    layer0 += generic.files

    env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"]
    for name, rid, secret, value in _config_values(rng):
        planted.append(
            Planted(
                f"e:{name}",
                "config_env",
                rid,
                f"config.Env[{len(env)}]",
                None,
                "",
                None,
                secret,
                (value,) if value != secret else (),
            )
        )
        env.append(f"{name}={value}")
    for value in _config_decoys(rng):
        decoys.append(Decoy(f"env-decoy{len(env)}", f"config.Env[{len(env)}]", value))
        env.append(value)

    labels: list[tuple[str, str]] = [("org.opencontainers.image.title", "app")]
    for name, rid, secret, value in _config_values(rng):
        key = "org.example." + name.lower().replace("_", "-")
        planted.append(
            Planted(
                f"l:{name}",
                "config_label",
                rid,
                f"config.Labels.{key}",
                None,
                "",
                None,
                secret,
                (value,) if value != secret else (),
            )
        )
        labels.append((key, value))

    history: list[dict[str, object]] = [{"created_by": "/bin/sh -c #(nop) ADD file:base in / "}]
    for n, (name, rid, secret, value) in enumerate(_config_values(rng)):
        if n % 2:
            line = f"|1 {name}={value} /bin/sh -c ./build.sh --release"
        else:
            line = f"/bin/sh -c export {name}='{value}' && ./build.sh --release"
        planted.append(
            Planted(
                f"h:{name}",
                "config_history",
                rid,
                f"history[{len(history)}].created_by",
                None,
                "",
                None,
                secret,
                (value,) if value != secret else (),
            )
        )
        history.append({"created_by": line, "empty_layer": True})
    history.append({"created_by": "/bin/sh -c rm -rf /srv/old/* /var/cache/app && cp -r /build/etc /etc/app"})
    history.append({"created_by": "/bin/sh -c #(nop) COPY dir:assets in /usr "})
    # Generic cases in the config: empty-layer history lines after the last layer's, so layers keep theirs.
    for item_id, name, assigned, expected in generic.env:
        if expected is None:
            decoys.append(Decoy(item_id, f"config.Env[{len(env)}]", f"{name}={assigned}"))
        else:
            planted.append(
                Planted(item_id, "config_env", "config-password", f"config.Env[{len(env)}]", None, "", None, expected)
            )
        env.append(f"{name}={assigned}")
    for item_id, rule_id, command, expected in generic.history:
        path = f"history[{len(history)}].created_by"
        if expected is None:
            decoys.append(Decoy(item_id, path, command))
        else:
            planted.append(Planted(item_id, "config_history", rule_id, path, None, "", None, expected))
        history.append({"created_by": command, "empty_layer": True})
    return Plan(
        seed, tuple(planted), tuple(decoys), tuple(layer0), tuple(layer1), tuple(env), tuple(labels), tuple(history)
    )


# -- secrets without a vendor format ----------------------------------------------------------------------
# Where real images keep passwords and tokens that have no vendor shape: XML config (Maven, Tomcat, Spring),
# .pgpass, short chosen values in an app's .env/INI/TOML/YAML, files that hold one token, command lines in
# the build history, JSON credentials in an Env value, UTF-16 files, strings in binaries and SQLite, and a
# .properties file in a jar. Each planted value is chosen, not random-looking, unless the place itself is
# what marks it (a token file); the decoys are the stand-ins the same places hold.

GENERIC_DIR = "srv/gen"
GENERIC_DECOY_DIR = "srv/gen/decoys"


@dataclass(frozen=True, slots=True)
class GenericCases:
    planted: list[Planted]
    decoys: list[Decoy]
    files: list[LayerFile]
    env: list[tuple[str, str, str, str | None]]  # (item id, NAME, value, secret or None for a decoy)
    history: list[tuple[str, str, str, str | None]]  # (item id, rule id, created_by line, secret or None)


def _chosen_password(rng: random.Random) -> str:
    """A password a person picked: pronounceable letters and a few digits (no letters that could spell a
    placeholder word such as "fake" or "todo"), far from random."""
    word = "".join(rng.choice("bgjlmnprsvz") + rng.choice("aeiou") for _ in range(rng.randint(3, 4)))
    return word + "".join(rng.choice(string.digits) for _ in range(rng.randint(2, 4)))


def _sqlite_with(rows: Sequence[tuple[str, str]]) -> bytes:
    con = sqlite3.connect(":memory:")
    try:
        con.execute("CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT)")
        con.executemany("INSERT INTO settings VALUES (?, ?)", rows)
        con.commit()
        return con.serialize()
    finally:
        con.close()


def generic_cases(rng: random.Random) -> GenericCases:
    g = GenericCases([], [], [], [], [])
    d = GENERIC_DIR

    def plant(item: str, rule: str, path: str, text: str | bytes, secret: str, *, line: int | None = None) -> None:
        data = text.encode() if isinstance(text, str) else text
        if isinstance(text, str) and line is None:
            line = _line_span(text, secret)[0]
        g.files.append(LayerFile(path, data))
        g.planted.append(
            Planted(f"g:{item}", "file", rule, path, 0, path, None if line is None else (line, line), secret)
        )

    def decoy(item: str, path: str, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        g.files.append(LayerFile(path, data))
        g.decoys.append(Decoy(f"gd:{item}", path, data.decode("utf-8", "replace")))

    pw = _chosen_password
    v = pw(rng)
    plant("maven", "xml-secret", f"{d}/m2/settings.xml",
          "<settings>\n  <servers>\n    <server>\n      <id>internal-releases</id>\n      <username>ci</username>\n"
          f"      <password>{v}</password>\n    </server>\n  </servers>\n</settings>\n", v)  # fmt: skip
    v = pw(rng)
    plant("tomcat-users", "xml-secret", f"{d}/tomcat/conf/tomcat-users.xml",
          f'<tomcat-users>\n  <user username="admin" password="{v}" roles="manager-gui,admin-gui"/>\n</tomcat-users>\n',
          v)  # fmt: skip
    v = pw(rng)
    plant("tomcat-server", "xml-secret", f"{d}/tomcat/conf/server.xml",
          '<Server port="8005">\n  <Service name="Catalina">\n    <Connector port="8443" SSLEnabled="true"\n'
          f'      keystoreFile="conf/keystore.jks" keystorePass="{v}"/>\n  </Service>\n</Server>\n', v)  # fmt: skip
    v = pw(rng)
    plant("spring-xml", "xml-secret", f"{d}/webapp/WEB-INF/applicationContext.xml",
          '<beans>\n  <bean id="dataSource" class="org.apache.commons.dbcp2.BasicDataSource">\n'
          '    <property name="username" value="app"/>\n'
          f'    <property name="password" value="{v}"/>\n  </bean>\n</beans>\n', v)  # fmt: skip
    v = pw(rng)
    plant("pgpass", "pgpass-password", f"{d}/home/postgres/.pgpass",
          f"# host:port:database:user:password\ndb-primary.internal:5432:orders:orders_rw:{v}\n", v)  # fmt: skip
    v = pw(rng)
    plant("dotenv", "config-password", f"{d}/app/.env",
          f"APP_ENV=production\nDB_HOST=db-primary.internal\nDB_USER=orders\nDB_PASSWORD={v}\n", v)  # fmt: skip
    v = pw(rng)
    plant("ini", "config-password", f"{d}/app/config.ini",
          f"[server]\nport = 8080\n\n[mail]\nhost = smtp.internal\npassword = {v}\n", v)  # fmt: skip
    v = pw(rng)
    plant("toml", "config-password", f"{d}/app/config.toml",
          f'[queue]\nurl = "amqp://rabbit.internal:5672"\nuser = "worker"\nauth_token = "{v}"\n', v)  # fmt: skip
    v = pw(rng)
    plant("yaml", "config-password", f"{d}/app/values.yaml",
          f"redis:\n  host: redis.internal\n  port: 6379\n  password: {v}\n", v)  # fmt: skip
    v = "".join(rng.choice(fakecreds.URLSAFE) for _ in range(40))
    plant("token-file", "secret-file", f"{d}/app/deploy.token", v + "\n", v)
    v = "".join(rng.choice(fakecreds.HEX) for _ in range(48))
    plant("api-key-file", "secret-file", f"{d}/etc/api.key", v, v)
    v = "".join(rng.choice(fakecreds.ALNUM) for _ in range(32))
    plant("mounted-secret", "secret-file", f"{d}/run/secrets/session_signing", v + "\n", v)
    v = fakecreds.fake_gitlab_token(rng)
    text = f'Windows Registry Editor Version 5.00\r\n\r\n[HKEY_CURRENT_USER\\Software\\Deploy]\r\n"ApiToken"="{v}"\r\n'
    plant("utf16-file", "gitlab-token", f"{d}/win/deploy.reg", b"\xff\xfe" + text.encode("utf-16-le"), v, line=4)
    v = fakecreds.fake_slack_token(rng)
    noise = bytes(rng.randrange(256) for _ in range(24000))
    exe = b"MZ\x90\x00" + noise[:12000] + f"SLACK_BOT_TOKEN={v}".encode("utf-16-le") + b"\x00\x00" + noise[12000:]
    plant("utf16-in-binary", "slack-token", f"{d}/win/notifier.exe", exe, v)
    v = fakecreds.fake_stripe_secret_key(rng)
    rows = [(f"feature.{i}", f"enabled for cohort {i}") for i in range(150)] + [("payments.key", v)]
    plant("sqlite", "stripe-secret-key", f"{d}/var/app.sqlite", _sqlite_with(rows), v)
    v = fakecreds.fake_github_token(rng)
    so = b"\x7fELF\x02\x01\x01\x00" + noise[:16000] + b"\x00default_token=" + v.encode() + b"\x00" + noise[16000:]
    plant("shared-object", "github-classic-token", f"{d}/lib/libupdater.so.2", so, v)

    v = pw(rng)
    props = f"server.port=8080\nspring.datasource.url=jdbc:postgresql://db/orders\nspring.datasource.password={v}\n"
    inner = "BOOT-INF/classes/application.properties"
    outer = f"{d}/lib/orders-service.jar"
    g.files.append(LayerFile(outer, _zip({"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n", inner: props.encode()})))
    span = _line_span(props, v)
    g.planted.append(Planted("g:jar-properties", "nested_archive", "config-password", f"{outer}!{inner}", 0, outer,
                             span, v))  # fmt: skip

    v = pw(rng)
    g.env.append(("g:env-json", "APP_DB_CONFIG", json.dumps({"host": "db", "user": "orders", "password": v}), v))
    g.env.append(
        ("gd:env-json", "APP_CACHE_CONFIG", json.dumps({"host": "cache", "password": "${CACHE_PASSWORD}"}), None)
    )
    history = [
        ("g:h-mysql", "/bin/sh -c mysql -h db -uroot -p{v} orders < /docker-entrypoint-initdb.d/schema.sql"),
        ("g:h-flag", "/bin/sh -c /opt/keycloak/bin/kc.sh build && /opt/keycloak/bin/kcadm.sh config credentials"
                     " --server http://localhost:8080 --realm master --user admin --password {v}"),
        ("g:h-curl", "/bin/sh -c curl -fsSL -u deploy:{v} -o /tmp/agent.tgz https://artifacts.internal/agent.tgz"),
        ("g:h-pgpassword", "/bin/sh -c PGPASSWORD={v} psql -h db -U orders -f /init/seed.sql"),
        ("g:h-sshpass", "/bin/sh -c sshpass -p '{v}' scp -o StrictHostKeyChecking=no build@ci:/out/app.tgz /tmp"),
    ]  # fmt: skip
    for item_id, template in history:
        v = pw(rng)
        g.history.append((item_id, "command-line-password", template.format(v=v), v))
    for item_id, line in (
        ("gd:h-var", "/bin/sh -c mysql -uroot -p\"$MYSQL_ROOT_PASSWORD\" < /schema.sql"),
        ("gd:h-stdin", "/bin/sh -c echo \"$REGISTRY_PASSWORD\" | docker login --password-stdin -u ci registry"),
        ("gd:h-flagvar", "/bin/sh -c ./configure --admin-password ${ADMIN_PW} --db-password=$(cat /run/secrets/db)"),
    ):  # fmt: skip
        g.history.append((item_id, "", line, None))

    dd = GENERIC_DECOY_DIR
    decoy("maven", f"{dd}/settings.xml",
          "<settings>\n  <servers>\n    <server>\n      <id>a</id>\n      <password>${env.MAVEN_PASSWORD}</password>\n"
          "    </server>\n    <server>\n      <id>b</id>\n      <password>********</password>\n    </server>\n"
          "  </servers>\n</settings>\n")  # fmt: skip
    decoy("tomcat", f"{dd}/tomcat-users.xml",
          '<tomcat-users>\n  <user username="tomcat" password="changeme" roles="tomcat"/>\n'
          '  <user username="admin" password="${ADMIN_PASSWORD}" roles="admin-gui"/>\n</tomcat-users>\n')  # fmt: skip
    decoy("entrypoint", f"{dd}/entrypoint.sh",
          '#!/bin/sh\nset -e\nmysql -uroot -p"$MYSQL_ROOT_PASSWORD" -e "select 1"\n'
          "exec app --password $APP_PASSWORD --token-file /run/secrets/token\n")  # fmt: skip
    decoy(
        "dotenv",
        f"{dd}/.env",
        "DB_PASSWORD=${DB_PASSWORD}\nAPI_TOKEN=changeme\nSMTP_PASSWORD=\nSECRET_KEY_FILE=/run/secrets/key\n",
    )
    decoy("yaml", f"{dd}/values.yaml",
          "auth:\n  existingSecret: orders-credentials\n  password: \"\"\n  passwordMinLength: 12\n"
          "  tokenTTL: 3600\n  secretName: orders-tls\n")  # fmt: skip
    decoy("pgpass", f"{dd}/.pgpass", "*:*:*:*:*\n")
    inf = "[Strings]\r\nProductName=Orders Service\r\nPasswordPrompt=Enter your password\r\n"
    decoy("utf16", f"{dd}/strings.inf", b"\xff\xfe" + inf.encode("utf-16-le"))
    decoy("token-prose", f"{dd}/release.token", "replace this line with your release token\n")
    return g


# -- package-owned noise ----------------------------------------------------------------------------------
# Fake dpkg, pip and npm packages whose docs and tests hold credential-shaped strings (generated from the
# seed), as real packages ship them. They are not planted leaks: a scanner that reports them counts them as
# "other" findings. Their package databases go into layer 1, after the files they name.

PACKAGE_NOISE_PACKAGES = 6


def package_noise(rng: random.Random) -> tuple[list[LayerFile], list[LayerFile]]:
    files: list[LayerFile] = []
    databases: list[LayerFile] = []
    site = "usr/lib/python3/dist-packages"
    for n in range(PACKAGE_NOISE_PACKAGES):
        token = fakecreds.fake_github_token(rng)
        key_id, key = fakecreds.fake_aws_key_pair(rng)
        deb, pip, npm = f"cloudtool{n}", f"cloudlib{n}", f"cloudjs{n}"
        doc = f"usr/share/doc/{deb}/examples/credentials.conf"
        example = f"# example\naws_access_key_id = {key_id}\naws_secret_access_key = {key}\n"
        files.append(LayerFile(doc, example.encode()))
        databases.append(LayerFile(f"var/lib/dpkg/info/{deb}.list", f"/.\n/usr/share/doc/{deb}\n/{doc}\n".encode()))
        fixture = f"{pip}/tests/fixtures/auth.py"
        files.append(LayerFile(f"{site}/{fixture}", f"TOKEN = '{token}'\n".encode()))
        record = f"{pip}/__init__.py,,\n{fixture},,\n{pip}-1.0.dist-info/RECORD,,\n"
        databases.append(LayerFile(f"{site}/{pip}-1.0.dist-info/RECORD", record.encode()))
        js = f"srv/web/node_modules/{npm}"
        files.append(LayerFile(f"{js}/package.json", json.dumps({"name": npm, "version": "1.0.0"}).encode()))
        test = f"const token = '{fakecreds.fake_github_token(rng)}';\n"
        files.append(LayerFile(f"{js}/test/auth.test.js", test.encode()))
    return files, databases


# -- noise -----------------------------------------------------------------------------------------------


def _walk_files(root: str) -> Iterator[tuple[str, int]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if not (os.path.isfile(full) and not os.path.islink(full)) or not 0 < st.st_size <= MAX_NOISE_FILE_BYTES:
                continue
            if not os.access(full, os.R_OK):
                continue
            yield full, st.st_size


def pick_noise(total_bytes: int, seed: int, roots: Sequence[str] = NOISE_ROOTS) -> list[tuple[str, int]]:
    """Real files summing to about `total_bytes`, an equal share from each root, in a seeded order."""
    rng = random.Random(seed)
    out: list[tuple[str, int]] = []
    share = total_bytes // len(roots)
    for root in roots:
        files = list(_walk_files(root))
        rng.shuffle(files)
        got = 0
        for path, size in files:
            if got >= share:
                break
            if got + size > share + MAX_NOISE_FILE_BYTES // 16:
                continue  # a big file would overshoot the share: keep looking for smaller ones
            out.append((path, size))
            got += size
    rng.shuffle(out)
    return out


# -- writing ---------------------------------------------------------------------------------------------


def _add_bytes(tf: tarfile.TarFile, path: str, data: bytes) -> None:
    ti = tarfile.TarInfo(path)
    ti.size, ti.mtime, ti.mode = len(data), MTIME, 0o644
    tf.addfile(ti, io.BytesIO(data))


def _add_noise(tf: tarfile.TarFile, src: str) -> None:
    with open(src, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        ti = tarfile.TarInfo(src.lstrip("/"))
        ti.size, ti.mtime, ti.mode = size, MTIME, 0o755 if os.access(src, os.X_OK) else 0o644
        tf.addfile(ti, fh)


# -- package databases ------------------------------------------------------------------------------------
# The noise comes from the machine's packages; their databases go into the last layer, after the files they
# name (as an image that installs more packages later would have them), so the scan can tell package docs and
# tests from the application's files. Bounded: the machine's dpkg lists and Python RECORDs under the roots.

MAX_DATABASE_FILES = 20000


def package_databases(roots: Sequence[str] = NOISE_ROOTS) -> list[str]:
    found: list[str] = []
    dpkg = "/var/lib/dpkg/info"
    if os.path.isdir(dpkg):
        found += sorted(os.path.join(dpkg, n) for n in os.listdir(dpkg) if n.endswith(".list"))
    for root in roots:
        for path, _ in _walk_files(root):
            if path.endswith((".dist-info/RECORD", ".egg-info/installed-files.txt")):
                found.append(path)
    return found[:MAX_DATABASE_FILES]


def _write_layer(dest: Path, noise: Sequence[tuple[str, int]], planted: Sequence[LayerFile]) -> None:
    half = len(noise) // 2
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tf:
        for src, _ in noise[:half]:
            _add_noise(tf, src)
        for f in planted:
            _add_bytes(tf, f.path, f.data)
        for src, _ in noise[half:]:
            _add_noise(tf, src)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


#: How layers are compressed: the program's command line and the blob suffix.
COMPRESSORS = {
    "gzip": (["gzip", "-6", "-f", "-n"], ".gz", ".tar.gz"),  # docker's default level
    "zstd": (["zstd", "-3", "-q", "-f", "--rm"], ".zst", ".tar.zst"),
}


def write_corpus(
    plan: Plan,
    root: Path,
    size_bytes: int,
    *,
    sample_noise_bytes: int = 20 * 1024 * 1024,
    compression: str = "gzip",
) -> Corpus:
    """Write the image (and a detect-secrets sample directory) under `root`; reuse it when already written."""
    if compression not in COMPRESSORS:
        raise ValueError(f"compression must be one of {sorted(COMPRESSORS)}")
    noise = pick_noise(size_bytes, plan.seed)
    stamp = {
        "plan": plan.digest(),
        "compression": compression,
        "size": size_bytes,
        "noise": hashlib.sha256(json.dumps(noise).encode()).hexdigest()[:16],
        "databases": len(package_databases()),
    }
    stamp_file = root / "corpus-stamp.json"
    image = root / "image.tar"
    n1, n2 = int(len(noise) * 0.4), int(len(noise) * 0.7)
    parts = [noise[:n1], noise[n1:n2], noise[n2:]]
    if stamp_file.exists() and json.loads(stamp_file.read_text()) == {**stamp, "done": True}:
        meta = json.loads((root / "layers.json").read_text())
        return Corpus(
            root,
            image,
            tuple(root / "layers" / n for n in meta["blobs"]),
            tuple(meta["tar_bytes"]),
            len(noise),
            sum(s for _, s in noise),
            root / "sample",
        )
    root.mkdir(parents=True, exist_ok=True)
    stamp_file.unlink(missing_ok=True)
    layers_dir = root / "layers"
    if layers_dir.exists():
        subprocess.run(["rm", "-rf", str(layers_dir)], check=True)
    layers_dir.mkdir()
    tars: list[Path] = []
    databases = [(p, os.path.getsize(p)) for p in package_databases()]
    parts[2] = [*parts[2], *(d for d in databases if d not in parts[2])]
    for i, (part, files) in enumerate(zip(parts, [plan.layer0, plan.layer1, ()], strict=True)):
        t = layers_dir / f"layer{i}.tar"
        _write_layer(t, part, files)
        tars.append(t)
    diff_ids = [_sha256_file(t) for t in tars]
    tar_bytes = [t.stat().st_size for t in tars]
    # Compressed by the real program, all layers at once: the machine's two cores share the work.
    argv, out_suffix, blob_suffix = COMPRESSORS[compression]
    procs = [subprocess.Popen([*argv, str(t)]) for t in tars]
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError(f"{compression} failed")
    blobs: list[Path] = []
    for t in tars:
        packed = t.with_name(t.name + out_suffix)
        final = layers_dir / (_sha256_file(packed) + blob_suffix)
        packed.rename(final)
        blobs.append(final)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": list(plan.env), "Labels": dict(plan.labels), "Cmd": ["/srv/app/run"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for d in diff_ids]},
        "history": [dict(h) for h in plan.history],
    }
    cfg_bytes = json.dumps(config, sort_keys=True).encode()
    cfg_name = hashlib.sha256(cfg_bytes).hexdigest() + ".json"
    manifest = [{"Config": cfg_name, "RepoTags": ["bench/app:latest"], "Layers": [b.name for b in blobs]}]
    with tarfile.open(image.with_suffix(".tmp"), "w") as tf:
        _add_bytes(tf, cfg_name, cfg_bytes)
        for b in blobs:
            tf.add(b, arcname=b.name)
        _add_bytes(tf, "manifest.json", json.dumps(manifest).encode())
    image.with_suffix(".tmp").rename(image)
    _write_sample(plan, root / "sample", noise, sample_noise_bytes)
    (root / "layers.json").write_text(json.dumps({"blobs": [b.name for b in blobs], "tar_bytes": tar_bytes}))
    stamp_file.write_text(json.dumps({**stamp, "done": True}))
    return Corpus(root, image, tuple(blobs), tuple(tar_bytes), len(noise), sum(s for _, s in noise), root / "sample")


def _write_sample(plan: Plan, dest: Path, noise: Sequence[tuple[str, int]], noise_bytes: int) -> None:
    """Layer 0's planted files and decoys as plain files, plus a slice of the same noise (text and binary)."""
    if dest.exists():
        subprocess.run(["rm", "-rf", str(dest)], check=True)
    for f in plan.layer0:
        p = dest / f.path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(f.data)
    got = 0
    for src, size in noise:
        if got >= noise_bytes:
            break
        p = dest / src.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(src, "rb") as fi, p.open("wb") as fo:
            fo.write(fi.read())
        got += size


@dataclass(frozen=True, slots=True)
class Unpacked:
    root: Path
    layer_dirs: tuple[Path, ...]
    config_file: Path
    extra: dict[str, str] = field(default_factory=dict)


def unpack(corpus: Corpus, dest: Path) -> Unpacked:
    """The docker-archive extracted as a user would for a directory scan: config JSON plus each layer's files."""
    if dest.exists():
        subprocess.run(["rm", "-rf", str(dest)], check=True)
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-xf", str(corpus.image), "-C", str(dest), "--wildcards", "*.json"], check=True)
    (dest / "manifest.json").unlink()
    cfg = next(dest.glob("*.json"))
    dirs = []
    for i, blob in enumerate(corpus.layer_blobs):
        d = dest / "layers" / str(i)
        d.mkdir(parents=True)
        flag = "--zstd" if blob.name.endswith(".zst") else "--gzip"
        subprocess.run(["tar", flag, "-xf", str(blob), "-C", str(d), "--no-same-owner"], check=True)
        dirs.append(d)
    return Unpacked(dest, tuple(dirs), cfg)
