"""Readers' answers, with roles, leases and double reading applied (the app and the CLI both save through here).

Single reading (`readers_per_case` 1): an answer is a deciding `human` label, as before accounts existed.
Double reading (2 or 3): each answer is a `read` row that decides nothing alone; once the case has that many
distinct readers, agreement appends a `agreed` row (the final label) and disagreement sends the case to
the review queue, where a lead's `review` row decides. Readers never see each other's reads before they
answer (the Label page shows other readers' rows only once the case is settled).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db import audit
from db.enums import LabelKind, LabelSource, LabelStatus
from db.labels import LabelError, _voided_ids, add_label, add_skip, image_rows, refresh_current, retract_last
from db.leases import claim, holder, lease_length, readers_per_case, release
from db.models import Annotator, CaseLease, Image, Label, Project, utcnow
from db.project_settings import effective
from db.roles import require

SETTLED = (LabelStatus.LABELED.value, LabelStatus.EXCLUDED.value, LabelStatus.REVIEW.value)


@dataclass(frozen=True)
class Read:
    image_id: int
    reader_id: int
    reader: str
    kind: str
    value: Any
    comment: str | None

    @property
    def answer(self) -> tuple:
        """What agreement compares: the kind and the (hashable) value."""
        value = tuple(self.value) if isinstance(self.value, list) else self.value
        return (self.kind, value)


def lock_image(session: Session, image_id: int) -> str:
    """Serialise writers of one case (PostgreSQL row lock; SQLite's write transaction already does) and read
    its status fresh, after the lock."""
    query = select(Image.label_status).where(Image.id == image_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    status = session.scalar(query)
    if status is None:
        raise LabelError(f"no image {image_id}")
    return status


def _names(session: Session, user_ids: list[int]) -> dict[int, str]:
    rows = session.execute(select(Annotator.id, Annotator.name).where(Annotator.id.in_(user_ids))).all()
    return dict(rows)


def _busy_message(session: Session, image_id: int, user_id: int) -> str:
    slots = [(uid, exp) for uid, exp in holder(session, image_id) if uid != user_id]
    names = _names(session, [uid for uid, _ in slots])
    open_leases = [(names.get(uid, "?"), exp) for uid, exp in slots if exp is not None]
    if open_leases:
        name, expires = open_leases[0]
        return f"case {image_id} is being read by {name} until {expires:%H:%M} UTC; take the next case"
    return f"case {image_id} already has all its readers; take the next case"


def _own_slot(session: Session, image_id: int, user_id: int) -> CaseLease | None:
    return session.scalars(select(CaseLease).where(CaseLease.image_id == image_id,
                                                   CaseLease.user_id == user_id)).first()


def _take_slot(session: Session, project: Project, image: Image, user: Annotator, readers: int,
               now: datetime) -> None:
    """Make sure this reader holds a slot of the case (its lease, or a free slot now); refuse otherwise.

    Single reading only refuses while another reader holds an open lease: correcting a labeled case (it is
    out of the queue, its one slot already used) stays possible, as before leases.
    """
    mine = _own_slot(session, image.id, user.id)
    if mine is not None:
        return
    if claim(session, project.id, image.id, user.id, readers, now + lease_length(project), now):
        return
    others = [exp for uid, exp in holder(session, image.id, now) if uid != user.id]
    if readers == 1 and all(exp is None for exp in others):
        return
    raise LabelError(_busy_message(session, image.id, user.id))


def _mark_read(session: Session, image_id: int, user_id: int) -> None:
    session.execute(update(CaseLease).where(CaseLease.image_id == image_id, CaseLease.user_id == user_id)
                    .values(expires_at=None).execution_options(synchronize_session=False))


def reads_of(rows: list[Label]) -> list[Read]:
    """Each reader's newest valid read of one case (rows ordered by id); `reader` is the id until named."""
    voided = _voided_ids(rows)
    newest: dict[int, Label] = {}
    for row in rows:
        if row.source == LabelSource.READ.value and row.id not in voided and row.annotator_id is not None:
            newest[row.annotator_id] = row
    return [Read(r.image_id, uid, str(uid), r.kind, r.value, r.comment) for uid, r in newest.items()]


def _named(session: Session, reads: list[Read]) -> list[Read]:
    names = _names(session, sorted({r.reader_id for r in reads}))
    return [replace(r, reader=names.get(r.reader_id, "?")) for r in reads]


def _winner(reads: list[Read], rule: str) -> tuple | None:
    counts = Counter(r.answer for r in reads)
    answer, top = counts.most_common(1)[0]
    if top == len(reads):
        return answer
    if rule == "majority" and top * 2 > len(reads):
        return answer
    return None


def settle(session: Session, project: Project, image_id: int) -> str:
    """After a read: decide the case once it has all its readers. Returns the image's new status."""
    rows = image_rows(session, image_id)
    decider = refresh_current(session, image_id, rows)
    if decider is not None:
        return session.scalar(select(Image.label_status).where(Image.id == image_id))
    reads = reads_of(rows)
    if len(reads) < readers_per_case(project):
        return session.scalar(select(Image.label_status).where(Image.id == image_id))
    winner = _winner(reads, effective(project)["final_labels"])
    if winner is None:
        session.execute(update(Image).where(Image.id == image_id)
                        .values(label_status=LabelStatus.REVIEW.value, current_label_id=None))
        return LabelStatus.REVIEW.value
    kind, value = winner
    agreeing = sum(r.answer == winner for r in reads)
    image = session.get(Image, image_id)
    add_label(session, image, None, list(value) if isinstance(value, tuple) else value, kind=kind,
              source=LabelSource.CONSENSUS.value, comment=f"{agreeing} of {len(reads)} readers agreed")
    return session.scalar(select(Image.label_status).where(Image.id == image_id))


def answer(session: Session, project: Project, image: Image, user: Annotator, value: Any = None, *,
           kind: str = LabelKind.CLASS.value, comment: str | None = None, mask_path: str | None = None,
           bulk: bool = False, now: datetime | None = None) -> Label:
    """Save one reader's answer for a case. Call inside db.engine.write_session."""
    require(user, "bulk_label" if bulk else "label", project)
    now = now or utcnow()
    readers = readers_per_case(project)
    if bulk and readers > 1:
        raise LabelError("bulk labels would skip blind double reading: this project reads each case "
                         f"{readers} times, so cases are labeled one by one")
    status = lock_image(session, image.id)
    if readers > 1 and status in SETTLED:
        if status == LabelStatus.REVIEW.value:
            raise LabelError(f"case {image.id}: the readers disagreed; it waits for a lead on the Review page")
        raise LabelError(f"case {image.id} is final after double reading; a lead can change it on the Review page")
    before = _current_value(session, image.id)
    _take_slot(session, project, image, user, readers, now)
    if readers == 1 and kind == LabelKind.UNCERTAIN.value:
        # unsure: the case stays in the pool for anyone (not a used slot), at the back of this reader's queue
        row = add_label(session, image, user, value, kind=kind, comment=comment, mask_path=mask_path)
        release(session, image.id, user.id)
        add_skip(session, image.id, user)
    else:
        source = LabelSource.HUMAN.value if readers == 1 else LabelSource.READ.value
        row = add_label(session, image, user, value, kind=kind, source=source, comment=comment,
                        mask_path=mask_path)
        _mark_read(session, image.id, user.id)
        if readers > 1:
            settle(session, project, image.id)
    audit.record(session, user, "label.bulk" if bulk else "label.add", project_id=project.id,
                 target_kind="image", target_id=image.id, before=before,
                 after={"kind": kind, "value": row.value, "source": row.source, "label_id": row.id})
    return row


def adjudicate(session: Session, project: Project, image: Image, lead: Annotator, value: Any = None, *,
               kind: str = LabelKind.CLASS.value, comment: str | None = None,
               mask_path: str | None = None) -> Label:
    """A lead's final word on a case (a disagreement, or an override of any label)."""
    require(lead, "review", project)
    lock_image(session, image.id)
    before = {"current": _current_value(session, image.id),
              "reads": [{"reader": r.reader, "kind": r.kind, "value": r.value} for r in case_reads(session, image.id)]}
    row = add_label(session, image, lead, value, kind=kind, source=LabelSource.REVIEW.value, comment=comment,
                    mask_path=mask_path)
    audit.record(session, lead, "label.review", project_id=project.id, target_kind="image", target_id=image.id,
                 before=before, after={"kind": kind, "value": row.value, "label_id": row.id, "comment": comment})
    return row


def skip(session: Session, project: Project, image_id: int, user: Annotator) -> None:
    """Not now: the case goes back to the queue for others and to the back of this reader's queue."""
    require(user, "label", project)
    release(session, image_id, user.id)
    add_skip(session, image_id, user)
    audit.record(session, user, "label.skip", project_id=project.id, target_kind="image", target_id=image_id)


def undo(session: Session, project: Project, image: Image, user: Annotator, now: datetime | None = None) -> Label:
    """Retract this reader's newest answer; the case stays leased to them so they can answer again."""
    require(user, "label", project)
    now = now or utcnow()
    readers = readers_per_case(project)
    status = lock_image(session, image.id)
    if readers > 1 and status in SETTLED:
        raise LabelError(f"case {image.id} was already settled by double reading; ask a lead to change it")
    before = _current_value(session, image.id)
    row = retract_last(session, image, user)
    session.execute(update(CaseLease).where(CaseLease.image_id == image.id, CaseLease.user_id == user.id)
                    .values(expires_at=now + lease_length(project)).execution_options(synchronize_session=False))
    if readers > 1:
        settle(session, project, image.id)
    audit.record(session, user, "label.retract", project_id=project.id, target_kind="image", target_id=image.id,
                 before=before, after={"voids_label_id": row.voids_label_id})
    return row


def _current_value(session: Session, image_id: int) -> dict[str, Any] | None:
    row = session.execute(select(Image.label_status, Label.kind, Label.value, Label.source)
                          .outerjoin(Label, Label.id == Image.current_label_id).where(Image.id == image_id)).first()
    if row is None:
        return None
    status, kind, value, source = row
    return {"status": status, "value": value, "source": source} if kind else {"status": status}


def case_reads(session: Session, image_id: int) -> list[Read]:
    rows = image_rows(session, image_id)
    return _named(session, reads_of(rows))


def review_queue(session: Session, project_id: int, limit: int = 200) -> list[int]:
    """Cases whose readers disagreed, oldest first."""
    return list(session.scalars(select(Image.id).where(Image.project_id == project_id,
                                                       Image.label_status == LabelStatus.REVIEW.value)
                                .order_by(Image.id).limit(limit)))


def project_reads(session: Session, project_id: int) -> list[Read]:
    """Every valid read of the project (for agreement statistics), one per reader and case."""
    read_images = (select(Label.image_id).join(Image, Image.id == Label.image_id)
                   .where(Image.project_id == project_id, Label.source == LabelSource.READ.value))
    rows = list(session.scalars(select(Label).where(Label.image_id.in_(read_images))
                                .order_by(Label.image_id, Label.id)))
    by_image: dict[int, list[Label]] = {}
    for row in rows:
        by_image.setdefault(row.image_id, []).append(row)
    return _named(session, [r for history in by_image.values() for r in reads_of(history)])
