"""The client library: channels to the server with TLS, bearer tokens, deadlines and retries.

Used by the `secretsvc` client commands (`cli/connection.py`) and by the injector's agent; nothing else
builds a channel to the server.

    settings = ClientSettings.from_environment(os.environ)
    with open_channel(settings, token_source(None, os.environ)) as channel:
        SecretsStub(channel).GetSecret(request)   # token, deadline and retries are added by the channel
"""

from secretsvc.client.channel import ClientSettings, open_channel
from secretsvc.client.retry import IDEMPOTENT_METHODS, RetryPolicy
from secretsvc.client.tokens import FileToken, StaticToken, TokenSource, token_source

__all__ = ["IDEMPOTENT_METHODS", "ClientSettings", "FileToken", "RetryPolicy", "StaticToken", "TokenSource",
           "open_channel", "token_source"]
