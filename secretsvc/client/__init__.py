"""The client library: channels to the server with TLS, bearer tokens, deadlines and retries.

Used by the `secretsvc` client commands (`cli/connection.py`) and by the injector; nothing else builds a
channel to the server.

    settings = ClientSettings.from_environment(os.environ)
    with open_channel(settings, token_source(None, os.environ)) as channel:
        SecretsStub(channel).GetSecret(request)   # token, deadline and retries are added by the channel

Names are imported from their modules on first use, so a program that needs only `tokens` (the injector's
agent, which speaks to the service without grpcio) does not load grpcio by importing this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from secretsvc.client.channel import ClientSettings, open_channel
    from secretsvc.client.retry import IDEMPOTENT_METHODS, RetryPolicy
    from secretsvc.client.tokens import FileToken, StaticToken, TokenSource, token_source

_HOMES = {
    "ClientSettings": "channel", "open_channel": "channel",
    "IDEMPOTENT_METHODS": "retry", "RetryPolicy": "retry",
    "FileToken": "tokens", "StaticToken": "tokens", "TokenSource": "tokens", "token_source": "tokens",
}
__all__ = ["IDEMPOTENT_METHODS", "ClientSettings", "FileToken", "RetryPolicy", "StaticToken", "TokenSource",
           "open_channel", "token_source"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
