"""The depth-bounded JSON loader: nesting is measured outside strings, in linear time, before parsing.

Every JSON the scanner reads goes through it; the CLI cases (exit status 2) are in
tests/integration/test_scan_cli_hostile_json.py.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from secretsvc import errors
from secretsvc.scan.sources import open_source
from secretsvc.scan.sources.jsondoc import load_json, nesting_exceeds
from secretsvc.scan.sources.registry import credentials_from_docker_config


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ("[]", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('["[[[[", "{{{{"]', 1),  # brackets inside strings do not count
        ('["\\"[[[["]', 1),  # nor after an escaped quote
        ('["\\\\", [[]]]', 3),  # an escaped backslash ends before the quote
    ],
)
def test_depth_is_measured_outside_strings(text: str, depth: int) -> None:
    json.loads(text)
    assert not nesting_exceeds(text, depth)
    assert nesting_exceeds(text, depth - 1) == (depth > 0)


def test_deep_documents_are_refused_before_parsing() -> None:
    with pytest.raises(errors.LimitExceeded, match=r"manifest nests .* max_json_depth=64"):
        load_json(b"[" * 200_000, "manifest", 64)
    assert load_json(b"[" * 64 + b"]" * 64, "manifest", 64) is not None


def test_malformed_documents_are_invalid_arguments() -> None:
    for data in (b"{not json", b"\xff\xfe\xfd", b'"unterminated', b"]]]"):
        with pytest.raises(errors.InvalidArgument, match="not valid JSON"):
            load_json(data, "index.json", 64)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "unit", ['"\\"', '"\\', "[]", '{"a":"b",', "["], ids=["escapes", "backslashes", "pairs", "objects", "opens"]
)
def test_measuring_is_linear_on_hostile_shapes(unit: str) -> None:
    # CPU time, best of several runs: a machine busy with other work must not fail (or pass) this test.
    def cost(n: int) -> float:
        text = unit * n
        best = float("inf")
        for _ in range(5):
            started = time.process_time()
            nesting_exceeds(text, 64)
            best = min(best, time.process_time() - started)
        return best

    small, large = cost(50_000), cost(400_000)
    assert large < 2.0
    assert large < 24 * max(small, 1e-3)  # 8x the input: linear is ~8x, quadratic ~64x


DEEP = b"[" * 200_000


def test_deep_docker_config_file_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_bytes(DEEP)
    with pytest.raises(errors.LimitExceeded, match="max_json_depth"):
        credentials_from_docker_config("registry.example.org", cfg, 1 << 20)


class _DeepRegistry(http.server.ThreadingHTTPServer):
    """Answers every manifest request with a bearer challenge (mode "token") or a deep manifest."""

    def __init__(self, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), _DeepHandler)
        self.mode = mode


class _DeepHandler(http.server.BaseHTTPRequestHandler):
    server: _DeepRegistry

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        host = f"127.0.0.1:{self.server.server_address[1]}"
        if self.server.mode == "token" and not self.path.startswith("/token"):
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer realm="http://{host}/token",service="t"')
            body = b""
        else:
            self.send_response(200)
            body = DEEP
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("mode", "what"), [("token", "token response"), ("manifest", "manifest")])
def test_deep_registry_documents_are_refused(mode: str, what: str) -> None:
    server = _DeepRegistry(mode)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        ref = f"docker://127.0.0.1:{server.server_address[1]}/team/app:latest"
        with open_source(ref) as src, pytest.raises(errors.LimitExceeded, match=f"{what} nests"):
            list(src.images())
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
