"""Failed sign-ins: after too many from one address, or for one username, within a window,
sign-ins from there (or as that user) wait out a lock — the idea of the SFTP login throttle,
kept apart from it because web/ never depends on sftp/."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from daemon.addresses import source_key

# Bound the memory a guesser can make us spend by inventing usernames or addresses.
MAX_TRACKED_KEYS = 10_000
# Locks are kept apart from the failure counts and bounded on their own: forgetting a count to
# make room must never lift a lock (else 10,000 invented usernames would unlock the one being
# guessed). Each lock takes five failures, from addresses counted per IPv6 /64.
MAX_LOCKS = 100_000
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
        self._locked_until: OrderedDict[str, float] = OrderedDict()  # oldest lock first

    @staticmethod
    def keys(address: str, username: str) -> tuple[str, str]:
        return f"address:{source_key(address)}", f"user:{username.lower()}"

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
                self._locked_until.pop(key, None)
                self._locked_until[key] = now + self.policy.lock_seconds
                times.clear()
        while len(self._failures) > MAX_TRACKED_KEYS:
            self._failures.popitem(last=False)
        # Every lock lasts as long, so the oldest ends first: drop the ended ones from the
        # front, and past the bound the oldest (the nearest to its end) too.
        while self._locked_until and (
            next(iter(self._locked_until.values())) <= now or len(self._locked_until) > MAX_LOCKS
        ):
            self._locked_until.popitem(last=False)

    def succeeded(self, address: str, username: str) -> None:
        for key in self.keys(address, username):
            self._failures.pop(key, None)
