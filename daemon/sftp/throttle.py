"""Failed-login throttling: too many failures in a window bans a source address or a username."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

# Bound the memory an attacker can make us spend by inventing usernames or addresses.
MAX_TRACKED_KEYS = 50_000


class FailureThrottle:
    """Sliding-window failure counts per key, and bans that expire on their own."""

    def __init__(
        self,
        max_failures: int,
        window: float,
        ban_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_failures = max_failures
        self._window = window
        self._ban_seconds = ban_seconds
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._banned_until: dict[str, float] = {}

    @property
    def enabled(self) -> bool:
        return self._max_failures > 0 and self._ban_seconds > 0

    def is_banned(self, key: str) -> bool:
        until = self._banned_until.get(key)
        if until is None:
            return False
        if self._clock() < until:
            return True
        del self._banned_until[key]
        return False

    def record_failure(self, key: str) -> bool:
        """Count one failure; True when it starts a ban."""
        if not self.enabled or self.is_banned(key):
            return False
        now = self._clock()
        times = self._failures.setdefault(key, deque())
        times.append(now)
        while times and times[0] <= now - self._window:
            times.popleft()
        if len(times) < self._max_failures:
            self._prune(now)
            return False
        del self._failures[key]
        self._banned_until[key] = now + self._ban_seconds
        return True

    def _prune(self, now: float) -> None:
        if len(self._failures) + len(self._banned_until) <= MAX_TRACKED_KEYS:
            return
        for key in [k for k, t in self._failures.items() if not t or t[-1] <= now - self._window]:
            del self._failures[key]
        for key in [k for k, until in self._banned_until.items() if until <= now]:
            del self._banned_until[key]
        # Still too many: forget the oldest failure counts (insertion order), never the bans.
        excess = len(self._failures) + len(self._banned_until) - MAX_TRACKED_KEYS
        for key in list(self._failures)[: max(excess, 0)]:
            del self._failures[key]
