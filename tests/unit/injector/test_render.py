"""File contents from secret values: raw, env, JSON, YAML, and sandboxed templates whose secrets are known
before rendering."""

from __future__ import annotations

import json
import random

import pytest
import yaml

from injector.plan import FileSpec, Render, RenderFormat, SecretRef
from injector.render import MAX_RENDERED_BYTES, render_file, template_refs
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import InvalidArgument

DB = SecretRef("payments", "db/password")
API = SecretRef("payments", "api", 3)


@pytest.fixture
def values() -> dict[SecretRef, SecretBytes]:
    rng = random.Random(8)
    return {DB: SecretBytes(rng.randbytes(12).hex().encode()), API: SecretBytes(b"it's\n\"quoted\" \\ $HOME")}


def _render(fmt: RenderFormat, values: dict[SecretRef, SecretBytes], **kwargs: object) -> str:
    spec = FileSpec("f", render=Render(fmt, **kwargs))  # type: ignore[arg-type]
    return render_file(spec, values).reveal().decode()


def test_a_raw_secret_is_written_byte_for_byte() -> None:
    binary = SecretBytes(bytes(range(256)))
    assert render_file(FileSpec("f", secret=DB), {DB: binary}).reveal() == bytes(range(256))


def test_env_files_quote_so_every_value_reads_back_literally(values: dict[SecretRef, SecretBytes]) -> None:
    text = _render(RenderFormat.ENV, values, items={"DB": DB, "API": API})
    db = values[DB].reveal().decode()
    assert text.splitlines()[0] == f"DB='{db}'"
    assert text.splitlines()[1] == 'API="it\'s\\n\\"quoted\\" \\\\ $HOME"'


def test_json_and_yaml_hold_the_values_as_strings(values: dict[SecretRef, SecretBytes]) -> None:
    expected = {"DB": values[DB].reveal().decode(), "API": values[API].reveal().decode()}
    assert json.loads(_render(RenderFormat.JSON, values, items={"DB": DB, "API": API})) == expected
    assert yaml.safe_load(_render(RenderFormat.YAML, values, items={"DB": DB, "API": API})) == expected
    tricky = {DB: SecretBytes(b"yes"), API: SecretBytes(b"0123")}
    assert yaml.safe_load(_render(RenderFormat.YAML, tricky, items={"A": DB, "B": API})) == {"A": "yes", "B": "0123"}


def test_a_value_that_is_not_text_is_refused_for_rendered_files_naming_the_file() -> None:
    with pytest.raises(InvalidArgument, match=r"f: secret payments/db/password is not UTF-8 text"):
        _render(RenderFormat.JSON, {DB: SecretBytes(b"\xff\xfe")}, items={"A": DB})


def test_templates_render_in_a_sandbox(values: dict[SecretRef, SecretBytes]) -> None:
    template = ("db: {{ secret('payments/db/password') }}\n"
                "{% if true %}api: {{ secret('payments/api@3') | length }}{% endif %}\n")
    text = _render(RenderFormat.TEMPLATE, values, template=template)
    assert text == f"db: {values[DB].reveal().decode()}\napi: {len(values[API].reveal().decode())}\n"
    escape = "{{ ''.__class__.__mro__[1].__subclasses__() }}{{ secret('payments/db/password') }}"
    with pytest.raises(InvalidArgument, match="template failed: SecurityError"):
        _render(RenderFormat.TEMPLATE, values, template=escape)
    with pytest.raises(InvalidArgument, match="template failed: UndefinedError"):
        _render(RenderFormat.TEMPLATE, values, template="{{ missing }}{{ secret('payments/db/password') }}")


def test_a_failed_template_never_shows_a_value(values: dict[SecretRef, SecretBytes]) -> None:
    for template in ("{{ secret('payments/db/password') + 1 }}",
                     "{{ 1 / (secret('payments/db/password') | length - 24) }}",
                     "{{ range(secret('payments/db/password')) }}"):
        with pytest.raises(InvalidArgument, match="template failed") as refused:
            _render(RenderFormat.TEMPLATE, values, template=template)
        assert values[DB].reveal().decode() not in str(refused.value)


def test_the_secrets_a_template_names_are_found_without_rendering() -> None:
    refs = template_refs("{{ secret('payments/api@3') }} {{ secret(\"payments/db/password\") }} "
                         "{{ secret('payments/api@3') }}")
    assert refs == (API, DB)
    for bad, message in [
        ("{{ secret(name) }}", "literal"),
        ("{{ secret('a/b', 'c') }}", "literal"),
        ("{% set s = secret %}{{ s('a/b') }}", "use secret only"),
        ("no secrets here", "names no secret"),
        ("{{ secret('nopath') }}", "NAMESPACE/PATH"),
        ("line one\n{% for %}", "template line 2"),
    ]:
        with pytest.raises(InvalidArgument, match=message):
            template_refs(bad)


def test_rendered_output_is_bounded() -> None:
    big = {DB: SecretBytes(b"x" * (MAX_RENDERED_BYTES // 2 + 1))}
    with pytest.raises(InvalidArgument, match="MAX_RENDERED_BYTES"):
        _render(RenderFormat.TEMPLATE, big, template="{{ secret('payments/db/password') }}" * 2)
