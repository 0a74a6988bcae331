"""The job batcher: calls parked in memory reach the queue in order, in few round trips, and survive a fork."""

from __future__ import annotations

import logging
import os
import threading
import time
import typing as t

import pytest
import redis
from flask import Flask

from referral_plugin.job_batcher import JobBatcher
from referral_plugin.job_batcher import flush_all
from referral_plugin.jobs import FAN_OUT_JOB
from referral_plugin.jobs import get_queue
from referral_plugin.webhooks.queued import PROCESS_JOB
from tests.conftest import wait_until

pytestmark = pytest.mark.slow


def queued_calls(app: Flask) -> list[tuple[str, tuple[t.Any, ...]]]:
    """Return the (job name, args) of every task waiting in the app's queue, first to run first."""
    huey = get_queue(app).huey
    tasks = [huey.deserialize_task(data) for data in huey.storage.enqueued_items()]
    return [(task.name, tuple(task.args)) for task in tasks]


def run_fan_outs(app: Flask) -> int:
    """Run, as a consumer would, the fan-out messages at the front of the queue; return how many ran."""
    huey = get_queue(app).huey
    ran = 0
    while queued_calls(app) and queued_calls(app)[0][0] == FAN_OUT_JOB:
        huey.execute(huey.dequeue())
        ran += 1
    return ran


def lpush_calls(url: str) -> int:
    """Return how many LPUSH commands the Redis server has run since its statistics were reset."""
    stats = redis.Redis.from_url(url).info("commandstats")
    return int(stats.get("cmdstat_lpush", {}).get("calls", 0))



@pytest.fixture
def app_config(app_config: dict[str, t.Any], redis_url: str) -> dict[str, t.Any]:
    """Queue through a real Redis, as production does."""
    return {**app_config, "HUEY_IMMEDIATE": False, "REDIS_URL": redis_url}


@pytest.fixture
def batcher(app: Flask) -> t.Iterator[JobBatcher]:
    """Return the app's batcher over an empty queue, its thread slowed so that only the test flushes."""
    queue = get_queue(app)
    queue.huey.flush()
    queue.batcher.linger = 60.0
    yield queue.batcher
    queue.batcher.flush()
    queue.huey.flush()


def test_calls_reach_the_queue_in_order_in_one_redis_round_trip(
    app: Flask, batcher: JobBatcher, redis_url: str
) -> None:
    """Five deliveries' jobs wait in memory, then one LPUSH of one message carries all five; a consumer turns it
    into the five jobs, first in first out, each with its own retries."""
    redis.Redis.from_url(redis_url).config_resetstat()
    for delivery_id in range(1, 6):
        batcher.submit(PROCESS_JOB, delivery_id)
    assert get_queue(app).huey.pending_count() == 0
    assert batcher.pending() == 5

    assert batcher.flush() == 5
    assert lpush_calls(redis_url) == 1
    assert queued_calls(app) == [(FAN_OUT_JOB, ([(PROCESS_JOB, [n]) for n in range(1, 6)],))]
    assert batcher.pending() == 0

    assert run_fan_outs(app) == 1
    assert queued_calls(app) == [(PROCESS_JOB, (n,)) for n in range(1, 6)]
    assert lpush_calls(redis_url) == 2


def test_a_single_call_goes_on_the_queue_as_itself(app: Flask, batcher: JobBatcher) -> None:
    """Nothing to share a message with: no fan-out hop for a lone delivery."""
    batcher.submit(PROCESS_JOB, 6)
    assert batcher.flush() == 1
    assert queued_calls(app) == [(PROCESS_JOB, (6,))]


def test_a_fan_out_skips_a_job_no_longer_registered(app: Flask, batcher: JobBatcher,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """A message sent before a deploy renamed a job: the calls still known are enqueued, the other is logged."""
    get_queue(app).enqueue(FAN_OUT_JOB, [[PROCESS_JOB, [1]], ["jobs.renamed_away", [2]], [PROCESS_JOB, [3]]])
    with caplog.at_level(logging.ERROR, logger="referral_plugin.jobs"):
        assert run_fan_outs(app) == 1
    assert queued_calls(app) == [(PROCESS_JOB, (1,)), (PROCESS_JOB, (3,))]
    assert "fan-out dropped a call of unknown job jobs.renamed_away" in caplog.text


def test_the_background_thread_hands_calls_over_by_itself(app: Flask, batcher: JobBatcher) -> None:
    """Nobody flushes: the process's thread puts the call on the queue after its short linger."""
    batcher.linger = 0.01
    batcher.submit(PROCESS_JOB, 41)
    assert wait_until(lambda: get_queue(app).huey.pending_count() == 1)
    assert queued_calls(app) == [(PROCESS_JOB, (41,))]


def test_calls_arriving_during_a_hand_over_wait_for_the_next_linger(
    app: Flask, batcher: JobBatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under steady load the thread makes one round trip per linger, not one per call that came in meanwhile."""
    queue = get_queue(app)
    enqueue_many = queue.enqueue_many
    trips: list[tuple[float, list[int]]] = []
    first_trip_done = threading.Event()

    def record(calls: t.Any) -> None:
        trips.append((time.monotonic(), [args[0] for _, args in calls]))  # each call is (job name, (delivery id,))
        if len(trips) == 1:  # three deliveries are accepted while the first batch is on its way
            for delivery_id in (2, 3, 4):
                batcher.submit(PROCESS_JOB, delivery_id)
        enqueue_many(calls)
        first_trip_done.set()

    monkeypatch.setattr(queue, "enqueue_many", record)
    batcher.linger = 0.3
    batcher.submit(PROCESS_JOB, 1)
    assert first_trip_done.wait(5)
    assert wait_until(lambda: queue.huey.pending_count() == 2)
    assert [ids for _, ids in trips] == [[1], [2, 3, 4]]
    assert trips[1][0] - trips[0][0] >= 0.3  # the second trip waited out a linger of its own


def test_a_large_backlog_goes_over_in_batches_of_the_maximum(
    app: Flask, batcher: JobBatcher, redis_url: str
) -> None:
    """A burst larger than one batch takes one round trip per ``max_batch`` calls, nothing dropped."""
    batcher.max_batch = 4
    redis.Redis.from_url(redis_url).config_resetstat()
    for delivery_id in range(10):
        batcher.submit(PROCESS_JOB, delivery_id)
    assert batcher.flush() == 10
    assert lpush_calls(redis_url) == 3
    assert run_fan_outs(app) == 3
    assert [args for _, args in queued_calls(app)] == [(n,) for n in range(10)]


def test_an_unreachable_queue_is_logged_and_the_calls_left_to_the_sweeper(
    app: Flask, batcher: JobBatcher, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis down: the request already answered, so the batcher logs and drops; it does not raise or retry."""
    def refuse(_calls: t.Any) -> None:
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(get_queue(app), "enqueue_many", refuse)
    batcher.submit(PROCESS_JOB, 7)
    with caplog.at_level(logging.ERROR, logger="referral_plugin.job_batcher"):
        assert batcher.flush() == 1
    assert "could not enqueue 1 job(s); the sweeper will" in caplog.text
    assert batcher.pending() == 0


def test_exit_flushes_what_the_process_still_holds(app: Flask, batcher: JobBatcher) -> None:
    """gunicorn's ``worker_exit`` (and ``atexit``) hand over the calls still parked."""
    batcher.submit(PROCESS_JOB, 8)
    flush_all()
    assert queued_calls(app) == [(PROCESS_JOB, (8,))]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_keeps_its_own_calls_and_not_its_parents(app: Flask, batcher: JobBatcher) -> None:
    """gunicorn forks workers from a loaded app: each child starts empty and hands over only what it took."""
    batcher.submit(PROCESS_JOB, 1)  # the parent's, still in its memory
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code, never return into pytest
        code = 1
        try:
            batcher.submit(PROCESS_JOB, 2)
            code = 0 if batcher.flush() == 1 and queued_calls(app) == [(PROCESS_JOB, (2,))] else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert batcher.pending() == 1
    batcher.flush()
    assert queued_calls(app) == [(PROCESS_JOB, (2,)), (PROCESS_JOB, (1,))]
