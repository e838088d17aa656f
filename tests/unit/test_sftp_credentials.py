"""Password hashing and the passwords handed out to districts."""

from __future__ import annotations

from daemon.passwords import PASSWORD_ALPHABET
from daemon.sftp.credentials import (
    dummy_hash,
    generate_password,
    hash_password,
    verify_password,
)


def test_hash_is_argon2id_and_verifies() -> None:
    hashed = hash_password("s3cret")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "s3cret")
    assert not verify_password(hashed, "s3cret ")
    assert hash_password("s3cret") != hashed  # salted


def test_garbage_hashes_never_verify() -> None:
    assert not verify_password("", "x")
    assert not verify_password("$argon2id$v=19$m=65536,t=3,p=4$broken", "x")
    assert not verify_password("plain text", "plain text")


def test_generated_passwords_are_long_typeable_and_different() -> None:
    passwords = {generate_password() for _ in range(50)}
    assert len(passwords) == 50
    for password in passwords:
        assert len(password) == 20
        assert set(password) <= set(PASSWORD_ALPHABET)
    assert not set("0O1lI") & set(PASSWORD_ALPHABET)


def test_dummy_hash_matches_nothing_and_costs_the_same() -> None:
    assert dummy_hash() == dummy_hash()
    assert dummy_hash().split("$")[3] == hash_password("x").split("$")[3]  # same parameters
    assert not verify_password(dummy_hash(), "")
