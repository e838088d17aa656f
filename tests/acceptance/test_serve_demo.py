"""`make run` is `rosterdrop serve --demo`: on a fresh installation it creates a demo tenant and
prints how to connect; the printed credentials work with an SFTP client; a second start reuses
the same tenant and says the same thing."""

from __future__ import annotations

import base64
import hashlib
import http.cookiejar
import json
import re
import socket
import stat
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable

import paramiko
import pytest

from tests.support.drop import sftp_session
from tests.support.process import REPO, Daemon, free_port
from tests.support.site import Site


class DemoDaemon(Daemon):
    """`rosterdrop serve --demo` with its standard output kept: the demo's settings go there."""

    def __init__(self, site: Site, label: str) -> None:
        super().__init__(site.env, site.root / f"{label}.log", "--demo")
        self.out = site.root / f"{label}.out"

    def start(self) -> DemoDaemon:
        with self.log.open("ab") as err, self.out.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=err, start_new_session=True,
            )  # fmt: skip
        return self

    def shown(self) -> dict[str, list[str]]:
        """What it printed, "  name:   value" lines as name → values (in order)."""
        found: dict[str, list[str]] = {}
        for line in self.out.read_text(encoding="utf-8").splitlines():
            name, sep, value = line.partition(":")
            if sep and line.startswith("  ") and not name.strip().startswith("e.g."):
                found.setdefault(name.strip(), []).append(value.strip())
        return found


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint of the key the server showed the client."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def host_key_seen(port: int, username: str, password: str) -> str:
    """Log in and list /; returns the fingerprint of the host key the client was shown."""
    with sftp_session(port, username, password) as sftp:
        assert sorted(sftp.listdir("/")) == ["check", "upload"]
        transport = sftp.get_channel().get_transport()
        return fingerprint(transport.get_remote_server_key())


def signs_in(url: str, username: str, password: str) -> bool:
    """The web sign-in form, as a browser without JavaScript fills it in."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with opener.open(url + "signin", timeout=10) as form:
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.read().decode())
    assert token is not None
    data = urllib.parse.urlencode(
        {"csrf_token": token.group(1), "username": username, "password": password}
    ).encode()
    with opener.open(url + "signin", data=data, timeout=10) as signed_in:
        return signed_in.url.endswith("/imports") and "Sign out" in signed_in.read().decode()


@pytest.mark.slow
def test_serve_demo_creates_a_tenant_once_and_prints_working_credentials(
    make_site: Callable[..., Site],
) -> None:
    port, web_port = free_port(), free_port()  # real port numbers: the demo prints them
    site = make_site(ROSTERDROP_SFTP_PORT=str(port), ROSTERDROP_WEB_PORT=str(web_port))
    assert json.loads(site.cli("tenant", "list", "--json").stdout) == []

    with DemoDaemon(site, "first") as daemon:
        daemon.ready()
        shown = daemon.shown()
        assert shown["SFTP server"] == [socket.getfqdn()]
        assert shown["SFTP port"] == [str(port)]
        assert shown["SFTP directory"] == ["/upload"]
        assert shown["check folder"][0].startswith("/check ")
        assert shown["username"] == ["demo"]
        [password] = shown["password"]
        assert len(password) >= 16
        assert [f.split()[0] for f in shown["host key"]] == ["ED25519", "RSA"]
        printed = daemon.out.read_text(encoding="utf-8")
        assert f"sftp -P {port} demo@localhost" in printed
        assert str(site.settings.paths.outbox) in printed

        seen = host_key_seen(daemon.sftp_port, "demo", password)
        assert f"ED25519 {seen}" in shown["host key"]
        [web] = shown["Import Manager"]
        assert web == f"http://localhost:{web_port}/"
        assert shown["web username"] == ["demo-admin"]
        [web_password] = shown["web password"]
        assert signs_in(web, "demo-admin", web_password)
        assert daemon.stop() == 0

    for kept in ("demo-credentials.txt", "demo-web-credentials.txt"):
        credentials = site.settings.paths.root / kept
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600

    with DemoDaemon(site, "second") as daemon:
        daemon.ready()
        assert daemon.shown()["password"] == [password]  # the same tenant, the same password
        assert daemon.shown()["web password"] == [web_password]
        assert host_key_seen(daemon.sftp_port, "demo", password) == seen
        assert daemon.stop() == 0

    listed = json.loads(site.cli("tenant", "list", "--json").stdout)
    assert [t["name"] for t in listed] == ["demo"]
