"""Failed sign-ins: after too many from one address, or for one username, within a window,
sign-ins from there (or as that user) wait out a lock — the idea of the SFTP login throttle,
kept apart from it because web/ never depends on sftp/."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

# Bound the memory a guesser can make us spend by inventing usernames or addresses.
MAX_TRACKED_KEYS = 10_000
# "Forgot password": at most this many emails per hour for one address, or one username or
# email asked about (each request counts, whatever the answer), so that the form cannot be
# used to flood a person's mailbox or the outbox.
RESET_MAX_REQUESTS = 3
RESET_WINDOW_SECONDS = 3600.0


@dataclass(frozen=True)
class SigninPolicy:
    max_failures: int  # within `window`, then a lock; 0: no throttling
    window: float
    lock_seconds: float


RESET_POLICY = SigninPolicy(RESET_MAX_REQUESTS, RESET_WINDOW_SECONDS, RESET_WINDOW_SECONDS)


class SigninThrottle:
    def __init__(self, policy: SigninPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._locked_until: dict[str, float] = {}

    @staticmethod
    def keys(address: str, username: str) -> tuple[str, str]:
        return f"address:{address}", f"user:{username.lower()}"

    def wait(self, address: str, username: str) -> float:
        """Seconds until a sign-in from `address` as `username` may be tried (0: now)."""
        if not self.policy.max_failures:
            return 0.0
        now = self.clock()
        until = max(self._locked_until.get(k, 0.0) for k in self.keys(address, username))
        return max(0.0, until - now)

    def failed(self, address: str, username: str) -> None:
        if not self.policy.max_failures:
            return
        now = self.clock()
        for key in self.keys(address, username):
            times = self._failures.pop(key, deque())
            times.append(now)
            while times and times[0] <= now - self.policy.window:
                times.popleft()
            self._failures[key] = times
            if len(times) >= self.policy.max_failures:
                self._locked_until[key] = now + self.policy.lock_seconds
                times.clear()
        while len(self._failures) > MAX_TRACKED_KEYS:
            old, _ = self._failures.popitem(last=False)
            self._locked_until.pop(old, None)
        for key in [k for k, until in self._locked_until.items() if until <= now]:
            del self._locked_until[key]

    def succeeded(self, address: str, username: str) -> None:
        for key in self.keys(address, username):
            self._failures.pop(key, None)
