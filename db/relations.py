"""Reads of a checkpoint's kNN relation graph for the Relations page, answered in SQL.

The page used to load every edge (10 per image: 500,000 rows at 50,000 images) into pandas on its first
visit to show one case's neighbours and the possible label errors. Both need far less: a case's edges come
from the (checkpoint, source, rank) index, and the label-error flags are one grouped join that returns only
the flagged cases.
"""
from __future__ import annotations

from sqlalchemy import Text, case, cast, func, select
from sqlalchemy.orm import Session, aliased

from db.models import Image, Label, RelationEdge


def neighbours(session: Session, checkpoint_id: int, image_id: int) -> list[tuple[int, int, float]]:
    """(target image id, rank, similarity) of one case's nearest neighbours, nearest first: one row per other
    image (a graph written by another tool may repeat a target or hold the case itself; the nearest wins)."""
    rows = session.execute(select(RelationEdge.target_image_id, RelationEdge.rank, RelationEdge.similarity)
                           .where(RelationEdge.checkpoint_id == checkpoint_id,
                                  RelationEdge.source_image_id == image_id,
                                  RelationEdge.target_image_id != image_id)
                           .order_by(RelationEdge.rank)).all()
    first = {int(t): (int(r), float(s)) for t, r, s in reversed(rows)}   # reversed: the nearest is written last
    return sorted(((t, r, s) for t, (r, s) in first.items()), key=lambda row: row[1])


def edges_among(session: Session, checkpoint_id: int, image_ids: list[int]) -> list[tuple[int, int, int, float]]:
    """(source, target, rank, similarity) of the edges between the given images (a small graph to draw)."""
    if not image_ids:
        return []
    rows = session.execute(select(RelationEdge.source_image_id, RelationEdge.target_image_id, RelationEdge.rank,
                                  RelationEdge.similarity)
                           .where(RelationEdge.checkpoint_id == checkpoint_id,
                                  RelationEdge.source_image_id.in_(image_ids),
                                  RelationEdge.target_image_id.in_(image_ids))).all()
    return [(int(a), int(b), int(r), float(s)) for a, b, r, s in rows]


def label_disagreements(session: Session, checkpoint_id: int, min_labeled: int = 3,
                        limit: int | None = None) -> tuple[list[tuple[int, int, int]], int]:
    """Labeled cases most of whose labeled neighbours carry another label (possible label errors).

    Returns ([(image id, labeled neighbours, disagreeing)], number flagged), most contradicted first (share,
    then neighbour count, then id), at most `limit` rows. Labels compare as their stored JSON text: one writer
    stores them, so equal values are equal texts (a class index, or a sorted list of indices).
    """
    source, target = aliased(Image), aliased(Image)
    source_label, target_label = aliased(Label), aliased(Label)
    disagree = func.sum(case((cast(source_label.value, Text) != cast(target_label.value, Text), 1), else_=0))
    labeled = func.count()
    grouped = (select(RelationEdge.source_image_id.label("image_id"), labeled.label("n"), disagree.label("d"))
               .join(source, source.id == RelationEdge.source_image_id)
               .join(source_label, source_label.id == source.current_label_id)
               .join(target, target.id == RelationEdge.target_image_id)
               .join(target_label, target_label.id == target.current_label_id)
               .where(RelationEdge.checkpoint_id == checkpoint_id)
               .group_by(RelationEdge.source_image_id)
               .having(labeled >= min_labeled, 2 * disagree > labeled)).subquery()
    total = int(session.scalar(select(func.count()).select_from(grouped)) or 0)
    query = (select(grouped.c.image_id, grouped.c.n, grouped.c.d)
             .order_by((1.0 * grouped.c.d / grouped.c.n).desc(), grouped.c.n.desc(), grouped.c.image_id))
    rows = session.execute(query.limit(limit) if limit else query).all()
    return [(int(i), int(n), int(d)) for i, n, d in rows], total
