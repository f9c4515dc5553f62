"""Job kind `export`: a checkpoint -> TorchScript file + model card under MEDSSL_HOME/exports."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from db.models import Checkpoint, Image, Project
from db.results import active_checkpoint_id
from engine.inference.export import export_torchscript, model_card
from engine.jobs import register_handler
from engine.jobs.context import JobContext


@register_handler("export")
def run_export_job(ctx: JobContext) -> str:
    store = ctx.store
    with store.sessions.begin() as session:
        project = session.get(Project, ctx.project_id)
        checkpoint_id = ctx.params.get("checkpoint_id") or active_checkpoint_id(session, project.id)
        if checkpoint_id is None:
            raise ValueError("no checkpoint to export: train a model first")
        checkpoint = session.get(Checkpoint, checkpoint_id)
        images = session.scalar(select(func.count()).select_from(Image).where(Image.project_id == project.id))
        evaluation = (checkpoint.metrics or {}).get("evaluation") or {}
        card = {"project": project.name, "checkpoint_id": checkpoint.id, "method": checkpoint.method,
                "task": project.task, "labels_used": checkpoint.labels_used, "label_hash": checkpoint.label_hash,
                "images": images, "created_at": checkpoint.created_at.isoformat(),
                "metrics": {split: report["metrics"] for split, report in evaluation.items()}}
        source = Path(store.config.home) / checkpoint.path
    out_dir = store.config.exports_dir / f"p{ctx.project_id}" / f"checkpoint{checkpoint_id}"
    ctx.report(progress=0.2, message="tracing TorchScript", force=True)
    model_path, spec = export_torchscript(source, out_dir)
    card.update(spec)
    card_path = out_dir / "MODEL_CARD.md"
    card_path.write_text(model_card(card))
    files = [p.relative_to(store.config.home).as_posix() for p in (model_path, card_path)]
    ctx.report(metrics={"files": files, "checkpoint_id": checkpoint_id}, force=True)
    return f"exported checkpoint {checkpoint_id}: {', '.join(files)}"
