"""Secrets without a vendor format, where configuration keeps them: XML, .pgpass, command lines, config files'
secret-named keys, files that hold one token. Each kind with the forms it must find and the stand-ins it must
leave alone. Values come from a seeded RNG."""

from __future__ import annotations

import json
import random
import string

import pytest

from secretsvc.scan.model import Content, Location, Match
from secretsvc.scan.rules import RuleSet
from secretsvc.scan.rules.context import ALL_SCOPES, is_config_path, is_secret_file_path
from tests import fakecreds


def _chosen(rng: random.Random) -> str:
    """A password a person chose: a word-like run of letters and a few digits, no randomness to speak of."""
    word = "".join(rng.choice("bcdfghjklmnprstvz") + rng.choice("aeiou") for _ in range(3))
    return word + "".join(rng.choice(string.digits) for _ in range(4))


def _at(rules: RuleSet, text: str, path: str = "srv/app/run.sh") -> list[Match]:
    data = text.encode()
    matches = rules.scan(Content(data=data, path=path, layer_index=0, location=Location.FILE))
    for m in matches:
        assert data[m.start : m.end] == m.secret
    return matches


def _ids(rules: RuleSet, text: str, path: str = "srv/app/run.sh") -> list[tuple[str, str]]:
    return [(m.rule_id, m.secret.decode()) for m in _at(rules, text, path)]


RNG_SEEDS = (11, 12, 13)


# -- XML --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_xml_elements_and_attributes_with_secret_names(rules: RuleSet, seed: int) -> None:
    rng = random.Random(seed)
    pw, ks, spring = _chosen(rng), _chosen(rng), _chosen(rng)
    api = "".join(rng.choice(fakecreds.ALNUM) for _ in range(28))
    settings = (
        "<settings>\n  <servers>\n    <server>\n      <id>nexus</id>\n      <username>deploy</username>\n"
        f"      <password>{pw}</password>\n    </server>\n  </servers>\n</settings>\n"
    )
    assert _ids(rules, settings, "root/.m2/settings.xml") == [("xml-secret", pw)]
    server = f'<Connector port="8443" SSLEnabled="true"\n    keystoreFile="conf/.keystore" keystorePass="{ks}"/>'
    assert _ids(rules, server, "usr/local/tomcat/conf/server.xml") == [("xml-secret", ks)]
    bean = f'<bean id="ds">\n  <property name="password" value="{spring}"/>\n</bean>'
    assert _ids(rules, bean, "app/WEB-INF/context.xml") == [("xml-secret", spring)]
    appsettings = f'<appSettings>\n  <add key="PaymentsApiKey" value="{api}" />\n</appSettings>'
    assert _ids(rules, appsettings, "app/Web.config") == [("xml-secret", api)]


@pytest.mark.parametrize(
    "text",
    [
        "<password>${env.NEXUS_PASSWORD}</password>",
        "<password>${nexus.password}</password>",
        "<password>********</password>",
        "<password></password>",
        "<password>%NEXUS_PASSWORD%</password>",
        "<password>{{ nexus_password }}</password>",
        "<password>changeme</password>",
        '<Connector port="8443" keystorePass="changeit"/>',
        '<input type="password" name="password" value="" autocomplete="current-password"/>',
        '<passwordEncoder class="bcrypt">strength</passwordEncoder>',
        "<secretName>app-credentials</secretName>",
    ],
)
def test_xml_placeholders_and_names_are_not_secrets(rules: RuleSet, text: str) -> None:
    assert _ids(rules, text, "root/.m2/settings.xml") == []


def test_xml_examples_inside_comments_are_not_secrets(rules: RuleSet) -> None:
    pw = _chosen(random.Random(4))
    text = (
        f"<servers>\n  <!-- server\n    <server>\n      <password>{pw}</password>\n    </server>\n  -->\n"
        f'  <!-- <user username="a" password="{pw}"/> -->\n</servers>\n'
    )
    assert _ids(rules, text, "etc/maven/settings.xml") == []
    assert _ids(rules, text.replace("<!--", "<!-- x -->"), "etc/maven/settings.xml") != []


def test_a_keyword_argument_in_code_is_not_an_xml_attribute(rules: RuleSet) -> None:
    pw = _chosen(random.Random(3))
    assert _ids(rules, f'db = connect(user="app", password="{pw}")\n', "srv/app/db.py") == []


# -- .pgpass ----------------------------------------------------------------------------------------------


def test_pgpass_lines(rules: RuleSet) -> None:
    rng = random.Random(5)
    a, b = _chosen(rng), fakecreds.fake_password(rng, 16).replace(":", "x").replace("\\", "x")
    text = f"# host:port:db:user:password\ndb.internal:5432:app:app:{a}\n*:*:*:replicator:{b}\n"
    assert _ids(rules, text, "root/.pgpass") == [("pgpass-password", a), ("pgpass-password", b)]


@pytest.mark.parametrize(
    "text",
    [
        "fe80:0:0:0:1ff\n",
        "db.internal:5432:app:app:*\n",
        "root:x:0:0:root:/root:/bin/bash\n",
        "daemon:*:19000:0:99999:7:::\n",
        "db.internal:5432:app:app:changeme\n",
    ],
)
def test_pgpass_look_alikes(rules: RuleSet, text: str) -> None:
    assert _ids(rules, text, "root/.pgpass") == []


# -- command lines ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_passwords_on_command_lines(rules: RuleSet, seed: int) -> None:
    rng = random.Random(seed)
    cases = [
        ("/bin/sh -c keycloak/bin/kc.sh start --db-password {v} --hostname kc", "history"),
        ("/bin/sh -c app-admin create-user --password={v}", "history"),
        ("/bin/sh -c gitlab-runner register --registration-token {v} --url https://gl", "compound token flag"),
        ('args: ["--admin-password", "{v}"]', "manifest"),
        ("/bin/sh -c mysql -h db -uroot -p{v} app < /docker-entrypoint-initdb.d/schema.sql", "mysql"),
        ("/bin/sh -c mysqldump --single-transaction -u backup -p'{v}' app > /tmp/app.sql", "mysqldump"),
        ("sshpass -p {v} scp build.tgz deploy@web:/srv", "sshpass"),
        ("/bin/sh -c curl -fsSL -u ci:{v} -o /tmp/x.tgz https://artifacts.corp.internal/x.tgz", "curl"),
        ("/bin/sh -c PGPASSWORD={v} psql -h db -U app -f /init.sql", "env prefix"),
        ("/bin/sh -c export REGISTRY_PASSWORD='{v}' && ./push.sh", "export"),
        ("|2 BUILD_ENV=prod NPM_AUTH_TOKEN={v} /bin/sh -c npm ci", "build arg"),
    ]
    for template, what in cases:
        value = _chosen(rng)
        text = template.format(v=value)
        assert _ids(rules, text, "history[3].created_by") == [("command-line-password", value)], what


@pytest.mark.parametrize(
    "text",
    [
        "app --password $ADMIN_PASSWORD",
        "app --password ${ADMIN_PASSWORD}",
        'app --password "$(cat /run/secrets/admin)"',
        "app.exe --password %ADMIN_PASSWORD%",
        "app --password -",
        "app --password '*****'",
        "echo $PW | docker login --password-stdin -u ci registry",
        "app --password-file /run/secrets/admin --token-ttl 3600",
        "  --password PASSWORD    password to connect with",
        "  --password=<password>  password to connect with",
        "  --token string         Authentication",
        "utilisez --password ensemble.",
        "aws dynamodb list-tables --starting-token abCDeFGhiJK7LM51nOpqRSTuv3WxY3ZabC5dEFGhI2",
        "aws lakeformation get-work-unit-results --work-unit-token 'B2fMSdmQXe9umX8Ux8XCo4='",
        "aws dynamodb transact-write-items --client-request-token abc12345",
        "mysql -uroot -p app",
        'mysql -uroot -p"$MYSQL_ROOT_PASSWORD"',
        "mysql -uroot -P3306 app",
        "curl -u $CI_USER:$CI_PASS https://x",
        "curl -u : --negotiate https://x",
        "docker run -u 1000:1000 app",
        "PGPASSWORD=postgres psql",
        "DB_PASSWORD=summer2024\n",
        "docker build --secret id=npm,src=.npmrc .",
    ],
)
def test_command_line_stand_ins(rules: RuleSet, text: str) -> None:
    assert [r for r, _ in _ids(rules, text, "history[3].created_by")] == []


# -- config files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("srv/app/.env", "APP_ENV=production\nDB_PASSWORD={v}\nDB_HOST=db\n"),
        ("srv/app/.env.production", "export SMTP_PASSWORD='{v}'\n"),
        ("etc/app/app.ini", "[database]\nhost = db\npassword = {v}  ; rotated monthly\n"),
        ("etc/app/config.toml", '[redis]\npassword = "{v}"\n'),
        ("srv/app/config/application.yml", "spring:\n  datasource:\n    password: {v}\n"),
        ("app.jar!BOOT-INF/classes/application.properties", "spring.datasource.password={v}\n"),
        ("etc/mysql/conf.d/client.cnf", "[client]\nuser=app\npassword={v}\n"),
    ],
)
def test_short_chosen_passwords_in_config_files(rules: RuleSet, path: str, template: str) -> None:
    value = _chosen(random.Random(path))
    assert _ids(rules, template.format(v=value), path) == [("config-password", value)]


def test_a_short_word_under_a_secret_key_in_yaml(rules: RuleSet) -> None:
    assert _ids(rules, "auth:\n  password: hunter\n", "srv/app/values.yaml") == [("config-password", "hunter")]


@pytest.mark.parametrize(
    "path", ["srv/app/settings.py", "srv/app/README.md", "usr/share/doc/app/examples/app.env", "srv/app/tests/.env"]
)
def test_source_code_and_docs_stay_strict(rules: RuleSet, path: str) -> None:
    value = _chosen(random.Random(7))
    assert _ids(rules, f"DB_PASSWORD={value}\n", path) == []


@pytest.mark.parametrize(
    "line",
    [
        "DB_PASSWORD=",
        "DB_PASSWORD=${DB_PASSWORD}",
        "DB_PASSWORD=$(cat /run/secrets/db)",
        "DB_PASSWORD=%DB_PASSWORD%",
        "DB_PASSWORD=changeme",
        "password: '*****'",
        "password: <your-password>",
        "password_file = /run/secrets/db",
        "password_min_length = 12",
        "password_expiry_days = 90",
        "token_ttl: 3600",
        "# password = hunter",
        "existingSecret: postgres-credentials",
        "secretName: app-tls",
        "password: ENC[AES256_GCM,data:aGVsbG8=,type:str]",
        "secret: !vault |",
        "password: {cipher}0123abcd",
        "password: true",
        "password: abc",
        "password: settings.db.password",
        "api_key: vault:secret/data/app#api_key",
        "api_token: 0f8b6c1e-2a4d-4c7e-9b3a-5d6e7f8a9b0c",
        "release_token = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'",
    ],
)
def test_config_stand_ins(rules: RuleSet, line: str) -> None:
    assert _ids(rules, line + "\n", "srv/app/config.yaml") == []


def test_credentials_json_inside_an_env_value(rules: RuleSet) -> None:
    rng = random.Random(9)
    strong, chosen = fakecreds.fake_password(rng), _chosen(rng)
    for value, rule in ((strong, "generic-secret-assignment"), (chosen, "config-password")):
        doc = json.dumps({"host": "db", "user": "app", "password": value})
        env = Content(
            data=f"APP_DB={doc}".encode(), path="config.Env[4]", layer_index=None, location=Location.CONFIG_ENV
        )
        assert [(m.rule_id, m.secret.decode()) for m in rules.scan(env)] == [(rule, value)]


# -- files that hold one token ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["srv/app/deploy.token", "root/.vault-token", "etc/app/api.key", "srv/app/client.secret", "run/secrets/db",
     "home/ci/.config/gh.pat", "app.jar!META-INF/license.token"],
)  # fmt: skip
def test_a_file_of_one_token(rules: RuleSet, path: str) -> None:
    token = fakecreds.fake_password(random.Random(path), 32).replace("&", "x")
    assert _ids(rules, token + "\n", path) == [("secret-file", token)]


def test_the_same_token_in_a_file_not_named_as_a_secret_is_not_reported(rules: RuleSet) -> None:
    token = fakecreds.fake_password(random.Random(1), 32)
    assert _ids(rules, token + "\n", "srv/app/VERSION") == []


@pytest.mark.parametrize(
    "text",
    ["hello there, this is a note\n", "abcdefghijklmnopqrstuvwxyz\n", "${VAULT_TOKEN}\n", "x" * 5000, "\n"],
)
def test_token_files_that_hold_no_token(rules: RuleSet, text: str) -> None:
    assert _ids(rules, text, "srv/app/deploy.token") == []


def test_a_vendor_token_in_a_token_file_keeps_its_vendor_rule(rules: RuleSet) -> None:
    token = fakecreds.fake_github_token(random.Random(2))
    assert _ids(rules, token + "\n", "root/.config/gh.token") == [("github-classic-token", token)]


# -- which files are which --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "config"),
    [
        ("srv/app/.env", True),
        ("srv/app/.env.local", True),
        ("srv/app/prod.env", True),
        ("etc/app/app.ini", True),
        ("etc/app/app.conf", True),
        ("app.jar!BOOT-INF/classes/application.properties", True),
        ("srv/app/settings.py", False),
        ("srv/app/main.go", False),
        ("usr/share/doc/app/app.conf", False),
        ("srv/app/examples/app.env", False),
        ("srv/app/tests/fixtures/app.yaml", False),
        ("srv/app/environment.ts", False),
    ],
)
def test_config_paths(path: str, config: bool) -> None:
    assert is_config_path(path) is config


@pytest.mark.parametrize(
    ("path", "secret"),
    [
        ("a/deploy.token", True),
        ("a/.vault-token", True),
        ("a/api.key", True),
        ("a/client_secret", True),
        ("run/secrets/anything", True),
        ("a/token", True),
        ("a/tokenizer.json", False),
        ("a/monkey", False),
        ("a/keyboard.conf", False),
        ("a/README", False),
    ],
)
def test_secret_file_paths(path: str, secret: bool) -> None:
    assert is_secret_file_path(path) is secret


def test_scopes_come_from_the_path_unless_the_caller_gives_them(rules: RuleSet) -> None:
    value = _chosen(random.Random(14))
    content = Content(
        data=f"DB_PASSWORD={value}\n".encode(), path="srv/app/notes", layer_index=0, location=Location.FILE
    )
    assert rules.scan(content) == []
    assert [m.rule_id for m in rules.scan(content, scopes=ALL_SCOPES)] == ["config-password"]
    in_env = Content(data=content.data, path="srv/app/.env", layer_index=0, location=Location.FILE)
    assert [m.rule_id for m in rules.scan(in_env)] == ["config-password"]
    assert rules.scan(in_env, scopes=frozenset()) == []


# -- floods -------------------------------------------------------------------------------------------------

FLOODS = {
    "xml-elements-in-an-open-comment": b"<!--" + b"<password>abcdef12</password>\n" * 150_000,
    "xml-attributes-far-from-a-tag": b"<user " + b'password="abcdef12" ' * 200_000,
    "pgpass-lines": b"host:5432:db:user:abcdef12\n" * 150_000,
    "password-flags": b"x --password abcdef12 " * 200_000,
    "mysql-options": b"mysql -pabcdef12 " * 250_000,
    "exports": b"export DB_PASSWORD=abcdef12 && " * 130_000,
    "config-lines": b"password = abcdef12\n" * 200_000,
    "json-members": b'"password": "abcdef12", ' * 160_000,
    "unclosed-element": b"<password>" + b"a" * 4_000_000,
    "long-keys": (b"a" * 59 + b"password" + b"b" * 39 + b"=x\n") * 35_000,
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(FLOODS))
def test_floods_of_generic_trigger_material_cost_bounded_time(rules: RuleSet, name: str) -> None:
    data = FLOODS[name][: 4 << 20]
    result = rules.match(Content(data=data, path="srv/app/.env", layer_index=0, location=Location.FILE))
    assert len(result.matches) <= rules.max_hits
    assert all(a.end <= b.start for a, b in zip(result.matches, result.matches[1:], strict=False))
