"""Time from the host: sleeping suspends only this guest; the host runs others meanwhile."""

from datetime import datetime, timedelta, timezone

from wit_world.imports import time as _wit

__all__ = ["sleep", "now", "monotonic"]


def sleep(seconds):
    """Suspends this guest for at least ``seconds`` (a float)."""
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    _wit.sleep(int(seconds * 1_000_000_000))


def now():
    """The current wall-clock time, as an aware ``datetime`` in UTC."""
    t = _wit.now()
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return epoch + timedelta(seconds=t.seconds, microseconds=t.nanoseconds // 1000)


def monotonic():
    """Seconds on a monotonic clock, for measuring elapsed time."""
    return _wit.monotonic_now() / 1_000_000_000
