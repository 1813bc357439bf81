"""The admission webhook as the API server meets it: `injector webhook` in its own process, HTTPS with a test
PKI, and a real secretsvc server process deciding the access checks from a policy file.

No Kubernetes API server can run here, so these tests speak its protocol: AdmissionReview v1 JSON posted over
HTTPS, the returned JSON Patch applied to the pod and the result validated with the `kubernetes` client's
models, then reviewed again to show that nothing more changes. Bad requests are tested as carefully as good
ones: oversized, not JSON, the wrong kind or version, too deep, chunked, slow.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from injector.plan import ENV_VAR, AgentMode, parse_plan
from secretsvc.crypto import pki
from secretsvc.v1 import secrets_pb2
from tests.admissionkit import apply_patch, decode_patch, pod, review_request, validate_pod
from tests.integration.serverproc import ServerProcess, Stubs, free_port
from tests.tlskit import DevPki, make_pki, write_issued

P = "secretsvc.io/"
AGENT_IMAGE = "registry.example/secretsvc:0.1.0"
POLICIES = """\
version: 1
policies:
  - name: payments-read
    rules:
      - paths: ["payments/**"]
        capabilities: [read]
        effect: allow
  - name: reviewer
    rules:
      - system: ["access-review"]
        capabilities: [admin]
        effect: allow
bindings:
  - identity: {kind: serviceaccount, pattern: "payments/app"}
    policies: [payments-read]
  - identity: {kind: token, pattern: "webhook"}
    policies: [reviewer]
"""
SECRETS = ("payments/db/password", "payments/api", "billing/key")


@dataclass
class Webhook:
    """`injector webhook` in a subprocess on a free loopback port."""

    dev: DevPki
    workdir: Path
    args: tuple[str, ...] = ()
    cert: Path | None = None
    key: Path | None = None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"webhook-{self.port}.log"

    def start(self) -> Webhook:
        cert, key = self.cert or self.dev.server_cert, self.key or self.dev.server_key
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "injector.cli", "webhook", "--listen", f"127.0.0.1:{self.port}",
                 "--tls-cert", str(cert), "--tls-key", str(key), "--agent-image", AGENT_IMAGE,
                 "--agent-service-addr", "secretsvc.secretsvc.svc:8290", "--agent-ca-configmap", "secretsvc-ca",
                 "--log-format", "json", *self.args],
                stdout=log, stderr=subprocess.STDOUT, env={k: v for k, v in os.environ.items()
                                                           if not k.startswith("SECRETSVC_")})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"webhook exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self.get("/healthz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"webhook did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.dev.ca))

    def connection(self, timeout: float = 10) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(), timeout=timeout)

    def get(self, path: str) -> tuple[int, bytes]:
        conn = self.connection()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def post(self, body: bytes, headers: dict[str, str] | None = None, path: str = "/mutate") -> tuple[int, bytes]:
        conn = self.connection()
        try:
            conn.request("POST", path, body=body, headers=headers or {"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def review(self, obj: dict[str, Any], **kw: Any) -> dict[str, Any]:
        status, body = self.post(json.dumps(review_request(obj, **kw)).encode())
        assert status == 200, body
        answer: dict[str, Any] = json.loads(body)
        return answer

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    """A secretsvc server with the policies above, the secrets in SECRETS, and the webhook's token file."""
    root = tmp_path_factory.mktemp("service")
    (root / "policies.yaml").write_text(POLICIES)
    server = ServerProcess(data_dir=root / "data", extra_args=("--policy-path", str(root / "policies.yaml"))).start()
    stubs = Stubs(server)
    for name in SECRETS:
        namespace, path = name.split("/", 1)
        stubs.secrets.PutSecret(secrets_pb2.PutSecretRequest(
            ref=secrets_pb2.SecretRef(namespace=namespace, path=path), value=os.urandom(16).hex().encode()),
            metadata=stubs.md)
    stubs.close()
    created = server.cli("token", "create", "webhook")
    assert created.returncode == 0, created.stderr
    token_file = root / "webhook.token"
    token_file.write_bytes(created.stdout.strip() + b"\n")
    yield server, token_file
    server.stop()


def _start(dev: DevPki, tmp: Path, *args: str) -> Webhook:
    return Webhook(dev, tmp, args=args).start()


@pytest.fixture(scope="module")
def webhook(dev: DevPki, service: tuple[ServerProcess, Path],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    server, token_file = service
    hook = _start(dev, tmp_path_factory.mktemp("webhook"), "--service-addr", server.addr, "--token-file",
                  str(token_file), "--request-timeout", "3", "--idle-timeout", "3")
    yield hook
    assert hook.stop() == 0
    assert token_file.read_text().strip() not in hook.log()  # the token is never logged


def admitted(hook: Webhook, obj: dict[str, Any]) -> dict[str, Any]:
    """The pod after the webhook's patch, validated; a second review of it must change nothing."""
    answer = hook.review(obj)["response"]
    assert answer["allowed"] is True, answer
    patched = apply_patch(obj, decode_patch({"response": answer}))
    validate_pod(patched)
    again = hook.review(patched)["response"]
    assert again["allowed"] is True and "patch" not in again
    return patched


def agent_plans(patched: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for c in patched["spec"].get("initContainers", []) + patched["spec"]["containers"]:
        for env in c.get("env", []):
            if env["name"] == ENV_VAR:
                out[c["name"]] = parse_plan(env["value"])
    return out


CASES: dict[str, tuple[dict[str, str], dict[str, Any], AgentMode]] = {
    "one secret, init": ({P + "secret-db-password": "payments/db/password"}, {}, AgentMode.INIT),
    "a version": ({P + "secret-db": "payments/db/password@1"}, {}, AgentMode.INIT),
    "env file": ({P + "template-app.env": "DB=payments/db/password\nAPI=payments/api", P + "format-app.env": "env"},
                 {}, AgentMode.INIT),
    "json file": ({P + "template-app.json": "DB=payments/db/password", P + "format-app.json": "json"}, {},
                  AgentMode.INIT),
    "yaml file": ({P + "template-app.yaml": "DB=payments/db/password", P + "format-app.yaml": "yaml"}, {},
                  AgentMode.INIT),
    "jinja template": ({P + "template-conf.ini": "[db]\npassword = {{ secret('payments/db/password') }}\n"}, {},
                       AgentMode.INIT),
    "native sidecar": ({P + "secret-db": "payments/db/password", P + "agent-mode": "native-sidecar",
                        P + "reload-url": "http://127.0.0.1:9000/reload"}, {}, AgentMode.NATIVE_SIDECAR),
    "sidecar with signal": ({P + "secret-db": "payments/db/password", P + "agent-mode": "sidecar",
                             P + "reload-signal": "SIGHUP", P + "reload-process": "nginx"},
                            {"shareProcessNamespace": True}, AgentMode.SIDECAR),
    "owner, mode, path, size, resources": (
        {P + "secret-db": "payments/db/password", P + "owner-db": "1000:3000", P + "mode-db": "0440",
         P + "mount-path": "/etc/app/secrets", P + "tmpfs-size": "1Mi", P + "agent-cpu-request": "20m",
         P + "agent-memory-request": "24Mi", P + "agent-memory-limit": "40Mi", P + "agent-deadline-seconds": "30"},
        {}, AgentMode.INIT),
    "listed containers": ({P + "secret-db": "payments/db/password", P + "containers": "worker"},
                          {"containers": [{"name": "app", "image": "a"}, {"name": "worker", "image": "w"}]},
                          AgentMode.INIT),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_annotation_case_is_patched_into_a_valid_pod_and_left_alone_the_second_time(
        webhook: Webhook, case: str) -> None:
    annotations, spec, mode = CASES[case]
    patched = admitted(webhook, pod({P + "inject": "true", **annotations}, **spec))
    plans = agent_plans(patched)
    assert plans, "no agent container"
    assert {p.mode for p in plans.values()} == ({AgentMode.INIT, AgentMode.SIDECAR} if mode is AgentMode.SIDECAR
                                                 else {mode})
    files = {v["name"]: v for v in patched["spec"]["volumes"]}
    assert files["secretsvc-files"]["emptyDir"]["medium"] == "Memory"
    for plan in plans.values():
        assert plan.service.addr == "secretsvc.secretsvc.svc:8290"
        assert plan.target_dir == annotations.get(P + "mount-path", "/var/run/secrets/secretsvc")


BAD: dict[str, tuple[dict[str, str], dict[str, Any], str]] = {
    "misspelled annotation": ({P + "secret-db": "payments/db/password", P + "agent-mdoe": "sidecar"}, {},
                              f"did you mean {P}agent-mode?"),
    "invalid reference": ({P + "secret-db": "payments"}, {}, f"annotation {P}secret-db"),
    "duplicate file": ({P + "secret-db": "payments/api", P + "template-db": "{{ secret('payments/api') }}"}, {},
                       "each file has one source"),
    "file name leaving the mount": ({P + "secret-..": "payments/api"}, {}, "may only hold letters"),
    "mount over /etc": ({P + "secret-db": "payments/api", P + "mount-path": "/etc"}, {}, "would hide"),
    "unknown owner": ({P + "secret-db": "payments/api"}, {"securityContext": {}}, "its owner is unknown"),
    "privileged": ({P + "secret-db": "payments/api"},
                   {"containers": [{"name": "app", "image": "a", "securityContext": {"privileged": True}}]},
                   "container app is privileged"),
    "host network": ({P + "secret-db": "payments/api"}, {"hostNetwork": True}, "sets hostNetwork"),
    "secret denied by policy": ({P + "secret-key": "billing/key"}, {},
                                "secret billing/key: service account payments/app may not read it"),
    "secret missing": ({P + "secret-gone": "payments/gone"}, {}, "secret payments/gone: payments/gone does not exist"),
    "version missing": ({P + "secret-db": "payments/db/password@9"}, {}, "payments/db/password has no version 9"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_each_bad_case_is_refused_with_a_message_that_says_what_to_fix(webhook: Webhook, case: str) -> None:
    annotations, spec, expected = BAD[case]
    answer = webhook.review(pod({P + "inject": "true", **annotations}, **spec))["response"]
    assert answer["allowed"] is False and "patch" not in answer
    assert answer["status"]["code"] == 403
    assert expected in answer["status"]["message"], answer["status"]["message"]


def test_another_service_account_is_refused_and_the_message_names_it(webhook: Webhook) -> None:
    answer = webhook.review(pod({P + "inject": "true", P + "secret-db": "payments/db/password"},
                                service_account="batch"))["response"]
    assert not answer["allowed"]
    message = answer["status"]["message"]
    assert "service account payments/batch may not read it" in message and "no policy grants it" in message
    assert "bind a policy granting read on payments/db/password to serviceaccount payments/batch" in message


def test_warn_mode_admits_with_warnings_naming_the_secret(dev: DevPki, service: tuple[ServerProcess, Path],
                                                          tmp_path: Path) -> None:
    server, token_file = service
    hook = _start(dev, tmp_path, "--service-addr", server.addr, "--token-file", str(token_file),
                  "--check-access", "warn", "--check-host-path", "warn")
    try:
        obj = pod({P + "inject": "true", P + "secret-key": "billing/key"},
                  volumes=[{"name": "logs", "hostPath": {"path": "/var/log"}}])
        answer = hook.review(obj)["response"]
        assert answer["allowed"] is True and answer["patchType"] == "JSONPatch"
        warnings = "\n".join(answer["warnings"])
        assert "secret billing/key: service account payments/app may not read it" in warnings
        assert "host-path: volume(s) logs" in warnings
        validate_pod(apply_patch(obj, decode_patch({"response": answer})))
    finally:
        assert hook.stop() == 0


@pytest.mark.parametrize("setting", ["warn", "deny"])
def test_a_service_that_cannot_be_reached_answers_within_the_deadline(dev: DevPki, service: tuple[ServerProcess, Path],
                                                                      tmp_path: Path, setting: str) -> None:
    _, token_file = service
    hook = _start(dev, tmp_path, "--service-addr", f"127.0.0.1:{free_port()}", "--token-file", str(token_file),
                  "--timeout", "1", "--on-service-unavailable", setting)
    try:
        started = time.monotonic()
        answer = hook.review(pod({P + "inject": "true", P + "secret-db": "payments/db/password"}))["response"]
        assert time.monotonic() - started < 3
        if setting == "warn":
            assert answer["allowed"] is True and "patch" in answer
            assert any("access not checked: the secrets service" in w for w in answer["warnings"])
        else:
            assert answer["allowed"] is False
            assert "access not checked" in answer["status"]["message"]
    finally:
        assert hook.stop() == 0


def test_pods_that_ask_for_nothing_and_system_namespaces_pass_untouched(webhook: Webhook) -> None:
    plain = webhook.review(pod({"team": "payments"}))["response"]
    assert plain["allowed"] is True and "patch" not in plain and "warnings" not in plain
    system = webhook.review(pod({P + "inject": "true", P + "secret-db": "payments/db/password"},
                                namespace="kube-system"))["response"]
    assert system["allowed"] is True and "patch" not in system
    update = webhook.review(pod({P + "inject": "true"}), operation="UPDATE")["response"]
    assert update["allowed"] is True and "patch" not in update


def _review_body(**overrides: Any) -> bytes:
    data = review_request(pod({P + "inject": "true", P + "secret-db": "payments/db/password"}))
    data.update(overrides)
    return json.dumps(data).encode()


@pytest.mark.parametrize(("body", "headers", "status", "expected"), [
    (b"not json", None, 400, b"not JSON"),
    (b"[" * 5000 + b"]" * 5000, None, 400, b"MAX_JSON_DEPTH"),
    (_review_body(apiVersion="admission.k8s.io/v1beta1"), None, 400, b"admissionReviewVersions: [v1]"),
    (_review_body(kind="Pod"), None, 400, b"expected apiVersion"),
    (_review_body(), {"Content-Type": "text/plain"}, 415, b"application/json"),
    (b"{}", {"Content-Type": "application/json", "Content-Length": "999999999"}, 413, b"MAX_REVIEW_BYTES"),
])
def test_what_is_not_an_admission_review_gets_an_http_error(webhook: Webhook, body: bytes,
                                                             headers: dict[str, str] | None, status: int,
                                                             expected: bytes) -> None:
    if headers and "Content-Length" in headers:
        # Announce a huge body and send almost none of it: refused before anything is read.
        with socket.create_connection(("127.0.0.1", webhook.port), timeout=5) as raw, \
                webhook.context().wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 999999999\r\n\r\n{}")
            answer = _read_all(tls)
        assert answer.startswith(b"HTTP/1.1 413") and expected in answer
        return
    got_status, got_body = webhook.post(body, headers)
    assert got_status == status and expected in got_body, got_body
    assert webhook.get("/healthz") == (200, b"ok\n")


def _read_all(tls: ssl.SSLSocket) -> bytes:
    chunks = []
    while chunk := tls.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_chunked_bodies_and_unknown_paths_are_refused(webhook: Webhook) -> None:
    with socket.create_connection(("127.0.0.1", webhook.port), timeout=5) as raw, \
            webhook.context().wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n")
        answer = _read_all(tls)
    assert answer.startswith(b"HTTP/1.1 411") and b"not chunked" in answer
    assert webhook.post(_review_body(), path="/validate")[0] == 404
    assert webhook.get("/")[0] == 404


def test_a_slow_client_is_cut_off_at_the_request_deadline(webhook: Webhook) -> None:
    with socket.create_connection(("127.0.0.1", webhook.port), timeout=10) as raw, \
            webhook.context().wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        started = time.monotonic()
        tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        try:
            closed = tls.recv(1024) == b""
        except (ssl.SSLError, ConnectionError):
            closed = True
        elapsed = time.monotonic() - started
    assert closed and 2.5 < elapsed < 6  # --request-timeout 3
    assert webhook.get("/healthz")[0] == 200


def test_a_client_that_does_not_speak_tls_does_not_disturb_the_server(webhook: Webhook) -> None:
    with socket.create_connection(("127.0.0.1", webhook.port), timeout=10) as raw:
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises((ConnectionError, OSError)):
            if not raw.recv(1024):
                raise ConnectionResetError
    assert webhook.get("/healthz")[0] == 200


def test_keep_alive_connections_serve_many_reviews(webhook: Webhook) -> None:
    conn = webhook.connection()
    try:
        for _ in range(5):
            conn.request("POST", "/mutate", body=_review_body(), headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == 200 and json.loads(response.read())["response"]["allowed"] is True
    finally:
        conn.close()


def test_a_review_is_not_held_back_waiting_for_the_clients_acknowledgement(webhook: Webhook) -> None:
    # Headers and body written apart, the body waits (Nagle) for the client to acknowledge the headers, which a
    # Linux client delays by 40 ms: then no review, however cheap, is answered sooner.
    conn = webhook.connection()
    took = []
    try:
        for _ in range(10):
            started = time.monotonic()
            conn.request("POST", "/mutate", body=_review_body(), headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == 200 and response.read()
            took.append(time.monotonic() - started)
    finally:
        conn.close()
    assert min(took) < 0.030, took


def test_interim_and_error_answers_reach_the_client(webhook: Webhook) -> None:
    body = _review_body()
    with socket.create_connection(("127.0.0.1", webhook.port), timeout=5) as raw, \
            webhook.context().wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        assert tls.recv(1024).startswith(b"HTTP/1.1 100 ")  # before the body is sent
        tls.sendall(body)
        answer = _read_all(tls)
    assert answer.startswith(b"HTTP/1.1 200 ") and b'"allowed":true' in answer
    with socket.create_connection(("127.0.0.1", webhook.port), timeout=5) as raw, \
            webhook.context().wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(b"GET /healthz HTTP/1.1\r\n" + b"X-Many: 1\r\n" * 101 + b"\r\n")  # answered by http.server
        assert _read_all(tls).startswith(b"HTTP/1.1 431 ")


def _serial(hook: Webhook) -> int:
    with socket.create_connection(("127.0.0.1", hook.port), timeout=5) as raw, \
            hook.context().wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return int(x509.load_der_x509_certificate(der).serial_number)


def test_a_rotated_certificate_is_served_without_a_restart_and_a_broken_one_is_not(dev: DevPki,
                                                                                   tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(dev.server_cert, cert)
    shutil.copy(dev.server_key, key)
    hook = Webhook(dev, tmp_path, args=("--check-access", "off"), cert=cert, key=key).start()
    try:
        first = _serial(hook)
        issued = dev.issue("server", name="webhook", dns=("localhost",), ips=("127.0.0.1",))
        write_issued(issued, cert, key)
        expected = x509.load_pem_x509_certificate(issued.cert_pem).serial_number
        deadline = time.monotonic() + 10
        while _serial(hook) != expected:
            assert time.monotonic() < deadline, "the new certificate was not served"
            time.sleep(0.2)
        assert expected != first
        # A half-written rotation (a certificate whose key is another's) is not loaded: the last good one stays.
        other = dev.issue("server", name="other", dns=("localhost",), ips=("127.0.0.1",))
        cert.write_bytes(other.cert_pem)
        time.sleep(1.5)
        assert _serial(hook) == expected
        assert "TLS files changed but were not loaded" in hook.log()
    finally:
        assert hook.stop() == 0


def test_start_up_refuses_unusable_settings_with_a_clear_message(dev: DevPki, tmp_path: Path) -> None:
    expired = dev.issue("server", name="old", now=pki.utc_now() - pki.LEAF_VALIDITY * 2, dns=("localhost",))
    write_issued(expired, tmp_path / "old.crt", tmp_path / "old.key")
    base = [sys.executable, "-m", "injector.cli", "webhook", "--listen", f"127.0.0.1:{free_port()}",
            "--agent-image", AGENT_IMAGE, "--check-access", "off"]
    cases = [
        (["--tls-cert", str(tmp_path / "old.crt"), "--tls-key", str(tmp_path / "old.key")], "expired"),
        (["--tls-cert", str(dev.server_cert), "--tls-key", str(dev.ca)], "TLS key file"),
        (["--tls-cert", str(dev.server_cert), "--tls-key", str(dev.server_key), "--annotation-prefix", "bad"],
         "--annotation-prefix"),
        (["--tls-cert", str(dev.server_cert), "--tls-key", str(dev.server_key), "--agent-memory-limit", "lots"],
         "not a quantity"),
        (["--tls-cert", str(dev.server_cert), "--tls-key", str(dev.server_key), "--timeout", "20"],
         "below --request-timeout"),
    ]
    for extra, expected in cases:
        done = subprocess.run([*base, *extra], capture_output=True, timeout=30, check=False)
        assert done.returncode == 2 and expected in done.stderr.decode(), (extra, done.stderr)
    done = subprocess.run([*base[:-2], "--tls-cert", str(dev.server_cert), "--tls-key", str(dev.server_key)],
                          capture_output=True, timeout=30, check=False,
                          env={k: v for k, v in os.environ.items() if not k.startswith("SECRETSVC_")})
    assert done.returncode == 2 and "no token" in done.stderr.decode()


def test_stop_is_graceful_and_logged(dev: DevPki, tmp_path: Path) -> None:
    hook = Webhook(dev, tmp_path, args=("--check-access", "off")).start()
    hook.review(pod({P + "inject": "true", P + "secret-db": "payments/db/password"}))
    assert hook.stop() == 0
    lines = [json.loads(line) for line in hook.log().splitlines() if line.startswith("{")]
    reviews = [r for r in lines if r["msg"] == "admission review"]
    assert reviews and reviews[0]["outcome"] == "injected" and reviews[0]["pod"] == "api-7d9f-*"
    assert lines[-1]["msg"] == "webhook stopped" and lines[-1]["requests_finished"] is True
