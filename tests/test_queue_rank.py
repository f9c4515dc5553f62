"""Published queue ranks (db/queue_rank.py): the fast queue serves exactly what the analysis rows say, walks only
cases still waiting for a label, and never serves ranks of a checkpoint that is not the active one."""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from sqlalchemy import select, text, update

from db import queue_rank
from db.analysis import next_to_label, replace_analysis
from db.engine import write_session
from db.labels import add_label, add_skip, retract_last
from db.leases import next_case
from db.models import Annotator, CaseLease, Checkpoint, Image, Project, UncertaintyScore
from db.projects import create_project, get_or_create_annotator
from db.results import set_active
from tests.test_concurrent_analysis import _rows as analysis_rows


def _project(store, n: int = 40, seed: int = 0) -> tuple[int, list[int], list[int]]:
    """n train images (+2 test), two analysed checkpoints with different rankings, a few images unranked."""
    rng = np.random.default_rng(seed)
    with store.sessions.begin() as s:
        project = create_project(s, "q", "multiclass", ["a", "b"], 32)
        images = [Image(project_id=project.id, stored_path=f"{i}.png", sha256=f"{i:064d}", width=32, height=32,
                        channels=1, dtype="uint8", split="test" if i >= n else "train", source_name=str(i),
                        meta={}) for i in range(n + 2)]
        s.add_all(images)
        s.flush()
        ids = [im.id for im in images]
        checkpoints = []
        for _ in range(2):
            ckpt = Checkpoint(project_id=project.id, method="mt", path="x", config={}, metrics={}, is_active=False)
            s.add(ckpt)
            s.flush()
            ranked = rng.permutation(ids)[: n - 5]   # 7 images (some test) have no rank under this checkpoint
            for rank, image_id in enumerate(ranked):
                s.add(UncertaintyScore(checkpoint_id=ckpt.id, image_id=int(image_id), acquisition_rank=rank))
            checkpoints.append(ckpt.id)
        set_active(s, checkpoints[0])
        return project.id, ids, checkpoints


def _both_paths(store, project_id: int, user_id: int, checkpoint_id: int) -> tuple[int | None, int | None]:
    """(published path, analysis-rows path) answers for the same state."""
    with store.sessions.begin() as s:
        fast = next_to_label(s, project_id, user_id, checkpoint_id)
        s.get(Project, project_id).queue_checkpoint_id = None
        slow = next_to_label(s, project_id, user_id, checkpoint_id)
        s.rollback()
    return fast, slow


def test_published_queue_serves_what_the_analysis_rows_say(store) -> None:
    project_id, _ids, (first, _second) = _project(store)
    assert queue_rank.publish(store.sessions, project_id, batch=7) == first
    with store.sessions.begin() as s:
        user = get_or_create_annotator(s, "a").id
    rng = np.random.default_rng(1)
    served, answered = [], []
    for step in range(45):
        fast, slow = _both_paths(store, project_id, user, first)
        assert fast == slow, f"step {step}"
        if fast is None:
            break
        served.append(fast)
        with store.sessions.begin() as s:
            image, me = s.get(Image, fast), s.get(Annotator, user)
            action = rng.choice(["label", "label", "skip", "uncertain", "exclude", "label_retract"])
            if action != "skip":
                answered.append(fast)
            if action == "skip":
                add_skip(s, fast, me)
            elif action == "uncertain":
                add_label(s, image, me, kind="uncertain")
                add_label(s, image, me, 1)            # uncertain stays in the queue; answer it so the walk moves
            elif action == "label_retract" and len(answered) > 3:
                add_label(s, image, me, 0)
                older = answered.pop(-3)
                retract_last(s, s.get(Image, older), me)   # an older answer taken back: that case returns
            else:
                add_label(s, image, me, 0) if action != "exclude" else add_label(s, image, me, kind="exclude")
    assert len(set(served)) > 20


def test_labeled_cases_leave_the_queue_index(store) -> None:
    """The walk uses ix_image_queue (a partial index): a labeled case is not in it to be stepped over."""
    project_id, ids, (_first, _) = _project(store)
    queue_rank.publish(store.sessions, project_id)
    with store.sessions.begin() as s:
        dialect = s.get_bind().dialect.name
        s.execute(update(Image).where(Image.id.in_(ids[:30])).values(label_status="labeled"))
        in_index = "SELECT count(*) FROM image WHERE project_id = :p AND split = 'train' AND " \
                   "label_status IN ('unlabeled', 'uncertain')"
        assert s.scalar(text(in_index), {"p": project_id}) == 10
        query = ("SELECT id FROM image WHERE project_id = 1 AND split = 'train' AND label_status IN "
                 "('unlabeled', 'uncertain') AND queue_rank IS NOT NULL ORDER BY queue_rank LIMIT 1")
        if dialect == "sqlite":
            plan = " ".join(str(r) for r in s.execute(text("EXPLAIN QUERY PLAN " + query)))
        else:   # a generic plan (what a prepared statement gets after a few runs) must still use it
            s.execute(text("SET LOCAL enable_seqscan = off"))
            s.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
            s.execute(text("PREPARE q(int) AS " + query.replace("project_id = 1", "project_id = $1")))
            plan = " ".join(r[0] for r in s.execute(text("EXPLAIN EXECUTE q(1)")))
            s.execute(text("DEALLOCATE q"))
        assert "ix_image_queue" in plan, plan


def test_reanalysis_unpublishes_and_rollback_republishes(store) -> None:
    project_id, ids, (first, second) = _project(store)
    queue_rank.publish(store.sessions, project_id)
    with store.sessions.begin() as s:
        assert s.get(Project, project_id).queue_checkpoint_id == first
        replace_analysis(s, first, analysis_rows(ids, 0.1))   # a re-run: its ranks may differ from the copy
    with store.sessions.begin() as s:
        assert s.get(Project, project_id).queue_checkpoint_id is None   # the stale copy is not served
        set_active(s, second)
    assert queue_rank.publish(store.sessions, project_id) == second
    with store.sessions.begin() as s:
        best = s.scalar(select(UncertaintyScore.image_id).where(UncertaintyScore.checkpoint_id == second)
                        .join(Image, Image.id == UncertaintyScore.image_id).where(Image.split == "train")
                        .order_by(UncertaintyScore.acquisition_rank).limit(1))
        user = get_or_create_annotator(s, "r").id
    with write_session(store.sessions) as s:
        assert next_case(s, s.get(Project, project_id), user, second).image_id == best


def test_publish_gives_up_when_the_active_checkpoint_changes_midway(store, monkeypatch) -> None:
    """A rollback between two batches: the copy stops and is not named after either checkpoint."""
    project_id, ids, (_first, second) = _project(store)
    real = queue_rank.write_session
    entered = []

    @contextmanager
    def rollback_after_first_batch(sessions):
        entered.append(1)
        if len(entered) == 3:   # 1: start, 2: first batch, 3: second batch
            with store.sessions.begin() as other:
                set_active(other, second)
        with real(sessions) as session:
            yield session

    monkeypatch.setattr(queue_rank, "write_session", rollback_after_first_batch)
    assert queue_rank.publish(store.sessions, project_id, batch=10) is None
    with store.sessions.begin() as s:
        assert s.get(Project, project_id).queue_checkpoint_id is None
    monkeypatch.setattr(queue_rank, "write_session", real)
    assert queue_rank.publish(store.sessions, project_id, batch=10) == second
    with store.sessions.begin() as s:
        copied = dict(s.execute(select(Image.id, Image.queue_rank).where(Image.project_id == project_id)).all())
        wanted = dict(s.execute(select(UncertaintyScore.image_id, UncertaintyScore.acquisition_rank)
                                .where(UncertaintyScore.checkpoint_id == second)).all())
    assert copied == {i: wanted.get(i) for i in ids}


def test_one_statement_lease_renews_passes_over_and_takes_over(store) -> None:
    """Single reading on published ranks (db/fast_lease.py): a reload gets the held case back renewed, another
    reader gets the next best, an expired lease on the best case is taken over, a skip goes behind."""
    from datetime import timedelta

    from db.models import utcnow
    from db.reading import skip

    project_id, _ids, (first, _) = _project(store)
    queue_rank.publish(store.sessions, project_id)
    with store.sessions.begin() as s:
        order = list(s.scalars(select(Image.id).where(Image.project_id == project_id, Image.split == "train",
                                                      Image.queue_rank.is_not(None)).order_by(Image.queue_rank)))
        a, b = get_or_create_annotator(s, "a").id, get_or_create_annotator(s, "b").id
    now = utcnow()
    with write_session(store.sessions) as s:
        project = s.get(Project, project_id)
        held = next_case(s, project, a, first, now=now)
        again = next_case(s, project, a, first, now=now + timedelta(minutes=5))
        other = next_case(s, project, b, first, now=now)
    assert held.image_id == again.image_id == order[0] and other.image_id == order[1]
    assert again.expires_at > held.expires_at
    later = now + timedelta(minutes=30)   # every lease expired: b takes over the best case, a's expired lease
    with write_session(store.sessions) as s:
        assert next_case(s, s.get(Project, project_id), b, first, now=later).image_id == order[0]
        assert s.scalar(select(CaseLease.user_id).where(CaseLease.image_id == order[0])) == b
        skip(s, s.get(Project, project_id), order[0], s.get(Annotator, b))   # behind b's queue now
        assert next_case(s, s.get(Project, project_id), b, first, now=later).image_id == order[1]


def test_one_statement_lease_under_double_reading(store) -> None:
    """readers_per_case = 2 on published ranks: the best case goes to two distinct readers (slots 0 and 1), a
    third reader gets the next case, and a reader who read a case is never served it again."""
    from db.project_settings import update as update_settings
    from db.reading import answer

    project_id, _ids, (first, _) = _project(store)
    queue_rank.publish(store.sessions, project_id)
    with store.sessions.begin() as s:
        update_settings(s, s.get(Project, project_id), {"readers_per_case": 2})
        order = list(s.scalars(select(Image.id).where(Image.project_id == project_id, Image.split == "train",
                                                      Image.queue_rank.is_not(None)).order_by(Image.queue_rank)))
        a, b, c = (get_or_create_annotator(s, name).id for name in "abc")
    with write_session(store.sessions) as s:
        project = s.get(Project, project_id)
        served = [next_case(s, project, user, first).image_id for user in (a, b, c)]
        slots = dict(s.execute(select(CaseLease.user_id, CaseLease.slot)
                               .where(CaseLease.image_id == order[0])).all())
    assert served == [order[0], order[0], order[1]] and slots == {a: 0, b: 1}
    with write_session(store.sessions) as s:
        project = s.get(Project, project_id)
        answer(s, project, s.get(Image, order[0]), s.get(Annotator, a), 1)
        assert next_case(s, project, a, first).image_id == order[1]   # not order[0] again; c holds slot 0 there


def test_background_publish_lands_and_a_failure_is_logged_not_raised(store, monkeypatch, caplog) -> None:
    """The Train page's "Set active" copies the ranks on a thread (seconds at 100k images): it lands."""
    project_id, _ids, (_first, second) = _project(store)
    with store.sessions.begin() as s:
        set_active(s, second)
    queue_rank.publish_in_background(store.sessions, project_id).join(30)
    with store.sessions.begin() as s:
        assert s.get(Project, project_id).queue_checkpoint_id == second

    def broken(*_args, **_kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(queue_rank, "publish", broken)
    with caplog.at_level("ERROR", logger="db.queue_rank"):
        queue_rank.publish_in_background(store.sessions, project_id).join(30)
    assert "publishing queue ranks of project" in caplog.text
