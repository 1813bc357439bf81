"""The built-in policy document: the policy "admin", which the first-start admin token holds.

It is an ordinary document, loaded before any file, so it is evaluated by the same code as every other policy
(an explicit deny in another policy the caller holds still wins over it) and `explain` can name its lines.
No file may define another policy named "admin"; files may bind identities to it.
"""

from __future__ import annotations

SOURCE = "<builtin>"
ADMIN_POLICY = "admin"

# Every capability on every kind of resource it applies to (model.APPLICABLE); a test holds the two together.
TEXT = b"""\
version: 1
policies:
  - name: admin
    description: Grants everything. Held by the token made on first start.
    rules:
      - paths: ["**"]
        capabilities: [read, list, create, update, delete, destroy, match]
        effect: allow
      - keys: ["*"]
        capabilities: [read, list, create, update, delete, destroy, encrypt, decrypt, rewrap, rotate]
        effect: allow
      - system: ["*"]
        capabilities: [admin]
        effect: allow
"""
