"""What the sender hands a message to: a transport, and the error that says the way out is down."""

from __future__ import annotations

from typing import Protocol

from daemon.errors import DeliveryError
from daemon.store.outbox import OutboxMessage


class RelayUnavailable(DeliveryError):
    """The mail relay cannot take messages now (unreachable, TLS, login): no message's fault."""


class Transport(Protocol):
    def describe(self) -> str:
        """Where messages go, for logs: never a password."""
        ...

    async def deliver(self, message: OutboxMessage) -> str | None:
        """Hand the message on, or raise DeliveryError; return a note on refused recipients."""
        ...
