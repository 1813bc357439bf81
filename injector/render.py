"""Turn fetched secret values into file contents: the value itself, an env file, JSON, YAML, or a sandboxed
Jinja2 template in which `secret('NAMESPACE/PATH[@VERSION]')` inserts a value.

`template_refs` finds the secrets a template names without rendering it, so the webhook can check access at
admission and the agent can fetch them all in one round trip. A template must name each secret with a
literal string: a computed name could not be checked before the pod starts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from injector.plan import MAX_ITEMS_PER_FILE, FileSpec, Render, RenderFormat, SecretRef
from secretsvc.crypto.secretbytes import SecretBytes
from secretsvc.errors import InvalidArgument

if TYPE_CHECKING:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_RENDERED_BYTES = 1024 * 1024
_SECRET_FUNCTION = "secret"  # noqa: S105 - the template function's name, not a credential


# Jinja2 and PyYAML are imported by the functions that use them: most pods' files are plain values, and the
# agent starts in every pod (the two cost it ~30 ms and ~8 MiB).
def _environment() -> ImmutableSandboxedEnvironment:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    # Autoescape off: the output is a config file, not HTML. Undefined names fail instead of rendering empty.
    return ImmutableSandboxedEnvironment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)


def template_refs(template: str) -> tuple[SecretRef, ...]:
    """The secrets `template` names, sorted, or `InvalidArgument` saying what is wrong and on which line."""
    from jinja2 import TemplateSyntaxError, nodes

    try:
        tree = _environment().parse(template)
    except TemplateSyntaxError as exc:
        raise InvalidArgument(f"template line {exc.lineno}: {exc.message}") from None
    calls = [c for c in tree.find_all(nodes.Call)
             if isinstance(c.node, nodes.Name) and c.node.name == _SECRET_FUNCTION]
    uses = [n for n in tree.find_all(nodes.Name) if n.name == _SECRET_FUNCTION]
    if len(uses) != len(calls):
        line = next((n.lineno for n in uses if not any(c.node is n for c in calls)), 0)
        raise InvalidArgument(f"template line {line}: use secret only as secret('NAMESPACE/PATH')")
    refs: set[SecretRef] = set()
    for call in calls:
        literal = call.args[0] if len(call.args) == 1 else None
        if (call.kwargs or call.dyn_args or call.dyn_kwargs or not isinstance(literal, nodes.Const)
                or not isinstance(literal.value, str)):
            raise InvalidArgument(f"template line {call.lineno}: secret() takes one literal string, "
                                  "secret('NAMESPACE/PATH[@VERSION]'), so it can be checked before the pod starts")
        refs.add(SecretRef.parse(literal.value))
    if not refs:
        raise InvalidArgument("template names no secret; insert one with {{ secret('NAMESPACE/PATH') }}")
    if len(refs) > MAX_ITEMS_PER_FILE:
        raise InvalidArgument(f"template names more than MAX_ITEMS_PER_FILE={MAX_ITEMS_PER_FILE} secrets")
    return tuple(sorted(refs, key=SecretRef.sort_key))


def _text(values: Mapping[SecretRef, SecretBytes], ref: SecretRef, file_name: str) -> str:
    try:
        return values[ref].reveal().decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument(f"{file_name}: secret {ref} is not UTF-8 text, so it cannot go into a rendered file; "
                              "give it a file of its own (secretsvc.io/secret-NAME)") from None


def _env_line(key: str, value: str) -> str:
    if "'" not in value and "\n" not in value and "\r" not in value:
        return f"{key}='{value}'"  # single quotes: literal for every dotenv reader and for sh
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'{key}="{escaped}"'


def _items(render: Render, values: Mapping[SecretRef, SecretBytes], file_name: str) -> dict[str, str]:
    return {key: _text(values, ref, file_name) for key, ref in render.items.items()}


def _template(render: Render, values: Mapping[SecretRef, SecretBytes], file_name: str) -> str:
    from jinja2.exceptions import SecurityError, TemplateError

    def secret(text: str) -> str:
        return _text(values, SecretRef.parse(text), file_name)

    try:
        return _environment().from_string(render.template).render({_SECRET_FUNCTION: secret})
    except InvalidArgument:
        raise
    except (SecurityError, TemplateError) as exc:
        # Jinja's messages name the construct (an attribute, an undefined name), not the values it held.
        raise InvalidArgument(f"{file_name}: template failed: {type(exc).__name__}: {str(exc)[:200]}") from None
    except Exception as exc:
        # Anything else (TypeError, ValueError, ...) may quote a value in its message: name only its type.
        raise InvalidArgument(f"{file_name}: template failed: {type(exc).__name__} (values are not shown)") from None


def render_file(spec: FileSpec, values: Mapping[SecretRef, SecretBytes]) -> SecretBytes:
    """The bytes to write for `spec`, given every value it needs. `InvalidArgument` names the file and why."""
    if spec.secret is not None:
        return values[spec.secret]
    render = spec.render
    assert render is not None
    if render.format is RenderFormat.ENV:
        text = "".join(_env_line(k, v) + "\n" for k, v in _items(render, values, spec.name).items())
    elif render.format is RenderFormat.JSON:
        text = json.dumps(_items(render, values, spec.name), ensure_ascii=False, indent=2) + "\n"
    elif render.format is RenderFormat.YAML:
        import yaml

        text = yaml.safe_dump(_items(render, values, spec.name), allow_unicode=True, sort_keys=False,
                              default_flow_style=False)
    else:
        text = _template(render, values, spec.name)
    data = text.encode("utf-8")
    if len(data) > MAX_RENDERED_BYTES:
        raise InvalidArgument(f"{spec.name}: the rendered file is larger than MAX_RENDERED_BYTES={MAX_RENDERED_BYTES}")
    return SecretBytes(data)
