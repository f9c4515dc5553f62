"""The one-round-trip lease (db/lease_shortcut.py): on PostgreSQL one statement serves the next case once the
project's settings are known, and the moment those settings or the published queue change it acts on nothing
and the long path decides with the new ones. SQLite takes the long path and serves the same cases."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select, update

from db import lease_shortcut, queue_rank
from db.lease_shortcut import serve_next
from db.models import Annotator, CaseLease, Image, Project, utcnow
from db.project_settings import update as update_settings
from db.projects import get_or_create_annotator
from db.reading import answer
from tests.test_queue_rank import _project


@pytest.fixture(autouse=True)
def _fresh_cache():
    lease_shortcut.forget()
    yield
    lease_shortcut.forget()


def _ready(store) -> tuple[int, int, list[int], dict[str, int]]:
    project_id, _ids, (first, _second) = _project(store)
    queue_rank.publish(store.sessions, project_id)
    with store.sessions.begin() as s:
        order = list(s.scalars(select(Image.id).where(Image.project_id == project_id, Image.split == "train",
                                                      Image.queue_rank.is_not(None)).order_by(Image.queue_rank)))
        users = {name: get_or_create_annotator(s, name).id for name in "abc"}
    return project_id, first, order, users


def _statements(store) -> list[str]:
    seen: list[str] = []
    event.listen(store.sql_engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_serves_the_queue_in_order_and_a_reload_gets_the_held_case_back(store) -> None:
    project_id, checkpoint, order, users = _ready(store)
    now = utcnow()
    first = serve_next(store.sessions, project_id, users["a"], checkpoint, now=now)
    again = serve_next(store.sessions, project_id, users["a"], checkpoint, now=now + timedelta(minutes=3))
    other = serve_next(store.sessions, project_id, users["b"], checkpoint, now=now)
    assert first.image_id == again.image_id == order[0] and other.image_id == order[1]
    assert again.expires_at == now + timedelta(minutes=13) and first.expires_at == now + timedelta(minutes=10)
    with store.sessions.begin() as s:
        expiry = s.scalar(select(CaseLease.expires_at).where(CaseLease.image_id == order[0]))
    assert expiry.replace(tzinfo=None) == (now + timedelta(minutes=13)).replace(tzinfo=None)


def test_postgresql_leases_in_one_statement_once_the_settings_are_known(store) -> None:
    if store.sql_engine.dialect.name != "postgresql":
        pytest.skip("the one-statement shortcut is PostgreSQL's; SQLite takes the long path")
    project_id, checkpoint, order, users = _ready(store)
    serve_next(store.sessions, project_id, users["a"], checkpoint)   # the long path: settings now known
    seen = _statements(store)
    lease = serve_next(store.sessions, project_id, users["b"], checkpoint)
    assert lease.image_id == order[1]
    assert len(seen) == 1 and seen[0].lstrip().upper().startswith("WITH"), seen   # no BEGIN, project, COMMIT


def test_a_settings_change_is_obeyed_at_once(store) -> None:
    """readers_per_case 2 -> 1 while the cache still says 2: the case a has read must not go to b (the
    guarded statement sees other settings text and leaves it to the long path); the lease length too."""
    project_id, checkpoint, order, users = _ready(store)
    with store.sessions.begin() as s:
        update_settings(s, s.get(Project, project_id), {"readers_per_case": 2})
    lease = serve_next(store.sessions, project_id, users["a"], checkpoint)
    assert lease.image_id == order[0]
    with store.sessions.begin() as s:
        answer(s, s.get(Project, project_id), s.get(Image, order[0]), s.get(Annotator, users["a"]), 1)
        update_settings(s, s.get(Project, project_id), {"readers_per_case": 1, "lease_minutes": 30})
    now = utcnow()
    lease = serve_next(store.sessions, project_id, users["b"], checkpoint, now=now)
    assert lease.image_id == order[1]   # single reading again: order[0] is read
    assert lease.expires_at == now + timedelta(minutes=30)


def test_a_queue_being_republished_is_not_served_from_stale_ranks(store) -> None:
    """While the ranks are copied (queue_checkpoint_id NULL) the shortcut acts on nothing; the long path
    walks the analysis rows, whose order is the same."""
    project_id, checkpoint, order, users = _ready(store)
    serve_next(store.sessions, project_id, users["a"], checkpoint)
    with store.sessions.begin() as s:
        s.execute(update(Image).where(Image.id == order[1]).values(queue_rank=10_000))   # a stale copy
        s.get(Project, project_id).queue_checkpoint_id = None
    assert serve_next(store.sessions, project_id, users["b"], checkpoint).image_id == order[1]


def test_nothing_left_is_none(store) -> None:
    project_id, checkpoint, _order, users = _ready(store)
    with store.sessions.begin() as s:
        s.execute(update(Image).where(Image.project_id == project_id).values(label_status="labeled"))
    assert serve_next(store.sessions, project_id, users["c"], checkpoint) is None
    assert serve_next(store.sessions, project_id, users["c"], checkpoint) is None   # settings known: same answer
