"""A tenant's public key list, read and edited without asyncssh: the type, fingerprint and
comment of each line (options before the key included), a key kept once, the bounds at
their edge, removal by fingerprint."""

from __future__ import annotations

import base64

import pytest

from daemon import publickeys
from daemon.errors import ConfigError
from daemon.hostkeyfiles import public_key_fingerprint


def key_line(n: int, comment: str = "") -> str:
    name = b"ssh-ed25519"
    blob = len(name).to_bytes(4, "big") + name + (32).to_bytes(4, "big") + n.to_bytes(32, "big")
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}".strip()


def test_a_line_reads_as_its_type_fingerprint_and_comment_whatever_its_options() -> None:
    line = key_line(1, "sis export@north")
    key = publickeys.read_key(f'from="10.0.0.0/8,192.168.1.1",no-pty {line}')
    assert (key.kind, key.comment) == ("ssh-ed25519", "sis export@north")
    assert key.fingerprint == public_key_fingerprint(line)  # as ssh-keygen -l says it
    with pytest.raises(ConfigError, match="not an OpenSSH public key line"):
        publickeys.read_key("ssh-ed25519 bm90IGEga2V5 comment")  # a blob of another type


def test_a_key_is_kept_once_up_to_the_bound_and_removed_by_fingerprint() -> None:
    keys = ""
    for n in range(publickeys.MAX_KEYS_PER_TENANT):
        keys = publickeys.with_key(keys, key_line(n))
    assert publickeys.with_key(keys, key_line(0)) == keys  # the same key again: once
    with pytest.raises(ConfigError, match="at most 50 public keys"):
        publickeys.with_key(keys, key_line(999))
    fewer = publickeys.without_key(keys, public_key_fingerprint(key_line(3)))
    assert len(fewer.splitlines()) == publickeys.MAX_KEYS_PER_TENANT - 1
    assert key_line(3) not in fewer


def test_a_line_is_at_most_the_bound_long() -> None:
    line = key_line(1, "c" * (publickeys.MAX_KEY_CHARS - len(key_line(1)) - 1))
    assert len(line) == publickeys.MAX_KEY_CHARS
    assert publickeys.with_key("", line) == line + "\n"
    with pytest.raises(ConfigError, match="at most 8192 characters"):
        publickeys.with_key("", line + "c")
