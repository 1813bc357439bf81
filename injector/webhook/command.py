"""`injector webhook`: flags to a `WebhookConfig`, the client channel to the service, and the HTTPS server."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from injector.webhook import annotations as ann
from injector.webhook import config as cfg
from injector.webhook.access import DEFAULT_CACHE_SECONDS, AccessChecker, CachedAccessChecker, GrpcAccessChecker
from injector.webhook.admit import Admitter
from injector.webhook.certs import ReloadingContext
from injector.webhook.config import Action, AgentSettings, Checks, WebhookConfig
from injector.webhook.review import review
from injector.webhook.server import (
    DEFAULT_IDLE_TIMEOUT_SECONDS,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_REQUEST_TIMEOUT_SECONDS,
    WebhookServer,
)
from secretsvc import logs
from secretsvc.client import ClientSettings, open_channel, token_source
from secretsvc.client.tokens import TokenSource
from secretsvc.errors import ConfigError, InvalidArgument
from secretsvc.netaddr import is_loopback, parse_host_port

log = logging.getLogger("injector.webhook")

DEFAULT_LISTEN = "0.0.0.0:8443"  # the API server reaches the webhook over the pod network
DEFAULT_GRACE_SECONDS = 10.0

DESCRIPTION = """\
Serve the mutating admission webhook (AdmissionReview v1 over HTTPS, POST /mutate; GET /healthz).

Pods annotated secretsvc.io/inject: "true" get an agent container that writes the secrets they name into a
memory-backed volume. Annotations are checked (unknown ones are refused, with the closest known name), the
pod is checked for settings that expose secrets, and the secrets service is asked whether the pod's service
account may read each secret and whether it exists. docs/injector.md lists every annotation and setting.

The service is reached with the same settings as the secretsvc CLI: the flags below, or SECRETSVC_ADDR,
SECRETSVC_TOKEN, SECRETSVC_CA_FILE, SECRETSVC_CLIENT_CERT, SECRETSVC_CLIENT_KEY.

example:
  injector webhook --listen 0.0.0.0:8443 --tls-cert /tls/tls.crt --tls-key /tls/tls.key \\
      --service-addr secretsvc.secretsvc.svc:8290 --ca-file /ca/ca.crt --token-file /token/token \\
      --agent-image registry.example/secretsvc:0.1.0 --agent-ca-configmap secretsvc-ca
"""


class UsageError(Exception):
    """A flag or file that cannot be used (exit status 2)."""


def _action(*allowed: Action) -> type:
    def parse(text: str) -> Action:
        try:
            action = Action(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(a.value for a in allowed)}") from None
        if action not in allowed:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(a.value for a in allowed)}")
        return action
    return parse  # type: ignore[return-value]


def _optional(text: str) -> str | None:
    return None if text.lower() in {"", "none"} else text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    server = parser.add_argument_group("HTTPS server")
    server.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                        help=f"address to serve on (default {DEFAULT_LISTEN})")
    server.add_argument("--tls-cert", type=Path, required=True, metavar="PEM",
                        help="the webhook's certificate chain (reloaded when the file changes)")
    server.add_argument("--tls-key", type=Path, required=True, metavar="PEM", help="its private key")
    server.add_argument("--request-timeout", type=float, default=DEFAULT_REQUEST_TIMEOUT_SECONDS, metavar="SECONDS",
                        help="longest time one request may take, from its first header line to the end of the "
                             f"answer (default {DEFAULT_REQUEST_TIMEOUT_SECONDS:g})")
    server.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT_SECONDS, metavar="SECONDS",
                        help=f"longest TLS handshake and pause between requests (default "
                             f"{DEFAULT_IDLE_TIMEOUT_SECONDS:g})")
    server.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS, metavar="N",
                        help=f"connections served at once; more are closed (default {DEFAULT_MAX_CONNECTIONS})")
    server.add_argument("--grace-seconds", type=float, default=DEFAULT_GRACE_SECONDS, metavar="SECONDS",
                        help="on SIGTERM, how long requests in flight may take to finish (default 10)")

    pods = parser.add_argument_group("pods")
    pods.add_argument("--annotation-prefix", default=cfg.DEFAULT_PREFIX, metavar="PREFIX",
                      help=f"the annotations' prefix, ending in '/' (default {cfg.DEFAULT_PREFIX})")
    pods.add_argument("--skip-namespace", action="append", default=[], metavar="NS",
                      help="a namespace whose pods are never changed (repeat; kube-system, kube-public and "
                           "kube-node-lease always are)")
    pods.add_argument("--webhook-namespace", default=os.environ.get("POD_NAMESPACE") or None, metavar="NS",
                      help="the webhook's own namespace, skipped too (default: $POD_NAMESPACE)")
    pods.add_argument("--warn-only", action="store_true",
                      help="admit every pod; turn refusals into warnings (for rolling the webhook out)")

    checks = parser.add_argument_group("checks", "each deny (refuse the pod), warn (admit with a warning) or off")
    deny_warn_off = _action(Action.DENY, Action.WARN, Action.OFF)
    checks.add_argument("--check-access", type=deny_warn_off, default=Action.DENY, metavar="deny|warn|off",
                        help="ask the service whether the pod's service account may read each secret and whether "
                             "it exists (default deny)")
    checks.add_argument("--access-cache-seconds", type=float, default=DEFAULT_CACHE_SECONDS, metavar="SECONDS",
                        help="remember the service's answer for one service account and set of secrets this long, "
                             f"so a rollout's burst of pods makes one check; 0 asks for every pod "
                             f"(default {DEFAULT_CACHE_SECONDS:g})")
    checks.add_argument("--on-service-unavailable", type=_action(Action.DENY, Action.WARN), default=Action.WARN,
                        metavar="deny|warn",
                        help="when the service cannot be asked within --timeout (default warn: the agent checks "
                             "again when it fetches)")
    defaults = Checks()
    for name, default, what in (
            ("privileged", defaults.privileged, "privileged containers, or SYS_ADMIN/SYS_PTRACE/ALL capabilities"),
            ("host-namespaces", defaults.host_namespaces, "hostPID, hostIPC, hostNetwork"),
            ("host-path", defaults.host_path, "hostPath volumes"),
            ("unlisted-readers", defaults.unlisted_readers,
             "containers not listed in the containers annotation that share the process namespace")):
        checks.add_argument(f"--check-{name}", type=deny_warn_off, default=default, metavar="deny|warn|off",
                            help=f"{what} (default {default.value})")

    agent = parser.add_argument_group("agent", "the container added to pods")
    agent.add_argument("--agent-image", required=True, metavar="IMAGE", help="the image holding `injector agent`")
    agent.add_argument("--agent-image-pull-policy", default="IfNotPresent", choices=("Always", "IfNotPresent", "Never"))
    agent.add_argument("--agent-service-addr", metavar="HOST:PORT",
                       help="the service's address as pods reach it (default: --service-addr)")
    agent.add_argument("--agent-server-name", metavar="NAME",
                       help="the name in the service's certificate, if not the address's host")
    agent.add_argument("--agent-ca-configmap", metavar="NAME",
                       help="a ConfigMap in each pod's namespace holding the CA bundle that signed the service's "
                            "certificate (e.g. kube-root-ca.crt, or one trust-manager distributes); without it "
                            "the agent gets no CA file")
    agent.add_argument("--agent-ca-configmap-key", default="ca.crt", metavar="KEY",
                       help="the key of the CA bundle in that ConfigMap (default ca.crt)")
    agent.add_argument("--agent-uid", type=int, default=cfg.DEFAULT_AGENT_UID, metavar="UID",
                       help="the agent's user when no file names an owner user (default "
                            f"{cfg.DEFAULT_AGENT_UID})")
    agent.add_argument("--token-audience", default=cfg.DEFAULT_TOKEN_AUDIENCE, metavar="AUD",
                       help=f"audience of the agent's service-account token (default {cfg.DEFAULT_TOKEN_AUDIENCE}; "
                            "one of the service's k8s_audiences)")
    agent.add_argument("--token-expiration-seconds", type=int, default=cfg.DEFAULT_TOKEN_SECONDS, metavar="SECONDS",
                       help=f"the token's lifetime; the kubelet renews it (default {cfg.DEFAULT_TOKEN_SECONDS})")
    for name, quantity in (("cpu-request", cfg.DEFAULT_CPU_REQUEST), ("memory-request", cfg.DEFAULT_MEMORY_REQUEST),
                           ("cpu-limit", None), ("memory-limit", cfg.DEFAULT_MEMORY_LIMIT)):
        agent.add_argument(f"--agent-{name}", type=_optional, default=quantity, metavar="QUANTITY",
                           help=f"default {quantity or 'none'}; 'none' to leave it out; pods may set "
                                f"{cfg.DEFAULT_PREFIX}agent-{name}")
    agent.add_argument("--tmpfs-size", default=cfg.DEFAULT_TMPFS_SIZE, metavar="QUANTITY",
                       help=f"default size limit of the files' memory volume (default {cfg.DEFAULT_TMPFS_SIZE})")
    agent.add_argument("--mount-path", default=cfg.DEFAULT_MOUNT_PATH, metavar="DIR",
                       help=f"default directory of the files in the app containers (default {cfg.DEFAULT_MOUNT_PATH})")

    conn = parser.add_argument_group("connection to the secrets service (as the secretsvc CLI)")
    conn.add_argument("--service-addr", metavar="HOST:PORT", help="the service's address ($SECRETSVC_ADDR)")
    conn.add_argument("--token-file", type=Path, metavar="PATH",
                      help="the webhook's bearer token, read again when it changes ($SECRETSVC_TOKEN); its identity "
                           "needs admin on the system resource access-review")
    conn.add_argument("--timeout", type=float, default=cfg.DEFAULT_ACCESS_TIMEOUT_SECONDS, metavar="SECONDS",
                      help="deadline of the access check, retries included; keep it well below the webhook's "
                           f"timeoutSeconds (default {cfg.DEFAULT_ACCESS_TIMEOUT_SECONDS:g})")
    conn.add_argument("--ca-file", type=Path, metavar="PEM", help="CA bundle of the service ($SECRETSVC_CA_FILE)")
    conn.add_argument("--cert", type=Path, metavar="PEM",
                      help="client certificate for mutual TLS to the service ($SECRETSVC_CLIENT_CERT); needs --key")
    conn.add_argument("--key", type=Path, metavar="PEM", help="its private key ($SECRETSVC_CLIENT_KEY)")
    conn.add_argument("--insecure-plaintext", action="store_const", const=True, default=None,
                      help="INSECURE: plaintext to a non-loopback service, only behind a mesh that adds TLS")

    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--log-format", default="json", choices=("json", "text"))


def _check_quantity(value: str | None, what: str, maximum: int) -> None:
    if value is not None:
        try:
            ann.parse_quantity(value, what=what, maximum=maximum)
        except InvalidArgument as exc:
            raise UsageError(str(exc)) from None


def build_config(args: argparse.Namespace, settings: ClientSettings) -> WebhookConfig:
    prefix = args.annotation_prefix
    if not prefix.endswith("/") or prefix.count("/") != 1 or len(prefix) > 200 or not prefix[:-1].replace(
            ".", "").replace("-", "").isalnum():
        raise UsageError(f"--annotation-prefix {prefix!r} must be a DNS name followed by '/', such as secretsvc.io/")
    agent_addr = args.agent_service_addr or settings.addr
    try:
        host, _ = parse_host_port(agent_addr, setting="--agent-service-addr")
        ann.check_mount_path(args.mount_path)
    except (ConfigError, InvalidArgument) as exc:
        raise UsageError(str(exc)) from None
    if is_loopback(host):
        log.warning("the agent's service address is a loopback address, which an agent in a pod cannot reach; "
                    "set --agent-service-addr", extra={"addr": agent_addr})
    for name in ("cpu_request", "cpu_limit"):
        _check_quantity(getattr(args, f"agent_{name}"), f"--agent-{name.replace('_', '-')}", ann.MAX_CPU_CORES)
    for name in ("memory_request", "memory_limit"):
        _check_quantity(getattr(args, f"agent_{name}"), f"--agent-{name.replace('_', '-')}", ann.MAX_MEMORY_BYTES)
    _check_quantity(args.tmpfs_size, "--tmpfs-size", ann.MAX_TMPFS_BYTES)
    if not 0 < args.agent_uid <= 2**31 - 1:
        raise UsageError("--agent-uid must be a non-root user id (1 or more)")
    if not 600 <= args.token_expiration_seconds <= 2**31 - 1:
        raise UsageError("--token-expiration-seconds must be at least 600 (the Kubernetes minimum)")
    if not 0 <= args.access_cache_seconds <= 3600:
        raise UsageError("--access-cache-seconds must be 0 (ask for every pod) to 3600")
    if args.timeout <= 0 or args.timeout >= args.request_timeout:
        raise UsageError("--timeout must be more than 0 and below --request-timeout, so the access check ends "
                         "before the request's own deadline")
    agent = AgentSettings(
        image=args.agent_image, service_addr=agent_addr, server_name=args.agent_server_name,
        ca_configmap=args.agent_ca_configmap, ca_configmap_key=args.agent_ca_configmap_key,
        token_audience=args.token_audience, token_seconds=args.token_expiration_seconds, default_uid=args.agent_uid,
        cpu_request=args.agent_cpu_request, memory_request=args.agent_memory_request,
        cpu_limit=args.agent_cpu_limit, memory_limit=args.agent_memory_limit, tmpfs_size=args.tmpfs_size,
        mount_path=args.mount_path.rstrip("/") or "/", image_pull_policy=args.agent_image_pull_policy)
    skip = set(cfg.SYSTEM_NAMESPACES) | set(args.skip_namespace)
    if args.webhook_namespace:
        skip.add(args.webhook_namespace)
    return WebhookConfig(
        agent=agent, prefix=prefix,
        checks=Checks(privileged=args.check_privileged, host_namespaces=args.check_host_namespaces,
                      host_path=args.check_host_path, unlisted_readers=args.check_unlisted_readers),
        check_access=args.check_access, service_unavailable=args.on_service_unavailable,
        skip_namespaces=frozenset(skip), warn_only=args.warn_only)


def client_settings(args: argparse.Namespace) -> ClientSettings:
    try:
        return ClientSettings.from_environment(
            os.environ, addr=args.service_addr, ca_file=args.ca_file, cert_file=args.cert, key_file=args.key,
            insecure_plaintext=args.insecure_plaintext, timeout=args.timeout)
    except (ConfigError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def _token(args: argparse.Namespace, settings: ClientSettings) -> TokenSource | None:
    try:
        return token_source(args.token_file, os.environ)
    except ConfigError:
        if settings.cert_file is None:
            raise
        return None  # the client certificate identifies the webhook


def run(args: argparse.Namespace) -> int:
    logs.configure(args.log_level, args.log_format)
    channel = None
    try:
        settings = client_settings(args)
        config = build_config(args, settings)
        host, port = parse_host_port(args.listen, setting="--listen")
        tls = ReloadingContext(args.tls_cert, args.tls_key)
        checker: AccessChecker | None = None
        if config.check_access is not Action.OFF:
            channel = open_channel(settings, _token(args, settings))
            checker = GrpcAccessChecker(channel, settings.timeout)
            if args.access_cache_seconds > 0:
                checker = CachedAccessChecker(checker, args.access_cache_seconds)
        admitter = Admitter(config, checker)
        server = WebhookServer((host, port), tls, lambda body: review(body, admitter),
                               request_timeout=args.request_timeout, idle_timeout=args.idle_timeout,
                               max_connections=args.max_connections)
    except (UsageError, ConfigError) as exc:
        print(f"injector webhook: {exc}", file=sys.stderr)
        if channel is not None:
            channel.close()
        return 2
    except OSError as exc:
        print(f"injector webhook: cannot listen on {args.listen}: {exc.strerror or exc}", file=sys.stderr)
        if channel is not None:
            channel.close()
        return 2

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    serving = threading.Thread(target=server.serve_forever, name="webhook-accept", daemon=True)
    serving.start()
    log.info("webhook serving", extra={
        "listen": f"{host}:{server.port}", "prefix": config.prefix, "check_access": config.check_access.value,
        "service_addr": settings.addr, "warn_only": config.warn_only})
    stop.wait()
    log.info("webhook stopping", extra={"grace_seconds": args.grace_seconds})
    finished = server.stop(args.grace_seconds)
    if channel is not None:
        channel.close()
    log.info("webhook stopped", extra={"requests_finished": finished})
    return 0
