"""Settings for every server the tests start."""

from __future__ import annotations

import os

# `secretsvc serve` runs one worker process per core by default. Servers the tests start run one process
# unless a test asks for more (`--processes`): most tests are about one server's behaviour, and a supervisor
# with a worker per core would double each start and the memory of a suite that starts hundreds. The worker
# tests (tests/integration/test_workers_server.py) start the default and several processes on purpose.
os.environ.setdefault("SECRETSVC_PROCESSES", "1")
