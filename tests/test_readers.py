"""Several readers at once (issue 14): accounts, roles, case leases, double reading, review, kappa, audit.

Runs on SQLite always and on PostgreSQL when MEDSSL_TEST_PG_URL is set (the `store` fixture).
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from db import audit
from db.agreement import project_agreement
from db.engine import write_session
from db.labels import LabelError, current_label
from db.leases import next_case, release_all
from db.models import AuditEvent, CaseLease, Image, utcnow
from db.project_settings import update as update_settings
from db.projects import create_project
from db.reading import adjudicate, answer, case_reads, review_queue, skip, undo
from db.roles import PermissionDenied, allowed
from db.users import (
    AccountError,
    add_user,
    authenticate,
    ensure_user,
    first_admin,
    set_disabled,
    set_password,
)

PASSWORD = "correct horse battery"


def _project(session, n: int = 6, readers: int = 1, task: str = "multiclass"):
    project = create_project(session, "p", task, ["normal", "pneumonia", "other"], 64)
    for i in range(n):
        session.add(Image(project_id=project.id, stored_path=f"images/{i}.png", sha256=f"{i:064d}", width=64,
                          height=64, channels=1, dtype="uint8", split="train", source_name=f"{i}.png", meta={}))
    session.flush()
    if readers > 1:
        update_settings(session, project, {"readers_per_case": readers})
    return project


def _users(session, *specs: tuple[str, str]):
    return [ensure_user(session, name, role) for name, role in specs]


def test_passwords_are_argon2_and_login_is_throttled(store, monkeypatch) -> None:
    with store.sessions.begin() as s:
        admin = first_admin(s, "ada", PASSWORD)
        assert admin.role == "admin" and admin.password_hash.startswith("$argon2id$")
        assert PASSWORD not in admin.password_hash
        with pytest.raises(AccountError, match="already exists"):
            first_admin(s, "eve", PASSWORD)
        add_user(s, admin, "bob", "annotator", "bob password 1")
    with store.sessions.begin() as s:
        assert authenticate(s, "bob", "bob password 1").name == "bob"
    for _ in range(5):
        with store.sessions.begin() as s, pytest.raises(AccountError, match="wrong user name or password"):
            authenticate(s, "bob", "guess")
    with store.sessions.begin() as s, pytest.raises(AccountError, match="too many failed logins"):
        authenticate(s, "bob", "bob password 1")          # locked even with the right password
    with store.sessions.begin() as s, pytest.raises(AccountError, match="wrong user name or password"):
        authenticate(s, "nobody", "x")                     # same message: no user enumeration
    with store.sessions.begin() as s:
        actions = [e.action for e in audit.events(s, action="user.login")]
        assert actions.count("user.login_failed") == 5 and "user.login" in actions


def test_password_change_and_disable(store) -> None:
    with store.sessions.begin() as s:
        admin = first_admin(s, "ada", PASSWORD)
        bob = add_user(s, admin, "bob", "annotator", "bob password 1")
        with pytest.raises(AccountError, match="current password is wrong"):
            set_password(s, bob, bob, "new password 2", old_password="nope")
        set_password(s, bob, bob, "new password 2", old_password="bob password 1")
        with pytest.raises(AccountError, match="at least 8"):
            set_password(s, admin, bob, "short")
        with pytest.raises(PermissionDenied):
            set_disabled(s, bob, admin)
        set_disabled(s, admin, bob)
    with store.sessions.begin() as s, pytest.raises(AccountError, match="disabled"):
        authenticate(s, "bob", "new password 2")


def test_roles_are_checked_below_the_ui(store) -> None:
    with store.sessions.begin() as s:
        project = _project(s)
        annotator, viewer, lead = _users(s, ("ann", "annotator"), ("vic", "viewer"), ("lea", "lead"))
        image = s.scalars(select(Image)).first()
        with pytest.raises(PermissionDenied, match="viewer"):
            answer(s, project, image, viewer, 0)
        with pytest.raises(PermissionDenied):
            update_settings(s, project, {"strategy": "entropy"}, actor=annotator)
        with pytest.raises(PermissionDenied):
            answer(s, project, image, annotator, 0, bulk=True)
        assert allowed(lead, "train") and not allowed(annotator, "train") and not allowed(lead, "users")
        update_settings(s, project, {"allow_bulk_label": True}, actor=lead)
        answer(s, project, image, annotator, 0, bulk=True)


def test_leases_serve_each_case_to_one_reader(store) -> None:
    with store.sessions.begin() as s:
        project = _project(s, n=3)
        a, b = _users(s, ("a", "annotator"), ("b", "annotator"))
    with write_session(store.sessions) as s:
        first = next_case(s, project, a.id, None)
        again = next_case(s, project, a.id, None)          # a reload renews the same lease
        other = next_case(s, project, b.id, None)
    assert first.image_id == again.image_id != other.image_id
    with write_session(store.sessions) as s:
        image = s.get(Image, first.image_id)
        with pytest.raises(LabelError, match="being read by a"):
            answer(s, project, image, b, 1)                # b cannot answer a's leased case
        answer(s, project, image, a, 1)
    with write_session(store.sessions) as s:
        nxt = next_case(s, project, a.id, None)
        assert nxt.image_id not in {first.image_id, other.image_id}
        skip(s, project, nxt.image_id, a)                  # released: b may get it
        release_all(s, b.id)                               # logout gives b's lease back
        served = {next_case(s, project, b.id, None).image_id}
    assert served & {nxt.image_id, other.image_id}


def test_expired_lease_is_taken_over(store) -> None:
    with store.sessions.begin() as s:
        project = _project(s, n=1)
        a, b = _users(s, ("a", "annotator"), ("b", "annotator"))
    with write_session(store.sessions) as s:
        lease = next_case(s, project, a.id, None)
        assert next_case(s, project, b.id, None) is None
        later = utcnow() + timedelta(minutes=11)
        assert next_case(s, project, b.id, None, now=later).image_id == lease.image_id
        rows = s.scalars(select(CaseLease)).all()
    assert [(r.slot, r.user_id) for r in rows] == [(0, b.id)]


def test_double_reading_agreement_disagreement_and_review(store) -> None:
    with store.sessions.begin() as s:
        project = _project(s, n=2, readers=2)
        a, b, c, lead = _users(s, ("a", "annotator"), ("b", "annotator"), ("c", "annotator"), ("l", "lead"))
    with write_session(store.sessions) as s:
        la, lb = next_case(s, project, a.id, None), next_case(s, project, b.id, None)
        assert la.image_id == lb.image_id                  # double reading: the same case for two readers
        assert next_case(s, project, c.id, None).image_id != la.image_id   # but not for a third
        first = s.get(Image, la.image_id)
        answer(s, project, first, a, 1)
        assert current_label(s, first.id) is None         # one read decides nothing
        answer(s, project, first, b, 1)
        assert current_label(s, first.id).source == "agreed" and current_label(s, first.id).value == 1
    with write_session(store.sessions) as s:
        second = next(i for i in s.scalars(select(Image)) if i.id != first.id)
        answer(s, project, second, a, 0)
        answer(s, project, second, c, 2)
        assert s.get(Image, second.id).label_status == "review"
        assert review_queue(s, project.id) == [second.id]
        with pytest.raises(LabelError, match="waits for a lead"):
            answer(s, project, second, b, 0)
        with pytest.raises(PermissionDenied):
            adjudicate(s, project, second, a, 0)
        assert sorted(r.value for r in case_reads(s, second.id)) == [0, 2]
        adjudicate(s, project, second, lead, 2, comment="effusion visible")
        assert current_label(s, second.id).source == "review" and review_queue(s, project.id) == []
        stats = project_agreement(s, project)
    assert stats["cases_read"] == 2 and stats["agreed"] == 1 and stats["disagreed"] == 1
    assert {tuple(p["readers"]) for p in stats["pairs"]} == {("a", "b"), ("a", "c")}


def test_majority_rule_and_undo_before_settling(store) -> None:
    with store.sessions.begin() as s:
        project = _project(s, n=1, readers=3)
        update_settings(s, project, {"final_labels": "majority"})
        a, b, c = _users(s, ("a", "annotator"), ("b", "annotator"), ("c", "annotator"))
    with write_session(store.sessions) as s:
        image = s.scalars(select(Image)).one()
        answer(s, project, image, a, 0)
        undo(s, project, image, a)                          # a changes their mind before the case settles
        answer(s, project, image, a, 1)
        answer(s, project, image, b, 1)
        answer(s, project, image, c, 2)
        assert current_label(s, image.id).value == 1 and current_label(s, image.id).comment == "2 of 3 readers agreed"
        with pytest.raises(LabelError, match="settled"):
            undo(s, project, image, c)


def test_kappa_matches_sklearn(store) -> None:
    from sklearn.metrics import cohen_kappa_score

    a_answers, b_answers = [0, 1, 1, 0, 2, 1], [0, 1, 0, 0, 2, 2]
    with store.sessions.begin() as s:
        project = _project(s, n=6, readers=2)
        a, b, _lead = _users(s, ("a", "annotator"), ("b", "annotator"), ("l", "lead"))
    with write_session(store.sessions) as s:
        for image, x, y in zip(s.scalars(select(Image).order_by(Image.id)), a_answers, b_answers, strict=True):
            answer(s, project, image, a, x)
            answer(s, project, image, b, y)
        stats = project_agreement(s, project)
    (pair,) = stats["pairs"]
    expected = cohen_kappa_score([str(("class", v)) for v in a_answers], [str(("class", v)) for v in b_answers])
    assert pair["kappa"] == pytest.approx(expected, abs=1e-4) and pair["n"] == 6
    assert pair["per_class"]["normal"] == pytest.approx(
        cohen_kappa_score([v == 0 for v in a_answers], [v == 0 for v in b_answers]), abs=1e-4)
    assert stats["fleiss"] is None


def test_fleiss_kappa_for_three_readers(store) -> None:
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    table = [[0, 0, 0], [1, 1, 0], [2, 2, 2], [0, 1, 2], [1, 1, 1]]
    with store.sessions.begin() as s:
        project = _project(s, n=5, readers=3)
        users = _users(s, ("a", "annotator"), ("b", "annotator"), ("c", "annotator"))
    with write_session(store.sessions) as s:
        for image, row in zip(s.scalars(select(Image).order_by(Image.id)), table, strict=True):
            for user, value in zip(users, row, strict=True):
                answer(s, project, image, user, value)
        stats = project_agreement(s, project)
    expected = fleiss_kappa(aggregate_raters(__import__("numpy").array(table))[0])
    assert stats["fleiss"]["n"] == 5 and stats["fleiss"]["kappa"] == pytest.approx(expected, abs=1e-4)


def test_audit_rows_cannot_change(store) -> None:
    with store.sessions.begin() as s:
        project = _project(s, n=1)
        (a,) = _users(s, ("a", "annotator"))
    with write_session(store.sessions) as s:
        answer(s, project, s.scalars(select(Image)).one(), a, 1, comment="x")
    with store.sessions.begin() as s:
        (event,) = audit.events(s, project_id=project.id, action="label")
        assert event.user_name == "a" and event.after["value"] == 1 and event.target_id is not None
    for statement in ("UPDATE audit_event SET user_name = 'mallory'", "DELETE FROM audit_event"):
        with pytest.raises(Exception, match="append-only"), store.sessions.begin() as s:
            s.execute(text(statement))
    with store.sessions.begin() as s:
        assert s.scalars(select(AuditEvent.user_name).where(AuditEvent.action == "label.add")).all() == ["a"]
