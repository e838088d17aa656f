"""Fixtures shared by the integration tests, each set kept in its own module and registered here."""

from __future__ import annotations

from serve_fixtures import serve_settings, serve_settings_with, served  # noqa: F401 - registers the fixtures
from sftp_fixtures import (  # noqa: F401 - registers the fixtures
    sftp_client_key,
    sftp_env,
    sftp_host_keys,
    sftp_password_hash,
    start_sftp,
)
