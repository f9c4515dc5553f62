"""The queue table on every backend: atomic claims under a race, cancel, failure, stale requeue."""
from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from db.config import StoreConfig
from db.jobs import claim_next, enqueue, finish, register_worker, request_cancel, requeue_stale
from db.models import Job, Worker, utcnow
from db.store import open_store
from engine.jobs import HANDLERS, load_handlers
from engine.jobs.context import JobCancelled
from engine.worker import Worker as QueueWorker


def test_two_workers_racing_run_each_job_exactly_once(store, db_url) -> None:
    with store.sessions.begin() as s:
        for i in range(50):
            enqueue(s, "noop", {"i": i})
    claimed: list[int] = []
    lock = threading.Lock()

    def drain() -> None:
        own = open_store(StoreConfig(home=store.config.home, db_url=db_url), migrate=False)
        with own.sessions.begin() as s:
            worker_id = register_worker(s).id
        while True:
            with own.sessions.begin() as s:
                job = claim_next(s, worker_id)
                if job is None:
                    break
                job_id = job.id
            with lock:
                claimed.append(job_id)
            with own.sessions.begin() as s:
                finish(s, job_id, "done")
        own.dispose()

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = Counter(claimed)
    assert len(counts) == 50 and set(counts.values()) == {1}
    with store.sessions.begin() as s:
        assert set(s.scalars(select(Job.status))) == {"done"}
        assert set(s.scalars(select(Job.attempts))) == {1}


@pytest.fixture
def handlers():
    load_handlers()           # register the real handlers first, so the restore below keeps them
    saved = dict(HANDLERS)
    yield HANDLERS
    HANDLERS.clear()
    HANDLERS.update(saved)


def test_failing_job_is_marked_failed_and_worker_keeps_serving(store, handlers) -> None:
    ran: list[int] = []

    def boom(ctx):
        raise RuntimeError("bad input tensor")

    def ok(ctx):
        ran.append(ctx.job_id)
        return "fine"

    handlers["boom"], handlers["ok"] = boom, ok
    with store.sessions.begin() as s:
        bad = enqueue(s, "boom", {}).id
        good = enqueue(s, "ok", {}).id
    worker = QueueWorker(store)
    worker.serve(once=True)
    worker.close()
    with store.sessions.begin() as s:
        failed, done = s.get(Job, bad), s.get(Job, good)
        assert failed.status == "failed" and "bad input tensor" in failed.error
        assert done.status == "done" and done.message == "fine" and ran == [good]


def test_cancel_queued_and_running(store, handlers) -> None:
    def loop_until_cancelled(ctx):
        with ctx.store.sessions.begin() as s:
            request_cancel(s, ctx.job_id)        # as if the user clicked Cancel mid-run
        for step in range(100):
            ctx.report(progress=step / 100, force=True)
        return "never"

    handlers["long"] = loop_until_cancelled
    with store.sessions.begin() as s:
        queued = enqueue(s, "long", {}).id
        assert request_cancel(s, queued) == "cancelled"
        running = enqueue(s, "long", {}).id
    worker = QueueWorker(store)
    worker.serve(once=True)
    worker.close()
    with store.sessions.begin() as s:
        assert s.get(Job, running).status == "cancelled"
        assert s.get(Job, running).progress < 0.05
    with pytest.raises(JobCancelled):
        raise JobCancelled()


def test_stale_running_job_is_requeued_then_fails_after_max_attempts(store) -> None:
    with store.sessions.begin() as s:
        worker_id = register_worker(s).id
        job_id = enqueue(s, "noop", {}, max_attempts=2).id
        claim_next(s, worker_id)
    with store.sessions.begin() as s:   # the worker stops beating
        s.execute(update(Worker).values(heartbeat_at=utcnow() - timedelta(minutes=10)))
        assert requeue_stale(s) == [job_id]
        assert s.get(Job, job_id).status == "queued"
        claim_next(s, worker_id)
        assert s.get(Job, job_id).attempts == 2
        assert requeue_stale(s) == []
        job = s.get(Job, job_id, populate_existing=True)
        assert job.status == "failed" and "died" in job.error


def test_run_job_runs_exactly_that_job_and_refuses_others(store, handlers, capsys) -> None:
    from engine.cli import main

    ran: list[int] = []
    handlers["ok"] = lambda ctx: ran.append(ctx.job_id) or "fine"
    with store.sessions.begin() as s:
        first, second = enqueue(s, "ok", {}).id, enqueue(s, "ok", {}).id
    db = ["--db", store.config.db_url]
    assert main(["run-job", str(second), *db]) == 0
    assert ran == [second]
    assert main(["run-job", str(second), *db]) == 2          # already done: not queued
    with store.sessions.begin() as s:
        assert s.get(Job, first).status == "queued"
