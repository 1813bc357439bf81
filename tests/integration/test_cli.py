"""The `secretsvc` client commands against a real server process: the contract scripts rely on."""

from __future__ import annotations

import base64
import json
import random

from tests.integration.serverproc import ServerProcess


def test_put_reads_stdin_and_get_writes_exactly_the_value(server: ServerProcess) -> None:
    value = random.Random(30).randbytes(300) + b"\n\x00trailing\n"
    put = server.cli("put", "app/binary/blob", stdin=value)
    assert put.returncode == 0, put.stderr
    assert b"stored version 1" in put.stdout
    got = server.cli("get", "app/binary/blob")
    assert got.returncode == 0
    assert got.stdout == value


def test_put_from_file_and_json_output(server: ServerProcess, tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "value"
    source.write_bytes(b"from-a-file")
    put = server.cli("put", "app/f", "--file", str(source), "--metadata", "owner=team-a", "--format", "json")
    assert json.loads(put.stdout)["version"] == 1
    got = json.loads(server.cli("get", "app/f", "--format", "json").stdout)
    assert base64.b64decode(got["value_base64"]) == b"from-a-file"
    assert got["version"] == 1
    meta = json.loads(server.cli("versions", "app/f", "--format", "json").stdout)
    assert meta["customMetadata"] == {"owner": "team-a"}


def test_token_file_and_addr_flags(server: ServerProcess) -> None:
    env = server.cli_env()
    del env["SECRETSVC_TOKEN"]
    del env["SECRETSVC_ADDR"]
    result = server.cli("put", "app/t", "--addr", server.addr, "--token-file", str(server.token_file),
                        stdin=b"v", env=env)
    assert result.returncode == 0, result.stderr


def test_cas_list_versions_delete_destroy(server: ServerProcess) -> None:
    assert server.cli("put", "app/c", "--cas", "0", stdin=b"1").returncode == 0
    conflict = server.cli("put", "app/c", "--cas", "0", stdin=b"2")
    assert conflict.returncode == 1
    assert b"failed_precondition" in conflict.stderr and b"expected version 0" in conflict.stderr
    assert server.cli("put", "app/c", "--cas", "1", stdin=b"2").returncode == 0
    for i in range(3):
        server.cli("put", f"app/list/{i}", stdin=b"x")
    listed = server.cli("list", "app/list/", "--page-size", "2")
    assert listed.stdout.decode().split() == ["list/0", "list/1", "list/2"]

    assert server.cli("delete", "app/c", "--versions", "1").returncode == 0
    assert server.cli("get", "app/c", "--version", "1").returncode == 1
    assert server.cli("undelete", "app/c", "--versions", "1").returncode == 0
    assert server.cli("get", "app/c", "--version", "1").stdout == b"1"
    assert server.cli("destroy", "app/c", "--versions", "1").returncode == 0
    versions = server.cli("versions", "app/c").stdout.decode()
    assert "destroyed" in versions and "active" in versions
    assert server.cli("delete", "app/c", "--all").returncode == 0
    missing = server.cli("get", "app/c")
    assert missing.returncode == 1 and b"not_found" in missing.stderr


def test_keys_encrypt_decrypt_rotate_rewrap(server: ServerProcess) -> None:
    assert server.cli("keys", "create", "billing").returncode == 0
    plaintext = random.Random(31).randbytes(100)
    ciphertext = server.cli("keys", "encrypt", "billing", "--context", "acct-1", stdin=plaintext).stdout
    assert server.cli("keys", "decrypt", "billing", "--context", "acct-1", stdin=ciphertext).stdout == plaintext
    wrong = server.cli("keys", "decrypt", "billing", "--context", "acct-2", stdin=ciphertext)
    assert wrong.returncode == 1 and b"decryption failed" in wrong.stderr
    assert b"latest version 2" in server.cli("keys", "rotate", "billing").stdout
    rewrapped = server.cli("keys", "rewrap", "billing", "--context", "acct-1", stdin=ciphertext).stdout
    assert rewrapped != ciphertext
    assert server.cli("keys", "decrypt", "billing", "--context", "acct-1", stdin=rewrapped).stdout == plaintext
    datakey = json.loads(server.cli("keys", "datakey", "billing").stdout)
    assert len(base64.b64decode(datakey["plaintext"])) == 32
    assert server.cli("keys", "list").stdout.decode().split() == ["billing"]
    garbage = server.cli("keys", "decrypt", "billing", stdin=b"%%% not base64")
    assert garbage.returncode == 2 and b"base64" in garbage.stderr


def test_root_key_commands(server: ServerProcess) -> None:
    server.cli("put", "app/r", stdin=b"v")
    assert b"primary version 2" in server.cli("root-key", "rotate").stdout
    done = json.loads(server.cli("root-key", "rewrap", "--format", "json").stdout)
    assert done["done"] is True and int(done["rewrapped"]) == 2  # the secret and the fingerprint key
    assert server.cli("get", "app/r").stdout == b"v"


def test_usage_errors_are_clear(server: ServerProcess) -> None:
    bad_ref = server.cli("get", "no-slash")
    assert bad_ref.returncode == 2 and b"NAMESPACE/PATH" in bad_ref.stderr
    bad_path = server.cli("put", "app/a/../b", stdin=b"v")
    assert bad_path.returncode == 2 and b"'..'" in bad_path.stderr
    unreachable = server.cli("get", "app/x", "--addr", "127.0.0.1:1")
    assert unreachable.returncode == 1 and b"unavailable" in unreachable.stderr
    for output in (bad_ref, bad_path, unreachable):
        assert b"Traceback" not in output.stderr
