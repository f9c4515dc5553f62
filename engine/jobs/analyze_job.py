"""Job kind `analyze`: a checkpoint over every image of its project -> predictions, uncertainty,
embeddings, 2-D map, kNN relation graph and acquisition ranks, stored per checkpoint."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select

from db.analysis import QUEUE_STATUSES, AnalysisRows, replace_analysis
from db.enums import LabelStatus
from db.models import Checkpoint, Image, Label, Project
from db.queue_rank import publish as publish_queue_ranks
from engine.analysis.evaluation import evaluation_report
from engine.analysis.projection import project_2d
from engine.analysis.relations import knn_graph
from engine.analysis.strategies import Candidates, get_strategy
from engine.analysis.uncertainty import scores as uncertainty_scores
from engine.data.cache import build_cache
from engine.inference.infer import infer
from engine.jobs import register_handler
from engine.jobs.context import JobContext
from engine.jobs.seg_analysis import analyze_segmentation, seg_evaluation, write_proposals

log = logging.getLogger("medssl.analyze_job")
DEFAULT_STRATEGY = "relation"
KNN_K = 10
MC_SEED = 0   # fixed, so re-analyzing one checkpoint with the same passes stores the same variances


def _predicted(probs: np.ndarray, task: str) -> list:
    if task == "multilabel":
        return [np.flatnonzero(row >= 0.5).tolist() for row in probs]
    return probs.argmax(1).tolist()


def _rank_candidates(rows, embeddings: np.ndarray, scores: dict[str, np.ndarray], knn, strategy: str,
                     seed: int) -> dict[int, int]:
    """Rank unlabeled train images; neighbours are restricted to candidates (indices into the candidate set)."""
    ids = np.array([r.id for r in rows], np.int64)
    is_candidate = np.array([r.split == "train" and r.label_status in QUEUE_STATUSES for r in rows])
    is_labeled = np.array([r.label_status == LabelStatus.LABELED.value for r in rows])
    if not is_candidate.any():
        return {}
    position = np.full(len(rows), -1, np.int64)
    position[is_candidate] = np.arange(is_candidate.sum())
    neighbors = position[knn[0][is_candidate]]
    sims = np.where(neighbors >= 0, knn[1][is_candidate], 0.0).astype(np.float32)
    candidates = Candidates(ids=ids[is_candidate], scores={k: v[is_candidate] for k, v in scores.items()},
                            embeddings=embeddings[is_candidate],
                            labeled_embeddings=embeddings[is_labeled] if is_labeled.any() else None,
                            neighbors=neighbors, neighbor_sims=sims, seed=seed)
    ranked = get_strategy(strategy).rank(candidates)
    return {int(image_id): rank for rank, image_id in enumerate(ranked)}


@register_handler("analyze")
def run_analyze_job(ctx: JobContext) -> str:
    store, timings = ctx.store, {}
    with store.sessions.begin() as session:
        project = session.get(Project, ctx.project_id)
        checkpoint_id = ctx.params.get("checkpoint_id") or session.scalar(
            select(Checkpoint.id).where(Checkpoint.project_id == project.id, Checkpoint.is_active.is_(True)))
        if checkpoint_id is None:
            raise ValueError("no checkpoint to analyze: train a model first")
        checkpoint = session.get(Checkpoint, checkpoint_id)
        rows = session.execute(select(Image.id, Image.split, Image.label_status).where(
            Image.project_id == project.id).order_by(Image.id)).all()
        task, channels, classes = project.task, project.channels, list(project.classes)
        strategy = (project.settings or {}).get(
            "strategy", DEFAULT_STRATEGY)
        mc_passes = ctx.params.get("mc_passes")   # explicit (0 = off) wins over the project setting
        mc_passes = int((project.settings or {}).get("mc_passes", 0) if mc_passes is None else mc_passes)
        ckpt_path = Path(store.config.home) / checkpoint.path
    t0 = time.perf_counter()
    extra = f" (+{mc_passes} MC-dropout passes)" if mc_passes and task != "segmentation" else ""
    ctx.report(progress=0.05, message=f"embedding {len(rows)} images{extra}", force=True)
    image_size = int(ctx.params.get("image_size") or 0) or None
    cache = build_cache(store, ctx.project_id, image_size or _checkpoint_size(ckpt_path), channels)
    ids = np.array([r.id for r in rows], np.int64)
    images = np.asarray(cache.images[cache.rows(ids)])
    timings["cache_s"] = time.perf_counter() - t0
    if task == "segmentation":
        if mc_passes:
            log.info("MC-dropout variance is computed for classification checkpoints only; skipped")
        seg = analyze_segmentation(ckpt_path, images, len(classes), ctx.device or "auto")
        probs, student_probs, embeddings, scores = seg.fractions, None, seg.embeddings, seg.scores
    else:
        def embedded(done: int, total: int) -> None:
            ctx.report(progress=0.05 + 0.35 * done / max(total, 1), message=f"embedding: {done} of {total} images")

        preds = infer(ckpt_path, images, device=ctx.device or "auto", mc_passes=mc_passes, mc_seed=MC_SEED,
                      on_progress=embedded, for_analysis=True)
        has_teacher = preds.teacher_probs is not None
        probs = preds.teacher_probs if has_teacher else preds.student_probs
        student_probs = preds.student_probs if has_teacher else None
        embeddings = preds.teacher_features if has_teacher else preds.student_features
        scores = uncertainty_scores(probs, task, student_probs)
        if preds.mc_variance is not None:
            scores["mc_variance"] = preds.mc_variance
    timings["inference_s"] = time.perf_counter() - t0 - timings["cache_s"]
    t1 = time.perf_counter()
    ctx.report(progress=0.4, message="relation graph (kNN)", force=True)
    # Pooled post-ReLU features are all positive, so raw cosine similarities crowd near 1; centring them
    # (cosine of deviations from the mean, i.e. correlation) spreads the relation graph and the map.
    centred = embeddings - embeddings.mean(axis=0, keepdims=True)
    knn = knn_graph(centred, min(KNN_K, max(len(rows) - 1, 1)))
    timings["knn_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    ctx.report(progress=0.55, message="2-D map", force=True)
    coords, method = project_2d(centred, seed=0, knn=knn)
    timings["projection_s"] = time.perf_counter() - t2
    ranks = _rank_candidates(rows, centred, scores, knn, strategy, seed=checkpoint_id)
    t3 = time.perf_counter()
    ctx.report(progress=0.8, message="writing results", force=True)
    analysis = AnalysisRows(image_ids=ids, predicted=[None] * len(ids) if task == "segmentation"
                            else _predicted(probs, task), probs=probs, student_probs=student_probs, scores=scores,
                            acquisition_rank=ranks, embeddings=embeddings, coords=coords,
                            projection_method=method, knn_indices=knn[0], knn_sims=knn[1])
    if task == "segmentation":
        evaluation = seg_evaluation(store, ctx.project_id, ids, seg.masks, classes, checkpoint_id)
        write_proposals(store, ctx.project_id, checkpoint_id, ids, seg.masks)
    else:
        evaluation = _evaluate_splits(store, project_id=ctx.project_id, ids=ids, probs=probs, task=task)
    with store.sessions.begin() as session:
        replace_analysis(session, checkpoint_id, analysis)
        checkpoint = session.get(Checkpoint, checkpoint_id)
        checkpoint.metrics = {**(checkpoint.metrics or {}), "evaluation": evaluation}
        is_active = checkpoint.is_active
    if is_active:   # the labeling queue walks the new ranking (db/queue_rank.py)
        publish_queue_ranks(store.sessions, ctx.project_id)
    timings["write_s"] = time.perf_counter() - t3
    timings["total_s"] = time.perf_counter() - t0
    ctx.report(metrics={"timings": {k: round(v, 2) for k, v in timings.items()}, "checkpoint_id": checkpoint_id},
               force=True)
    return (f"analyzed {len(rows)} images with checkpoint {checkpoint_id} ({method}, {strategy} ranking, "
            f"{timings['total_s']:.1f} s)")


def _evaluate_splits(store, project_id: int, ids: np.ndarray, probs: np.ndarray, task: str) -> dict:
    """Report per labeled split (val, test, train) for the Models page; empty splits are left out."""
    with store.sessions.begin() as session:
        project = session.get(Project, project_id)
        classes = list(project.classes)
        rows = session.execute(select(Image.id, Image.split, Label.value).join(
            Label, Label.id == Image.current_label_id).where(Image.project_id == project_id)).all()
    position = {int(image_id): n for n, image_id in enumerate(ids)}
    report = {}
    for split in ("val", "test", "train"):
        chosen = [(position[r.id], r.value) for r in rows if r.split == split and r.id in position]
        if len(chosen) < 2:
            continue
        index = np.array([c[0] for c in chosen])
        if task == "multilabel":
            labels = np.zeros((len(chosen), len(classes)), dtype=int)
            for n, (_, value) in enumerate(chosen):
                labels[n, value] = 1
        else:
            labels = np.array([c[1] for c in chosen], dtype=int)
        report[split] = evaluation_report(probs[index], labels, task, classes)
    return report


def _checkpoint_size(path: Path) -> int:
    from engine.core.checkpoints import load_checkpoint

    return int(load_checkpoint(path)["model"]["image_size"])
