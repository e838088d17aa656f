"""Built-in TLS on the Import Manager's listener ([web] tls_cert / tls_key): a real
certificate made by openssl, a real `rosterdrop serve`, and curl checking it with --cacert.
A missing or mismatched file stops the start with a message naming it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import real_tools
from tests.support.process import cli
from tests.support.site import Site

pytestmark = pytest.mark.slow


def certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, and its key: (cert, key)."""
    if subprocess.run(["which", "openssl"], capture_output=True, check=False).returncode:
        real_tools.missing("openssl")
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "20", *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_the_import_manager_speaks_https_with_secure_cookies(
    tmp_path: Path, host_keys: Path
) -> None:
    cert, key = certificate(tmp_path, "web")
    other, _ = certificate(tmp_path, "other")
    tls = {"ROSTERDROP_WEB_TLS_CERT": str(cert), "ROSTERDROP_WEB_TLS_KEY": str(key)}
    site = Site.create(tmp_path, host_keys, tls)
    try:
        with site.daemon() as daemon:
            daemon.ready()
            ready = daemon.find("rosterdrop is ready")[0]
            port = ready["web_port"]
            url = f"https://localhost:{port}/signin"
            answer = curl("--cacert", str(cert), "--include", url)
            assert answer.returncode == 0, answer.stderr
            head = answer.stdout.split("\r\n\r\n", 1)[0]
            assert head.startswith("HTTP/1.1 200")
            cookie = next(h for h in head.splitlines() if h.lower().startswith("set-cookie:"))
            assert "rosterdrop_signin=" in cookie
            assert "Secure" in cookie
            assert 'name="csrf_token"' in answer.stdout
            # Checked against the right anchor only: another certificate does not vouch for it.
            refused = curl("--cacert", str(other), url)
            assert refused.returncode == 60, refused.stderr  # peer certificate not verified
            # And no plain HTTP on the same port.
            plain = curl(f"http://localhost:{port}/signin")
            assert plain.returncode != 0, plain.stdout
            assert daemon.stop() == 0
    finally:
        site.close()


@pytest.mark.parametrize("command", ["serve", "web"])
def test_a_missing_or_mismatched_tls_file_stops_the_start_naming_it(
    tmp_path: Path, host_keys: Path, command: str
) -> None:
    cert, key = certificate(tmp_path, "web")
    _, other_key = certificate(tmp_path, "other")
    site = Site.create(tmp_path, host_keys)
    missing = tmp_path / "nowhere.key"
    cases = {
        (str(cert), str(missing)): f"setting web.tls_key: cannot read {missing}: No such file",
        (str(cert), str(other_key)): (
            f"setting web.tls_key: {other_key} is not the private key of the certificate in {cert}"
        ),
        (str(key), str(key)): f"setting web.tls_cert: {key} holds no PEM certificate",
        (str(cert), ""): "setting web.tls_cert is set but web.tls_key is not: set both",
    }
    try:
        for (cert_file, key_file), message in cases.items():
            env = {"ROSTERDROP_WEB_TLS_CERT": cert_file, "ROSTERDROP_WEB_TLS_KEY": key_file}
            result = cli({**site.env, **env}, command)
            assert result.returncode == 2, result.stderr
            assert message in result.stderr
    finally:
        site.close()
