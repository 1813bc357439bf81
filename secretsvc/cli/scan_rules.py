"""`secretsvc scan rules`: list the detection rules, check a user's rule files, and load them for a scan.

Output names rules, files and example templates, never a filled-in example value.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from secretsvc.errors import InvalidArgument, SecretsvcError
from secretsvc.scan.model import EXIT_USAGE
from secretsvc.scan.reporters.text import safe
from secretsvc.scan.rules.cache import DatabaseCache
from secretsvc.scan.rules.engine import build_engine
from secretsvc.scan.rules.loader import LoadedRule, builtin_rules, check_unique, load_file

EXIT_OK = 0
EXIT_EXAMPLES_FAIL = 1


def load_user_rules(paths: Sequence[Path]) -> list[LoadedRule]:
    """The rules of the user's files, in order; an id that a built-in rule or another file already uses is an
    error naming both. A file named twice (on the command line and in the config) is read once."""
    seen: set[Path] = set()
    loaded: list[LoadedRule] = []
    for path in paths:
        key = path.resolve()
        if key in seen:
            continue
        seen.add(key)
        loaded += load_file(path)
    builtin = {r.rule.info.rule_id: r.rule.info.source for r in builtin_rules()}
    for rule in loaded:
        info = rule.rule.info
        if info.rule_id in builtin:
            raise InvalidArgument(
                f"{info.source}: rule {info.rule_id}: the id is already used by a built-in rule "
                f"({builtin[info.rule_id]}): ids are never reused, pick another"
            )
    check_unique(loaded)
    _check_triggers(loaded)
    return loaded


def _check_triggers(loaded: Sequence[LoadedRule]) -> None:
    """A `trigger` Python accepts but Hyperscan refuses would fail the whole rule set without naming its rule:
    compile the users' triggers together once, and only when that fails, rule by rule to name the culprit."""
    triggers = [(r, (d.trigger, d.caseless, d.multiline)) for r in loaded for d in r.rule.detectors]
    if not triggers:
        return
    try:
        build_engine([t for _, t in triggers], cache=None)
        return
    except InvalidArgument:
        pass
    for rule, trigger in triggers:
        try:
            build_engine([trigger], cache=None)
        except InvalidArgument as exc:
            info = rule.rule.info
            raise InvalidArgument(f"{info.source}: rule {info.rule_id}: {exc}") from None


def run_list(args: argparse.Namespace) -> int:
    from secretsvc.scan.rules import listing

    try:
        user = load_user_rules(args.rules or [])
    except SecretsvcError as exc:
        return _fail(str(exc))
    infos = [r.rule.info for r in (*builtin_rules(), *user)]
    try:
        sys.stdout.write(listing.render(infos, args.format))
        sys.stdout.flush()
    except BrokenPipeError:
        pass  # `| head`: the reader has what it wanted
    return EXIT_OK


def run_check(args: argparse.Namespace) -> int:
    from secretsvc.scan.rules import RuleSet
    from secretsvc.scan.rules.selfcheck import check_examples

    invalid = False
    per_file: list[tuple[Path, list[LoadedRule]]] = []
    for path in args.files:
        try:
            per_file.append((path, load_user_rules([path])))
        except SecretsvcError as exc:
            print(f"secretsvc scan rules check: {safe(str(exc))}", file=sys.stderr)
            invalid = True
    if invalid:
        return EXIT_USAGE
    user = [r for _, rules in per_file for r in rules]
    try:
        check_unique(user)  # between the files
        ruleset = RuleSet.default(cache=DatabaseCache.from_environment(os.environ)).adding([r.rule for r in user])
    except SecretsvcError as exc:
        return _fail(str(exc))
    failures = check_examples(ruleset, user)
    for failure in failures:
        print(f"FAIL {safe(str(failure))}")
    failed_rules = {f.rule_id for f in failures}
    for path, rules in per_file:
        bad = sum(1 for r in rules if r.rule.info.rule_id in failed_rules)
        verdict = f"{bad} with failing examples" if bad else "examples pass"
        print(f"{safe(str(path))}: {len(rules)} rule{'s' if len(rules) != 1 else ''}, {verdict}")
    return EXIT_EXAMPLES_FAIL if failures else EXIT_OK


def _fail(message: str) -> int:
    print(f"secretsvc scan rules: error: {safe(message)}", file=sys.stderr)
    return EXIT_USAGE
