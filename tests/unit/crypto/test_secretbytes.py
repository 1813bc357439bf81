"""`SecretBytes` keeps key material out of reprs, pickles and hashes."""

from __future__ import annotations

import copy
import pickle
import random

import pytest

from secretsvc.crypto.secretbytes import SecretBytes


def _value() -> bytes:
    return random.Random(7).randbytes(24)


def test_repr_and_str_are_redacted() -> None:
    value = _value()
    s = SecretBytes(value)
    for text in (repr(s), str(s), f"{s}", repr([s])):
        assert "24 bytes redacted" in text
        assert value.hex() not in text
        assert repr(value) not in text


def test_reveal_and_len() -> None:
    value = _value()
    s = SecretBytes(bytearray(value))
    assert s.reveal() == value
    assert isinstance(s.reveal(), bytes)
    assert len(s) == 24
    assert s
    assert not SecretBytes(b"")


def test_pickling_and_copying_through_pickle_are_refused() -> None:
    s = SecretBytes(_value())
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(s)
    with pytest.raises(TypeError, match="cannot be pickled"):
        copy.deepcopy(s)


def test_equality_compares_contents_and_hashing_is_refused() -> None:
    assert SecretBytes(b"abc") == SecretBytes(b"abc")
    assert SecretBytes(b"abc") != SecretBytes(b"abd")
    assert SecretBytes(b"abc") != b"abc"
    with pytest.raises(TypeError):
        hash(SecretBytes(b"abc"))


def test_only_bytes_are_wrapped() -> None:
    with pytest.raises(TypeError):
        SecretBytes("text")  # type: ignore[arg-type]
