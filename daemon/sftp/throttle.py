"""Failed-login throttling: per-source bans that grow with each repeat, and a per-username pace
for password checks that slows a guesser spread over many addresses without locking the owner
out (no username is ever banned, and public-key logins are never paced)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from daemon.addresses import source_key
from daemon.config import SftpSettings

log = structlog.get_logger(__name__)

# Bound the memory an attacker can make us spend by inventing usernames or addresses.
MAX_TRACKED_KEYS = 50_000
# Usernames remembered per source, so that `tenant unban NAME` finds the sources it banned.
MAX_USERS_PER_SOURCE = 8
# A failed login as other nodes learn of it: (source key, username, counts towards the user).
Publish = Callable[[str, str, bool], None]


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int  # per source within `window` before a ban; 0: no throttling at all
    window: float
    ban_seconds: float  # a source's first ban
    ban_growth: float  # each further ban of the same source lasts this many times longer
    max_ban_seconds: float  # ... up to this; this long after its ban without failures, a source
    # starts over at ban_seconds
    user_delay: float  # past max_failures for one username: seconds between its password checks
    user_max_wait: float  # a password check that would wait longer is refused at once

    @classmethod
    def from_settings(cls, settings: SftpSettings) -> ThrottlePolicy:
        return cls(
            max_failures=settings.max_auth_failures,
            window=settings.auth_failure_window,
            ban_seconds=settings.ban_seconds,
            ban_growth=max(settings.ban_growth, 1.0),
            max_ban_seconds=max(settings.max_ban_seconds, settings.ban_seconds),
            user_delay=settings.user_delay_seconds,
            user_max_wait=settings.user_max_wait_seconds,
        )

    @property
    def enabled(self) -> bool:
        return self.max_failures > 0


@dataclass
class _Source:
    failures: deque[float] = field(default_factory=deque)
    banned_until: float = 0.0
    bans: int = 0  # bans so far; forgotten after max_ban_seconds without a failure
    last_failure: float = 0.0
    users: set[str] = field(default_factory=set)


@dataclass
class _User:
    failures: deque[float] = field(default_factory=deque)
    next_check: float = 0.0  # when the next paced password check may run


def user_key(username: str) -> str:
    return username.casefold()


class LoginGuard:
    """Counts failed logins per source and per username. Touched only on the event loop."""

    def __init__(self, policy: ThrottlePolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._sources: dict[str, _Source] = {}
        self._users: dict[str, _User] = {}
        self.publish: Publish | None = None  # a cluster's nodes share failures (daemon.cluster)

    # -- sources ---------------------------------------------------------------------------

    def source_banned(self, peer: str) -> bool:
        source = self._sources.get(source_key(peer))
        return source is not None and self._clock() < source.banned_until

    def failed(
        self, peer: str, username: str, *, count_user: bool, at: float | None = None
    ) -> float | None:
        """Count one failed login; the length of the ban it starts on the source, if any.
        `count_user`: a password guess, which also counts towards the username's pace.
        `at`: another node's failure, at that time of this clock (not published again)."""
        if not self.policy.enabled:
            return None
        if at is None and self.publish is not None:
            self.publish(source_key(peer), username, count_user)
        now = self._clock() if at is None else at
        if count_user:
            user = self._users.setdefault(user_key(username), _User())
            _slide(user.failures, now, self.policy.window)
        key = source_key(peer)
        source = self._sources.setdefault(key, _Source())
        quiet_since = max(source.last_failure, source.banned_until)
        if source.bans and now - quiet_since >= self.policy.max_ban_seconds:
            source.bans = 0  # long enough on good behaviour: start over at the first ban
        source.last_failure = now
        if len(source.users) < MAX_USERS_PER_SOURCE:
            source.users.add(user_key(username))
        self._prune(now)
        if now < source.banned_until:
            return None  # an attempt already under way when the ban began
        _slide(source.failures, now, self.policy.window)
        if len(source.failures) < self.policy.max_failures:
            return None
        source.failures.clear()
        seconds = min(
            self.policy.ban_seconds * self.policy.ban_growth**source.bans,
            self.policy.max_ban_seconds,
        )
        source.bans += 1
        source.banned_until = now + seconds
        return seconds

    # -- usernames -------------------------------------------------------------------------

    def password_check_wait(self, username: str) -> float | None:
        """Reserve the username's next password check: seconds to wait before running it, or
        None when it would wait longer than user_max_wait (refuse without checking)."""
        user = self._users.get(user_key(username))
        if user is None or not self.policy.enabled:
            return 0.0
        now = self._clock()
        _trim(user.failures, now, self.policy.window)
        if len(user.failures) < self.policy.max_failures:
            return 0.0  # under the free allowance: the owner's typos cost nothing
        start = max(now, user.next_check)
        if start - now > self.policy.user_max_wait:
            return None
        user.next_check = start + self.policy.user_delay
        return start - now

    # -- operator ---------------------------------------------------------------------------

    def lift(self, subject: str) -> list[str]:
        """`user:NAME` (its pace, and the bans of sources that failed as it) or `address:ADDR`
        (that source's ban and its repeat count); the sources whose ban was lifted."""
        kind, _, value = subject.partition(":")
        lifted: list[str] = []
        if kind == "user":
            name = user_key(value)
            self._users.pop(name, None)
            lifted = [k for k, s in self._sources.items() if name in s.users]
        elif kind == "address":
            lifted = [k for k in (source_key(value),) if k in self._sources]
        for key in lifted:
            del self._sources[key]
        return lifted

    def _prune(self, now: float) -> None:
        if len(self._sources) + len(self._users) <= MAX_TRACKED_KEYS:
            return
        window, memory = self.policy.window, self.policy.max_ban_seconds
        for key in [
            k
            for k, s in self._sources.items()
            if now - max(s.last_failure, s.banned_until) >= (memory if s.bans else window)
        ]:
            del self._sources[key]
        for key in [
            k for k, u in self._users.items() if not u.failures or u.failures[-1] <= now - window
        ]:
            del self._users[key]
        # Still too many: forget the oldest counts (insertion order), never a running ban.
        excess = len(self._sources) + len(self._users) - MAX_TRACKED_KEYS
        for key in list(self._users)[: max(excess, 0)]:
            del self._users[key]
        excess = len(self._sources) + len(self._users) - MAX_TRACKED_KEYS
        idle = [k for k, s in self._sources.items() if now >= s.banned_until]
        for key in idle[: max(excess, 0)]:
            del self._sources[key]


def _slide(times: deque[float], now: float, window: float) -> None:
    times.append(now)
    _trim(times, now, window)


def _trim(times: deque[float], now: float, window: float) -> None:
    while times and times[0] <= now - window:
        times.popleft()


# How often, at most, a banned source's retries make us read the operator's ban lifts.
LIFT_POLL_SECONDS = 2.0
LiftSource = Callable[[int | None], tuple[int, list[str]]]


class LiftWatcher:
    """Applies the ban lifts an operator records with `rosterdrop tenant unban` (another
    process, maybe another node): read from the account directory, off the event loop, only
    when a banned or paced login asks, and at most every LIFT_POLL_SECONDS."""

    def __init__(
        self, guard: LoginGuard, fetch: LiftSource, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._guard = guard
        self._fetch = fetch
        self._clock = clock
        self._cursor: int | None = None
        self._polled = -LIFT_POLL_SECONDS
        self._task: asyncio.Task[None] | None = None

    def watch(self) -> None:
        """A ban begins: note where the lifts stand (older ones concern no ban of ours)."""
        if self._cursor is None:
            self.poke(force=True)

    def poke(self, *, force: bool = False) -> None:
        now = self._clock()
        if self._task is not None and not self._task.done():
            return
        if not force and now - self._polled < LIFT_POLL_SECONDS:
            return
        self._polled = now
        self._task = asyncio.get_running_loop().create_task(self._refresh(), name="sftp-lifts")

    async def _refresh(self) -> None:
        try:
            self._cursor, subjects = await asyncio.to_thread(self._fetch, self._cursor)
        except Exception:
            log.exception("sftp.login.lifts_unreadable")
            return
        for subject in subjects:
            lifted = self._guard.lift(subject)
            log.warning("sftp.login.ban_lifted", subject=subject, sources=lifted)
