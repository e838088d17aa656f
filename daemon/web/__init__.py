"""The web Import Manager: districts review, approve and reject their imports (docs/web.md).

Depends on store/, roster/, notify/'s figures and the pipeline; never on sftp/."""

from daemon.web.context import SftpDetails
from daemon.web.server import WebServer

__all__ = ["SftpDetails", "WebServer"]
