"""`injector agent`: write a pod's secrets into its memory-backed volume, then (sidecar modes) keep them current.

One round: read every secret of the plan in one `GetSecrets` call, render each file (injector/render.py),
write it atomically with its mode and owner, then `.version` and `.ready`. Init mode exits 0 after the first
round. Sidecar modes then follow `WatchSecrets` and run another round whenever a watched secret's version
changes, reconnecting by themselves; nothing is polled.

Exit status (docs/injector-agent.md): 0 done; 2 usage or a bad plan; 3 refused for good (denied, not found,
deleted or destroyed, not a tmpfs, a file that cannot be rendered); 75 try again later (the service could
not be reached within the plan's deadline). Values never reach the log or the terminal.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

DESCRIPTION = __doc__.split("\n\n", 1)[1] if __doc__ else ""

EXIT_OK, EXIT_USAGE, EXIT_PERMANENT, EXIT_RETRY_LATER = 0, 2, 3, 75
RETRYABLE = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "UNAUTHENTICATED"})
log = logging.getLogger("injector.agent")


class Refused(Exception):
    """A failure that retrying will not fix; the message names the secret or file and the reason."""


class Unreachable(Exception):
    """The service could not be asked before the deadline."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plan-file", type=Path, metavar="FILE",
                        help="the plan (JSON); default: the SECRETSVC_AGENT_PLAN environment variable")
    parser.add_argument("--addr", metavar="HOST:PORT", help="the service's address, instead of the plan's")
    parser.add_argument("--token-file", type=Path, metavar="PATH", help="bearer token file, instead of the plan's")
    parser.add_argument("--ca-file", type=Path, metavar="PEM", help="CA bundle for the service, instead of the plan's")
    parser.add_argument("--target-dir", type=Path, metavar="DIR", help="where to write, instead of the plan's")
    parser.add_argument("--unsafe-allow-disk", action="store_true",
                        help="UNSAFE: write even where the target is not a tmpfs (secrets then outlive the pod)")
    parser.add_argument("--check-ready", action="store_true",
                        help="exit 0 if every file has been written at least once, 1 if not (a startup probe)")


def _plan(args: argparse.Namespace) -> Any:
    from injector.plan import ENV_VAR, parse_plan

    if args.plan_file is not None:
        text = args.plan_file.read_bytes()
    elif os.environ.get(ENV_VAR):
        text = os.environ[ENV_VAR].encode()
    else:
        raise Refused(f"no plan: set {ENV_VAR} or pass --plan-file")
    plan = parse_plan(text)
    service = plan.service
    if args.addr:
        service = replace(service, addr=args.addr)
    if args.token_file:
        service = replace(service, token_file=str(args.token_file))
    if args.ca_file:
        service = replace(service, ca_file=str(args.ca_file))
    return replace(plan, service=service, target_dir=str(args.target_dir) if args.target_dir else plan.target_dir)


def fetch(service: Any, refs: list[Any], deadline: float) -> tuple[dict[Any, Any], dict[str, int]]:
    """Every value in one call (retried with backoff until `deadline`), and the version each had; Refused for
    a permanent item error."""
    from injector.agent.wire import STATUS_NAMES, RpcError
    from secretsvc.crypto.secretbytes import SecretBytes

    attempt = 0
    while True:
        attempt += 1
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise Unreachable("the plan's deadline passed")
            response = service.get_secrets(refs, timeout=max(0.5, min(left, 30.0)))
            if len(response.results) != len(refs):
                raise Refused(f"the service answered {len(response.results)} of {len(refs)} secrets")
            retry_items = []
            for ref, result in zip(refs, response.results, strict=True):
                if result.HasField("error"):
                    code = STATUS_NAMES[result.error.code] if 0 <= result.error.code < len(STATUS_NAMES) else "UNKNOWN"
                    if code not in RETRYABLE:
                        raise Refused(f"{code.lower()}: {ref}: {result.error.message[:300]}")
                    retry_items.append(str(ref))
            if not retry_items:
                pairs = list(zip(refs, response.results, strict=True))
                return ({ref: SecretBytes(result.secret.value) for ref, result in pairs},
                        {str(ref): result.secret.version for ref, result in pairs})
            reason = f"items not ready: {', '.join(retry_items[:5])}"
        except RpcError as exc:
            if exc.code not in RETRYABLE:
                raise Refused(f"{exc.code.lower()}: {exc.details[:300]}") from None
            reason = f"{exc.code.lower()}: {exc.details[:200]}"
        pause = random.uniform(0, min(10.0, 0.2 * 2 ** min(attempt, 10)))  # noqa: S311 - jitter, not secrecy
        if time.monotonic() + pause >= deadline:
            raise Unreachable(reason)
        log.warning("secrets not fetched yet, retrying in %.1f s: %s", pause, reason)
        time.sleep(pause)


def write_round(plan: Any, values: dict[Any, Any], versions: dict[str, int]) -> None:
    from injector.agent import files
    from injector.render import render_file
    from secretsvc.errors import InvalidArgument

    target = Path(plan.target_dir)
    for spec in plan.files:
        try:
            data = render_file(spec, values)
        except InvalidArgument as exc:
            raise Refused(str(exc)) from None
        files.write_atomically(target, spec.name, data, mode=spec.mode, uid=spec.uid, gid=spec.gid)
    files.write_versions(target, versions)


def run_round(service: Any, plan: Any, deadline: float) -> dict[tuple[str, str], int]:
    """Fetch and write every file; returns the current version written of each secret not pinned to one."""
    refs = list(plan.refs())
    values, versions = fetch(service, refs, deadline)
    write_round(plan, values, versions)
    return {(r.namespace, r.path): versions[str(r)] for r in refs if r.version is None}


def _watch(service: Any, plan: Any, written: dict[tuple[str, str], int]) -> None:
    from injector.agent import files

    refs = sorted({(r.namespace, r.path) for r in plan.refs()})
    # Seeded with what the first round wrote, so a version put between that round and the watch's first
    # message is noticed there.
    seen: dict[tuple[str, str], int] = dict(written)
    stale = False  # a rewrite failed: the next batch, whatever it holds, tries again
    log.info("watching for new versions", extra={"secrets": len(refs)})
    def retrying(error: Exception, delay: float) -> None:
        log.warning("watch interrupted, reconnecting in %.1f s: %s", delay, error)

    for batch in service.follow(refs, on_retry=retrying):
        changed, stale = stale, False
        for state in batch.changes:
            key = (state.namespace, state.path)
            if seen.get(key) not in (None, state.current_version):
                changed = True
            seen[key] = state.current_version
        if changed:
            try:
                seen.update(run_round(service, plan, time.monotonic() + plan.deadline_seconds))
            except Unreachable as exc:
                # The files written before stay; the next change, or the next stream's first message after a
                # reconnect, tries again.
                stale = True
                log.warning("files not rewritten, the service could not be reached: %s", exc)
                continue
            files.mark_ready(Path(plan.target_dir))
            log.info("files rewritten after a change")
            _reload(plan)


def _reload(plan: Any) -> None:
    import signal
    import urllib.request

    reload = plan.reload
    if reload.signal and reload.process:
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            if comm == reload.process:
                os.kill(int(pid), getattr(signal, reload.signal))
    if reload.url:
        try:
            urllib.request.urlopen(urllib.request.Request(reload.url, method="POST"), timeout=10).close()  # noqa: S310
        except OSError as exc:
            log.warning("reload request failed: %s", exc)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    from injector.agent import files
    from injector.plan import AgentMode
    from secretsvc.errors import ConfigError, InvalidArgument

    try:
        plan = _plan(args)
    except (InvalidArgument, Refused, OSError) as exc:
        print(f"injector agent: {exc}", file=sys.stderr)
        return EXIT_USAGE
    target = Path(plan.target_dir)
    if args.check_ready:
        return EXIT_OK if files.is_ready(target) else 1
    try:
        if not args.unsafe_allow_disk:
            files.require_memory_backed(target)
        else:
            log.warning("--unsafe-allow-disk: %s may be disk-backed; the secrets may outlive the pod", target)
        from injector.agent.calls import SecretsService

        service = SecretsService(plan.service)
        written = run_round(service, plan, time.monotonic() + plan.deadline_seconds)
        files.mark_ready(target)
    except (files.NotMemoryBacked, Refused, ConfigError, OSError) as exc:
        print(f"injector agent: {exc}", file=sys.stderr)
        return EXIT_PERMANENT
    except Unreachable as exc:
        print(f"injector agent: the secrets service could not be reached in time ({exc}); try again later",
              file=sys.stderr)
        return EXIT_RETRY_LATER
    log.info("every file written", extra={"files": len(plan.files)})
    if plan.mode is AgentMode.INIT:
        service.close()
        return EXIT_OK
    from injector.agent.wire import RpcError

    try:
        _watch(service, plan, written)
    except (Refused, OSError) as exc:
        print(f"injector agent: {exc}", file=sys.stderr)
        return EXIT_PERMANENT
    except RpcError as exc:  # a watch refused for good: the files stay, the container restarts
        print(f"injector agent: watch ended: {exc}", file=sys.stderr)
        return EXIT_PERMANENT
    return EXIT_OK

