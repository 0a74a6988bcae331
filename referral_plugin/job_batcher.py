"""Hand jobs to the queue from a background thread, many per round trip.

For callers that have already recorded their work durably, in a row the periodic sweeper finds (the queued
webhook intake): they need not wait for the queue before answering. :meth:`JobBatcher.submit` parks the call
in memory; a daemon thread in each process wakes, waits ``linger`` seconds for more to arrive, and hands the
lot to Huey at once (:meth:`JobQueue.enqueue_many`: one Redis message however many there are, which a consumer
splits into their jobs).

What a process still holds when it dies is not lost: its rows stay ``queued`` and the sweeper enqueues them
again. A graceful stop flushes first (gunicorn's ``worker_exit`` hook, and ``atexit``). With immediate
execution (tests) a call runs at once, as :meth:`JobQueue.enqueue` would.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import typing as t
import weakref

if t.TYPE_CHECKING:
    from referral_plugin.jobs import JobQueue

logger = logging.getLogger(__name__)

#: Seconds the thread waits after the first call for others to join the same round trip.
DEFAULT_LINGER = 0.05
#: Most calls handed over in one round trip; the rest go in the next.
DEFAULT_MAX_BATCH = 500

Call = tuple[str, tuple[t.Any, ...]]


class JobBatcher:
    """Collect job calls and enqueue them from a background thread, in batches."""

    def __init__(self, queue: JobQueue, *, linger: float = DEFAULT_LINGER,
                 max_batch: int = DEFAULT_MAX_BATCH) -> None:
        self.queue = queue
        self.linger = linger
        self.max_batch = max_batch
        self._start_fresh()
        _LIVE.add(self)

    def _start_fresh(self) -> None:
        # After a fork the child has the parent's list and lock but not its thread: begin again, empty.
        # (The parent still holds, and flushes, whatever it had collected.)
        self._ready = threading.Condition(threading.Lock())
        # Held while handing over, so a caller's flush returns only once the thread's batch is on the queue too.
        self._flushing = threading.Lock()
        self._calls: list[Call] = []
        self._thread: threading.Thread | None = None

    def submit(self, name: str, *args: t.Any) -> None:
        """Enqueue job ``name`` soon, from the background thread (at once in immediate mode)."""
        if self.queue.huey.immediate:
            self.queue.enqueue(name, *args)
            return
        with self._ready:
            self._calls.append((name, args))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="job-batcher", daemon=True)
                self._thread.start()
            if len(self._calls) == 1:  # the thread waits only on an empty list
                self._ready.notify()

    def pending(self) -> int:
        """Return how many calls wait for the next round trip."""
        with self._ready:
            return len(self._calls)

    def flush(self) -> int:
        """Hand every call submitted so far to the queue, in this thread; return how many this call handed.

        When it returns, all of them are on the queue, including any the background thread was handing over.
        """
        handed = 0
        while batch_size := self._hand_over():
            handed += batch_size
        return handed

    def _hand_over(self) -> int:
        """Put the calls waiting now (at most ``max_batch``) on the queue in one round trip; return how many."""
        with self._flushing:
            with self._ready:
                batch, self._calls = self._calls[: self.max_batch], self._calls[self.max_batch:]
            if batch:
                try:
                    self.queue.enqueue_many(batch)
                except Exception:
                    # The work is recorded durably; the sweeper enqueues it again.
                    logger.exception("could not enqueue %d job(s); the sweeper will", len(batch))
            return len(batch)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._calls:
                    self._ready.wait()
            time.sleep(self.linger)
            # One batch per linger: calls that arrive during its round trip wait for the next one. Draining
            # until empty instead degenerates under steady load into a round trip per call or two (each
            # arrives while the previous trip waits for the GIL), at ~80 us of this thread's CPU apiece.
            self._hand_over()


#: Every batcher of this process, flushed at interpreter exit.
_LIVE: weakref.WeakSet[JobBatcher] = weakref.WeakSet()


def _start_children_fresh() -> None:
    """In a forked child, before any of its threads runs: every batcher starts empty, with a thread of its own."""
    for batcher in list(_LIVE):
        batcher._start_fresh()  # noqa: SLF001 - the batchers' own fork hook


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_start_children_fresh)


@atexit.register
def flush_all() -> None:
    """Flush every batcher of this process (at exit, and from gunicorn's ``worker_exit``)."""
    for batcher in list(_LIVE):
        batcher.flush()
