"""Service-account settings: parsing, validation with the origin of each bad value, and wiring the authenticator."""

from __future__ import annotations

import logging
import time
from dataclasses import fields
from pathlib import Path

import pytest

from secretsvc.auth.serviceaccount_config import (
    SETTINGS,
    ServiceAccountConfig,
    build_authenticator,
    from_environ,
    from_settings,
)
from secretsvc.errors import ConfigError, Unauthenticated
from tests.serviceaccount_fakes import FakeClock, ec_key, jwks, sa_claims

ISSUER = "https://kubernetes.default.svc.cluster.local"


def test_off_unless_an_issuer_or_tokenreview_is_set() -> None:
    assert from_settings({}) is None
    assert from_settings({"k8s_audiences": "secretsvc"}) is None
    assert from_environ({"SECRETSVC_K8S_AUDIENCES": "secretsvc"}) is None


def test_environment_values_are_parsed() -> None:
    config = from_environ({
        "SECRETSVC_K8S_ISSUER": ISSUER,
        "SECRETSVC_K8S_AUDIENCES": " secretsvc, vault ,",
        "SECRETSVC_K8S_CA_FILE": "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
        "SECRETSVC_K8S_LEEWAY_SECONDS": "30",
        "SECRETSVC_K8S_JWKS_MIN_REFRESH_SECONDS": "10",
        "SECRETSVC_K8S_JWKS_MAX_AGE_SECONDS": "300",
        "SECRETSVC_K8S_HTTP_TIMEOUT_SECONDS": "2.5",
        "SECRETSVC_K8S_REQUIRE_POD": "yes",
    })
    assert config == ServiceAccountConfig(
        audiences=("secretsvc", "vault"), issuer=ISSUER,
        ca_file=Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"), leeway_seconds=30,
        jwks_min_refresh_seconds=10, jwks_max_age_seconds=300, http_timeout_seconds=2.5, require_pod=True)


def test_typed_values_from_a_file_are_accepted() -> None:
    config = from_settings({"k8s_issuer": ISSUER, "k8s_audiences": ["secretsvc"], "k8s_leeway_seconds": 0,
                            "k8s_require_pod": False, "k8s_jwks_file": "/etc/secretsvc/jwks.json"})
    assert config is not None
    assert (config.leeway_seconds, config.require_pod, config.jwks_file) == (0, False, Path("/etc/secretsvc/jwks.json"))


@pytest.mark.parametrize("values,message", [
    ({"k8s_issuer": ISSUER}, "at least one audience"),
    ({"k8s_issuer": ISSUER, "k8s_audiences": " , "}, "at least one audience"),
    ({"k8s_issuer": ISSUER, "k8s_audiences": ["x" * 257]}, "1 to 256"),
    ({"k8s_issuer": "http://issuer.example", "k8s_audiences": "a"}, "k8s_unsafe_allow_http_issuer"),
    ({"k8s_issuer": "issuer.example", "k8s_audiences": "a"}, "https URL"),
    ({"k8s_issuer": ISSUER, "k8s_audiences": "a", "k8s_jwks_url": "http://x/keys"}, "k8s_jwks_url"),
    ({"k8s_issuer": ISSUER, "k8s_audiences": "a", "k8s_jwks_url": "https://x/keys", "k8s_jwks_file": "/k"},
     "exclude each other"),
    ({"k8s_issuer": ISSUER, "k8s_audiences": "a", "k8s_leeway_seconds": "301"}, "k8s_leeway_seconds"),
    ({"k8s_issuer": ISSUER, "k8s_audiences": "a", "k8s_leeway_seconds": "nan"}, "k8s_leeway_seconds"),
    ({"k8s_issuer": ISSUER, "k8s_audiences": "a", "k8s_jwks_min_refresh_seconds": "0.5"},
     "k8s_jwks_min_refresh_seconds"),
    ({"k8s_issuer": ISSUER, "k8s_audiences": "a", "k8s_jwks_min_refresh_seconds": "60",
      "k8s_jwks_max_age_seconds": "30"}, "k8s_jwks_max_age_seconds"),
    ({"k8s_issuer": ISSUER, "k8s_audiences": "a", "k8s_http_timeout_seconds": "0"}, "k8s_http_timeout_seconds"),
    ({"k8s_issuer": ISSUER, "k8s_audiences": "a", "k8s_require_pod": "maybe"}, "true or false"),
    ({"k8s_issuer": ISSUER, "k8s_audiences": "a", "k8s_leeway_seconds": True}, "must be a number"),
    ({"k8s_issuer": ISSUER, "k8s_audiences": 7}, "comma-separated"),
    ({"k8s_issuer": ISSUER, "k8s_audiences": "a", "k8s_isuer": "typo"}, "unknown setting"),
    ({"k8s_tokenreview": "true"}, "at least one audience"),
])
def test_bad_settings_are_config_errors(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_settings(values)


def test_errors_name_where_the_value_came_from() -> None:
    with pytest.raises(ConfigError, match="SECRETSVC_K8S_LEEWAY_SECONDS must be a number"):
        from_environ({"SECRETSVC_K8S_ISSUER": ISSUER, "SECRETSVC_K8S_AUDIENCES": "a",
                      "SECRETSVC_K8S_LEEWAY_SECONDS": "soon"})


def test_plain_http_issuer_only_when_named_unsafe() -> None:
    config = from_settings({"k8s_issuer": "http://127.0.0.1:8080", "k8s_audiences": "a",
                            "k8s_unsafe_allow_http_issuer": "true"})
    assert config is not None and config.unsafe_allow_http_issuer


def test_tokenreview_needs_no_issuer() -> None:
    config = from_settings({"k8s_tokenreview": "1", "k8s_audiences": "secretsvc"})
    assert config is not None and config.use_tokenreview and config.issuer == ""


def test_every_setting_names_a_field_and_a_unique_variable() -> None:
    config_fields = {f.name for f in fields(ServiceAccountConfig)}
    assert {s.field for s in SETTINGS} == config_fields
    assert len({s.env for s in SETTINGS}) == len(SETTINGS)
    assert all(s.env == "SECRETSVC_" + s.name.upper() for s in SETTINGS)
    assert all(s.name.startswith("k8s_") and s.meaning for s in SETTINGS)


def test_a_jwks_file_is_loaded_at_build_and_verifies(tmp_path: Path) -> None:
    key = ec_key("file-key")
    path = tmp_path / "jwks.json"
    path.write_bytes(jwks(key))
    config = from_settings({"k8s_issuer": ISSUER, "k8s_audiences": "secretsvc", "k8s_jwks_file": str(path)})
    assert config is not None
    auth = build_authenticator(config)
    assert auth.authenticate(key.sign(sa_claims(time.time(), issuer=ISSUER))).name == "payments/api"


def test_an_unusable_jwks_file_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_bytes(b'{"keys": []}')
    config = ServiceAccountConfig(audiences=("a",), issuer=ISSUER, jwks_file=path)
    with pytest.raises(ConfigError, match="k8s_jwks_file"):
        build_authenticator(config)
    with pytest.raises(ConfigError, match="k8s_jwks_file"):
        build_authenticator(ServiceAccountConfig(audiences=("a",), issuer=ISSUER, jwks_file=tmp_path / "none"))


def test_a_missing_ca_file_stops_the_start(tmp_path: Path) -> None:
    config = ServiceAccountConfig(audiences=("a",), issuer=ISSUER, ca_file=tmp_path / "missing-ca.pem")
    with pytest.raises(ConfigError, match="k8s_ca_file"):
        build_authenticator(config)


def test_an_unreachable_issuer_does_not_stop_the_start(caplog: pytest.LogCaptureFixture) -> None:
    config = ServiceAccountConfig(audiences=("a",), issuer="https://127.0.0.1:1", http_timeout_seconds=1)
    clock = FakeClock(time.time())
    with caplog.at_level(logging.WARNING):
        auth = build_authenticator(config, clock=clock)
    assert any("not loaded at start" in r.getMessage() for r in caplog.records)
    with pytest.raises(Unauthenticated):
        auth.authenticate(ec_key("k").sign(sa_claims(clock.now, issuer=config.issuer)))


def test_unsafe_http_is_loud(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    config = ServiceAccountConfig(audiences=("a",), issuer="http://127.0.0.1:1", unsafe_allow_http_issuer=True,
                                  http_timeout_seconds=1)
    with caplog.at_level(logging.WARNING):
        build_authenticator(config)
    assert any(r.getMessage().startswith("UNSAFE") for r in caplog.records)
