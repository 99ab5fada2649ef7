"""Calm logs during outages: a failure that repeats is logged once per interval with a count, not per attempt.

While the broker is down every reconnect, relay pass, fetch and probe fails; logging each one buries the
first useful line under thousands of copies (and fills disks). `RepeatingFailure` is for the kit's own
retry loops; `RepeatedLinesFilter` quiets the Kafka client libraries' per-attempt lines the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

#: How often the same repeated failure is logged again (seconds).
DEFAULT_INTERVAL_SECONDS = 30.0
#: Loggers of the Kafka client libraries that log every failed attempt.
CLIENT_LOGGER_PREFIXES = ("aiokafka", "kafka", "faststream", "ksbb.kafka")


class RepeatingFailure:
    """One failure that may repeat (e.g. "Kafka not reachable"): the first occurrence is logged at once,
    then at most one line per interval saying how many attempts failed meanwhile; recovery is logged once."""

    def __init__(
        self, logger: logging.Logger, what: str, *, interval: float = DEFAULT_INTERVAL_SECONDS,
        level: int = logging.WARNING, clock: Callable[[], float] = time.monotonic, with_traceback: bool = False,
    ) -> None:
        self._logger = logger
        self._with_traceback = with_traceback
        self._what = what
        self._interval = interval
        self._level = level
        self._clock = clock
        self._last_logged: float | None = None
        self._unlogged = 0
        self.streak = 0

    def failed(self, error: BaseException | str, *, retry_in: float | None = None) -> None:
        """Count one failed attempt; log it when it is the first, or the interval has passed."""
        self.streak += 1
        now = self._clock()
        if self._last_logged is not None and now - self._last_logged < self._interval:
            self._unlogged += 1
            return
        detail = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else error
        retry = f"; retrying in {retry_in:.1f}s" if retry_in is not None else ""
        if self.streak == 1:
            # The first line of a streak may carry the traceback; the repeats only count.
            trace = error if self._with_traceback and isinstance(error, BaseException) else None
            self._logger.log(self._level, "%s (%s)%s", self._what, detail, retry, exc_info=trace)
        else:
            self._logger.log(self._level, "%s (%s): still failing, %d attempts failed in a row, %d since the last "
                             "line%s", self._what, detail, self.streak, self._unlogged + 1, retry)
        self._last_logged = now
        self._unlogged = 0

    def recovered(self) -> None:
        """Log the end of a failure streak once (nothing when there was none)."""
        if self.streak:
            self._logger.info("%s: recovered after %d failed attempts", self._what, self.streak)
        self.streak = 0
        self._unlogged = 0
        self._last_logged = None


class RepeatedLinesFilter(logging.Filter):
    """Lets the same (logger, level, message template) through once per interval, then notes how many were
    suppressed on the next line that passes. For library loggers whose every retry logs a line."""

    def __init__(self, interval: float = DEFAULT_INTERVAL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._interval = interval
        self._clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        """Pass the first line of a kind per interval; count the others."""
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        with self._lock:
            last, suppressed = self._seen.get(key, (None, 0))
            if last is not None and now - last < self._interval:
                self._seen[key] = (last, suppressed + 1)
                return False
            if len(self._seen) > 1000:  # templates are few; this only guards against unbounded growth
                self._seen.clear()
            self._seen[key] = (now, 0)
        if suppressed:
            record.msg = f"{record.getMessage()} ({suppressed} similar lines suppressed in the last " \
                         f"{self._interval:.0f}s)"
            record.args = None
        return True


_installed = RepeatedLinesFilter()


def quiet_client_loggers(filter_: logging.Filter = _installed) -> None:
    """Attach the repeated-lines filter to every Kafka client logger that exists (idempotent).

    Filters on a logger apply to records logged on that very logger, so each module's logger gets it.
    """
    names = [name for name in list(logging.root.manager.loggerDict) if name.startswith(CLIENT_LOGGER_PREFIXES)]
    for name in names:
        logger = logging.getLogger(name)
        if filter_ not in logger.filters:
            logger.addFilter(filter_)
