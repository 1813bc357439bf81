"""Issuer signing keys: parsing a JWKS, fetching it over real HTTPS on 127.0.0.1, and the rate-limited cache."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretsvc.auth.jwks import (
    MAX_JWKS_BYTES,
    MAX_JWKS_KEYS,
    RSA_ALGORITHMS,
    DiscoveryKeySource,
    FetchFailed,
    FileKeySource,
    HttpsGetter,
    JwksCache,
    KeySet,
    UrlKeySource,
)
from tests.serviceaccount_fakes import (
    FakeClock,
    FakeHttpsServer,
    HungServer,
    Response,
    TestKey,
    TlsFiles,
    ec_key,
    jwks,
    kid_of,
    make_tls,
    rsa_key,
    serve_issuer,
)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def rsa() -> TestKey:
    key = rsa_key(None)
    return TestKey(key.private, kid_of(key), "RS256")


@pytest.fixture(scope="module")
def ec() -> TestKey:
    return ec_key("ec-1")


@pytest.fixture
def server(tls: TlsFiles) -> Iterator[FakeHttpsServer]:
    with FakeHttpsServer(tls) as running:
        yield running


@pytest.fixture
def getter(tls: TlsFiles) -> HttpsGetter:
    return HttpsGetter(ca_file=tls.ca, timeout=2.0)


# -- parsing -------------------------------------------------------------------------------------------------


def test_parse_binds_each_key_to_the_algorithms_its_type_allows(rsa: TestKey, ec: TestKey) -> None:
    keys = KeySet.parse(jwks(rsa.jwk(with_alg=False), ec), origin="test")
    assert keys.kids == {rsa.kid, "ec-1"}
    rsa_entry, ec_entry = keys.find(rsa.kid), keys.find("ec-1")
    assert rsa_entry is not None and ec_entry is not None
    assert set(rsa_entry.verifiers) == set(RSA_ALGORITHMS)
    assert set(ec_entry.verifiers) == {"ES256"}
    assert rsa_entry.for_algorithm("ES256") is None
    assert ec_entry.for_algorithm("RS256") is None


def test_a_declared_alg_narrows_the_key_to_that_algorithm(rsa: TestKey) -> None:
    entry = KeySet.parse(jwks(rsa.jwk(alg="PS256")), origin="test").find(rsa.kid)
    assert entry is not None and set(entry.verifiers) == {"PS256"}


def test_find_without_kid_takes_the_only_key_and_refuses_to_guess_among_several(rsa: TestKey, ec: TestKey) -> None:
    assert KeySet.parse(jwks(rsa), origin="test").find(None) is not None
    assert KeySet.parse(jwks(rsa, ec), origin="test").find(None) is None
    assert KeySet.parse(jwks(rsa, ec), origin="test").find("nope") is None


@pytest.mark.parametrize("change", [
    {"kty": "oct", "k": "c2VjcmV0"},  # a symmetric key would let a token pick HS256
    {"d": "AQAB"},  # private key material has no business in a JWKS
    {"use": "enc"},
    {"alg": "ES256"},  # an RSA key claiming an EC algorithm
    {"alg": "HS256"},
    {"alg": "none"},
    {"kid": "bad kid\nwith a line break"},
    {"kid": 7},
    {"n": "AQAB"},  # not a usable modulus
], ids=["oct", "private", "use-enc", "alg-mismatch", "alg-hs256", "alg-none", "kid-newline", "kid-int", "tiny-n"])
def test_unusable_keys_are_skipped_and_a_set_of_only_those_is_refused(rsa: TestKey, ec: TestKey,
                                                                      change: dict[str, object]) -> None:
    bad = {**rsa.jwk(), **change}
    if change.get("kty") == "oct":
        bad = {"kty": "oct", "k": "c2VjcmV0", "kid": "sym"}
    keys = KeySet.parse(jwks(bad, ec), origin="test")
    assert keys.kids == {"ec-1"}
    with pytest.raises(FetchFailed, match="no usable"):
        KeySet.parse(jwks(bad), origin="test")


def test_short_rsa_keys_and_unknown_curves_are_skipped(ec: TestKey) -> None:
    short = rsa_key("short", bits=1024)
    odd_curve = {**ec.jwk(with_alg=False), "crv": "secp256k1", "kid": "k1"}
    keys = KeySet.parse(jwks(short, odd_curve, ec), origin="test")
    assert keys.kids == {"ec-1"}


def test_a_repeated_kid_refuses_the_whole_set(rsa: TestKey) -> None:
    other = rsa_key(rsa.kid)
    with pytest.raises(FetchFailed, match="twice"):
        KeySet.parse(jwks(rsa, other), origin="test")


@pytest.mark.parametrize("raw", [
    b"not json", b"[]", b'{"keys": {}}', b'{"nokeys": []}', b"[" * 5000 + b"]" * 5000,
], ids=["not-json", "list", "keys-object", "no-keys", "deep-nesting"])
def test_malformed_documents_are_refused(raw: bytes) -> None:
    with pytest.raises(FetchFailed):
        KeySet.parse(raw, origin="test")


def test_too_many_keys_or_bytes_are_refused(ec: TestKey) -> None:
    with pytest.raises(FetchFailed, match="MAX_JWKS_KEYS"):
        KeySet.parse(jwks(*[{**ec.jwk(), "kid": f"k{i}"} for i in range(MAX_JWKS_KEYS + 1)]), origin="test")
    with pytest.raises(FetchFailed, match="MAX_JWKS_BYTES"):
        KeySet.parse(b" " * (MAX_JWKS_BYTES + 1), origin="test")


# -- fetching over HTTPS ---------------------------------------------------------------------------------------


def test_get_fetches_over_https_with_the_given_ca(server: FakeHttpsServer, getter: HttpsGetter,
                                                  ec: TestKey) -> None:
    server.routes["/keys"] = Response(body=jwks(ec))
    assert json.loads(getter.get(server.url + "/keys", max_bytes=MAX_JWKS_BYTES))["keys"][0]["kid"] == "ec-1"


def test_get_refuses_a_server_the_ca_does_not_vouch_for(server: FakeHttpsServer, tmp_path: Path) -> None:
    other_ca = make_tls(tmp_path / "other", common_name="another CA")
    server.routes["/keys"] = Response(body=b"{}")
    with pytest.raises(FetchFailed, match="CERTIFICATE_VERIFY_FAILED"):
        HttpsGetter(ca_file=other_ca.ca, timeout=2.0).get(server.url + "/keys", max_bytes=100)
    with pytest.raises(FetchFailed):  # the system store does not know the test CA either
        HttpsGetter(timeout=2.0).get(server.url + "/keys", max_bytes=100)


def test_plain_http_is_refused_unless_unsafe_is_named(getter: HttpsGetter) -> None:
    with FakeHttpsServer(None) as plain:
        plain.routes["/keys"] = Response(body=b"{}")
        with pytest.raises(FetchFailed, match="plain http"):
            getter.get(plain.url + "/keys", max_bytes=100)
        assert plain.requests == []
        assert HttpsGetter(unsafe_allow_http=True, timeout=2.0).get(plain.url + "/keys", max_bytes=100) == b"{}"
    with pytest.raises(FetchFailed, match="not an https URL"):
        getter.get("file:///etc/passwd", max_bytes=100)
    with pytest.raises(FetchFailed, match="malformed URL"):
        getter.get("https://127.0.0.1/keys\r\nX-Injected: 1", max_bytes=100)


def test_oversize_answers_are_refused_by_length_and_while_streaming(server: FakeHttpsServer,
                                                                    getter: HttpsGetter) -> None:
    big = b"x" * (4 * MAX_JWKS_BYTES)
    server.routes["/declared"] = Response(body=big)
    server.routes["/chunked"] = Response(body=big, chunked=True)
    with pytest.raises(FetchFailed, match="more than the bound"):
        getter.get(server.url + "/declared", max_bytes=MAX_JWKS_BYTES)
    with pytest.raises(FetchFailed, match="more than the bound"):
        getter.get(server.url + "/chunked", max_bytes=MAX_JWKS_BYTES)


def test_errors_and_redirects_are_failures_and_redirects_are_not_followed(server: FakeHttpsServer,
                                                                          getter: HttpsGetter) -> None:
    server.routes["/gone"] = Response(status=500, body=b"{}")
    server.routes["/accepted"] = Response(status=202, body=b"{}")
    server.routes["/moved"] = Response(status=302, headers={"Location": server.url + "/elsewhere"})
    with pytest.raises(FetchFailed, match="HTTP 500"):
        getter.get(server.url + "/gone", max_bytes=100)
    with pytest.raises(FetchFailed, match="HTTP 202"):
        getter.get(server.url + "/accepted", max_bytes=100)
    with pytest.raises(FetchFailed, match="HTTP 302"):
        getter.get(server.url + "/moved", max_bytes=100)
    assert "/elsewhere" not in server.paths()


def test_a_hung_issuer_times_out() -> None:
    hung = HungServer()
    try:
        started = time.monotonic()
        with pytest.raises(FetchFailed, match="timed out"):
            HttpsGetter(timeout=0.5).get(hung.url + "/keys", max_bytes=100)
        assert time.monotonic() - started < 3
    finally:
        hung.close()


def test_a_slow_answer_or_a_drip_feed_times_out(server: FakeHttpsServer, tls: TlsFiles) -> None:
    server.routes["/slow"] = Response(body=b"{}", delay=2.0)
    server.routes["/drip"] = Response(body=b"x" * 100, drip=0.05)  # each byte in time, the whole far too late
    getter = HttpsGetter(ca_file=tls.ca, timeout=0.5)
    with pytest.raises(FetchFailed, match="timed out"):
        getter.get(server.url + "/slow", max_bytes=100)
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="did not answer within"):
        getter.get(server.url + "/drip", max_bytes=1000)
    assert time.monotonic() - started < 2


# -- sources ---------------------------------------------------------------------------------------------------


def test_discovery_follows_jwks_uri_to_another_path(server: FakeHttpsServer, getter: HttpsGetter,
                                                    rsa: TestKey) -> None:
    issuer = serve_issuer(server, jwks(rsa), jwks_path="/some/other/place/keys.json")
    keys = DiscoveryKeySource(issuer, getter).fetch()
    assert keys.kids == {rsa.kid}
    assert server.paths() == ["/.well-known/openid-configuration", "/some/other/place/keys.json"]


def test_discovery_with_a_trailing_slash_issuer(server: FakeHttpsServer, getter: HttpsGetter, rsa: TestKey) -> None:
    issuer = serve_issuer(server, jwks(rsa), issuer=server.url + "/")
    assert DiscoveryKeySource(issuer, getter).fetch().kids == {rsa.kid}


def test_discovery_refuses_another_issuers_document(server: FakeHttpsServer, getter: HttpsGetter,
                                                   rsa: TestKey) -> None:
    serve_issuer(server, jwks(rsa), issuer="https://someone-else.example")
    with pytest.raises(FetchFailed, match="another issuer"):
        DiscoveryKeySource(server.url, getter).fetch()


@pytest.mark.parametrize("jwks_uri", [None, 42, "http://127.0.0.1:1/keys", "ftp://127.0.0.1/keys"])
def test_discovery_refuses_a_missing_or_unsafe_jwks_uri(server: FakeHttpsServer, getter: HttpsGetter,
                                                        jwks_uri: object) -> None:
    server.routes["/.well-known/openid-configuration"] = Response.json({"issuer": server.url, "jwks_uri": jwks_uri})
    with pytest.raises(FetchFailed):
        DiscoveryKeySource(server.url, getter).fetch()


def test_url_source_and_file_source(server: FakeHttpsServer, getter: HttpsGetter, tmp_path: Path,
                                    rsa: TestKey, ec: TestKey) -> None:
    server.routes["/keys"] = Response(body=jwks(ec))
    assert UrlKeySource(server.url + "/keys", getter).fetch().kids == {"ec-1"}
    path = tmp_path / "jwks.json"
    path.write_bytes(jwks(rsa))
    assert FileKeySource(path).fetch().kids == {rsa.kid}
    path.write_bytes(b" " * (MAX_JWKS_BYTES + 1))
    with pytest.raises(FetchFailed, match="MAX_JWKS_BYTES"):
        FileKeySource(path).fetch()
    with pytest.raises(FetchFailed, match="cannot read"):
        FileKeySource(tmp_path / "missing.json").fetch()


# -- the cache -------------------------------------------------------------------------------------------------


class ScriptedSource:
    """A key source whose answer the test changes; counts fetches."""

    origin = "scripted"

    def __init__(self, keys: bytes | None, delay: float = 0.0) -> None:
        self.keys = keys
        self.delay = delay
        self.fetches = 0

    def fetch(self) -> KeySet:
        self.fetches += 1
        if self.delay:
            time.sleep(self.delay)
        if self.keys is None:
            raise FetchFailed("issuer down")
        return KeySet.parse(self.keys, origin=self.origin)


def test_rotation_a_new_kid_appears_after_refresh(rsa: TestKey, ec: TestKey) -> None:
    source, clock = ScriptedSource(jwks(rsa)), FakeClock(1000.0)
    cache = JwksCache(source, min_refresh_interval=30, max_age=600, clock=clock)
    keys = cache.keys()
    assert keys is not None and keys.find("ec-1") is None
    source.keys = jwks(ec)  # the issuer rotated
    clock.advance(31)
    keys = cache.refreshed()
    assert keys is not None and keys.find("ec-1") is not None and keys.find(rsa.kid) is None
    assert source.fetches == 2


def test_refreshes_are_at_most_one_per_interval_however_many_unknown_kids(rsa: TestKey) -> None:
    source, clock = ScriptedSource(jwks(rsa)), FakeClock(1000.0)
    cache = JwksCache(source, min_refresh_interval=30, max_age=600, clock=clock)
    cache.keys()
    for _ in range(100):
        cache.refreshed()
        clock.advance(0.1)  # 100 forged kids over 10 s
    assert source.fetches == 1  # the initial load was less than an interval ago
    clock.advance(30)
    for _ in range(100):
        cache.refreshed()
    assert source.fetches == 2


def test_concurrent_unknown_kids_share_one_fetch(rsa: TestKey) -> None:
    source, clock = ScriptedSource(jwks(rsa), delay=0.2), FakeClock(1000.0)
    cache = JwksCache(source, min_refresh_interval=30, max_age=600, clock=clock)
    threads = [threading.Thread(target=cache.refreshed) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert source.fetches == 1


def test_an_issuer_that_goes_down_leaves_the_cached_keys_in_use(rsa: TestKey) -> None:
    source, clock = ScriptedSource(jwks(rsa)), FakeClock(1000.0)
    cache = JwksCache(source, min_refresh_interval=30, max_age=60, clock=clock)
    assert cache.keys() is not None
    source.keys = None
    clock.advance(3600)  # long past max age: a refresh is tried and fails
    keys = cache.keys()
    assert keys is not None and keys.find(rsa.kid) is not None
    assert cache.refreshed() is keys
    assert source.fetches == 2


def test_an_unreachable_issuer_at_start_is_retried_only_after_the_interval(rsa: TestKey) -> None:
    source, clock = ScriptedSource(None), FakeClock(1000.0)
    cache = JwksCache(source, min_refresh_interval=30, max_age=600, clock=clock)
    assert cache.keys() is None
    assert cache.keys() is None
    assert source.fetches == 1
    source.keys = jwks(rsa)
    clock.advance(30)
    assert cache.keys() is not None
    assert source.fetches == 2


def test_stale_keys_are_refreshed_after_max_age(rsa: TestKey, ec: TestKey) -> None:
    source, clock = ScriptedSource(jwks(rsa)), FakeClock(1000.0)
    cache = JwksCache(source, min_refresh_interval=30, max_age=600, clock=clock)
    cache.keys()
    source.keys = jwks(ec)
    clock.advance(599)
    keys = cache.keys()
    assert keys is not None and keys.kids == {rsa.kid}
    clock.advance(1)
    keys = cache.keys()
    assert keys is not None and keys.kids == {"ec-1"}


def test_a_stale_refresh_in_progress_does_not_hold_other_callers(rsa: TestKey) -> None:
    source, clock = ScriptedSource(jwks(rsa)), FakeClock(1000.0)
    cache = JwksCache(source, min_refresh_interval=30, max_age=60, clock=clock)
    cache.keys()
    clock.advance(61)
    source.delay = 0.5
    refresher = threading.Thread(target=cache.keys)
    refresher.start()
    time.sleep(0.05)
    started = time.monotonic()
    assert cache.keys() is not None  # served from the stale set while the other thread fetches
    assert time.monotonic() - started < 0.25
    refresher.join()


def test_load_now_raises_and_the_cache_validates_its_intervals(rsa: TestKey) -> None:
    with pytest.raises(FetchFailed):
        JwksCache(ScriptedSource(None)).load_now()
    with pytest.raises(ValueError):
        JwksCache(ScriptedSource(jwks(rsa)), min_refresh_interval=0)
    with pytest.raises(ValueError):
        JwksCache(ScriptedSource(jwks(rsa)), min_refresh_interval=60, max_age=30)


def test_discovery_through_the_cache_over_https_rate_limits_real_requests(server: FakeHttpsServer,
                                                                         getter: HttpsGetter,
                                                                         rsa: TestKey) -> None:
    issuer = serve_issuer(server, jwks(rsa))
    clock = FakeClock(1000.0)
    cache = JwksCache(DiscoveryKeySource(issuer, getter), min_refresh_interval=30, max_age=600, clock=clock)
    cache.keys()
    for _ in range(50):
        cache.refreshed()
    assert len(server.paths()) == 2  # one discovery document, one JWKS
