"""Named limits on policy documents, checked while they load. Each message names its limit and its value.

Documents come from operators (files) and, later, from callers of the policy API, so every count and length
read from one is bounded before it costs memory or time.
"""

from __future__ import annotations

MAX_POLICY_FILE_BYTES = 1024 * 1024
MAX_POLICY_FILES = 1000  # in one directory
MAX_NESTING_DEPTH = 16  # the schema itself is five levels deep
# Bounds met while a file is parsed, before the schema's own: no list the schema takes is longer than the
# largest list limit below, and no mapping it takes has more than six keys.
MAX_LIST_ITEMS = 10_000
MAX_MAPPING_KEYS = 64
MAX_PROBLEMS_PER_DOCUMENT = 100  # reported; the rest are counted
MAX_POLICIES = 10_000  # in one policy set, across files
MAX_RULES_PER_POLICY = 1000
MAX_RULES = 100_000  # in one policy set, across files
MAX_PATTERNS_PER_RULE = 100
MAX_BINDINGS = 10_000  # in one policy set, across files
MAX_POLICIES_PER_BINDING = 64
MAX_PATTERN_CHARS = 1024
# The matcher is linear in the pattern whatever it holds; the bound keeps patterns readable, not fast.
MAX_WILDCARDS_PER_PATTERN = 16
MAX_DESCRIPTION_CHARS = 1024
# Mirrors service.limits.MAX_POLICY_NAME_BYTES: a policy name a token can hold is one a document can define.
MAX_POLICY_NAME_CHARS = 128

# Memos of the evaluator, cleared when full: one entry per distinct caller, one per distinct set of policies.
MAX_CACHED_PRINCIPALS = 4096
MAX_CACHED_VIEWS = 1024
