"""The one exception hierarchy: every error rosterdrop raises on purpose is a RosterdropError."""

from __future__ import annotations


class RosterdropError(Exception):
    """Something went wrong in rosterdrop."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(RosterdropError):
    """The configuration is invalid."""


class NotFound(RosterdropError):
    """No such object."""


class Conflict(RosterdropError):
    """The object is not in a state that allows this."""


class StoreError(RosterdropError):
    """The database failed."""

    def __init__(
        self, message: str | None = None, *, transient: bool = False, no_space: bool = False
    ) -> None:
        super().__init__(message)
        self.transient = transient  # worth trying again later (connection lost, server down)
        self.no_space = no_space  # the database's disk is full: wait for space (transient too)


class SpoolError(RosterdropError):
    """Files could not be moved through the spool."""


class DeliveryError(RosterdropError):
    """An email could not be delivered."""

    def __init__(self, message: str | None = None, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class UploadRefused(RosterdropError):
    """The uploaded files were refused; nothing of them was kept."""

    def __init__(self, message: str | None = None, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status  # the HTTP answer: 400 bad input, 409 busy, 413 too large, …
