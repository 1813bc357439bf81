#!/usr/bin/env bash
# Install secretsvc into ./.venv and run the server on its embedded default: SQLite and a local keyring in
# ~/.local/share/secretsvc, listening on 127.0.0.1:8290. Extra arguments go to `secretsvc serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup-lib.sh
ensure_venv
.venv/bin/pip install -q .
exec .venv/bin/secretsvc serve "$@"
