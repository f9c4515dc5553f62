"""Export a checkpoint as a self-contained TorchScript file (preprocessing and output activation inside)
plus a model card, so a hospital IT team can run it without this code base."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.core.config import TrainConfig
from engine.inference.infer import load_models


class DeployedModel(nn.Module):
    """uint8 (B, C, H, W) at the training size -> class probabilities (softmax, or sigmoid for multilabel)."""

    def __init__(self, model: nn.Module, mean: float, std: float, multilabel: bool) -> None:
        super().__init__()
        self.model, self.multilabel = model, multilabel
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.float() / 255.0 - self.mean) / self.std
        logits = self.model(x)["logits"]
        return torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, dim=1)


class SizeGuard(nn.Module):
    """Refuses any input but (B, C, size, size): a traced model silently answered differently at 128 px than
    at the 64 px it was trained on (issue 13 item 10). Scripted, so the check survives in the file."""

    def __init__(self, traced: torch.jit.ScriptModule, in_chans: int, size: int) -> None:
        super().__init__()
        self.traced, self.in_chans, self.size = traced, in_chans, size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != self.in_chans or images.shape[2] != self.size \
                or images.shape[3] != self.size:
            raise RuntimeError(f"this model takes uint8 images of shape (B, {self.in_chans}, {self.size}, "
                               f"{self.size}); resize to {self.size}x{self.size} first (got {images.shape})")
        return self.traced(images)


def export_torchscript(checkpoint: Path, out_dir: Path) -> tuple[Path, dict[str, Any]]:
    """Trace the evaluated model (teacher where one exists) on CPU; returns the file and its input spec."""
    models, payload = load_models(checkpoint, device="cpu")
    role = "teacher" if "teacher" in models else "student"
    cfg = TrainConfig.from_dict(payload["config"])
    spec = payload["model"]
    deployed = DeployedModel(models[role], cfg.data.mean, cfg.data.std, payload["task"] == "multilabel").eval()
    example = torch.zeros((1, spec["in_chans"], spec["image_size"], spec["image_size"]), dtype=torch.uint8)
    with torch.inference_mode():
        traced = torch.jit.trace(deployed, example, check_trace=False)
    guarded = torch.jit.script(SizeGuard(traced, int(spec["in_chans"]), int(spec["image_size"])))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "model.torchscript.pt"
    guarded.save(str(path))
    return path, {"role": role, "input": {"dtype": "uint8", "shape": ["B", spec["in_chans"], spec["image_size"],
                                                                      spec["image_size"]]},
                  "output": "sigmoid probabilities" if payload["task"] == "multilabel" else "softmax probabilities",
                  "class_names": list(payload["class_names"]), "backbone": spec["backbone"]}


def model_card(card: dict[str, Any]) -> str:
    """Markdown card: what the model is, what it was trained on, how it scored, how to call it."""
    lines = [f"# Model card: {card['project']} checkpoint {card['checkpoint_id']}", "",
             "Research use only — not for clinical diagnosis.", "",
             f"- Method: {card['method']} (model exported: {card['role']}), backbone {card['backbone']}",
             f"- Task: {card['task']}; classes: {', '.join(card['class_names'])}",
             (f"- Trained on {card['labels_used']} labeled images (label snapshot {card['label_hash']}) plus the "
             f"unlabeled pool of the project ({card['images']} images in total)"),
             f"- Input: {card['input']['dtype']} tensor {card['input']['shape']}; output: {card['output']}", ""]
    for split, metrics in (card.get("metrics") or {}).items():
        shown = {k: metrics.get(k) for k in ("auc", "sensitivity", "specificity", "f1", "ece")}
        lines.append(f"- {split}: " + ", ".join(f"{k} {v:.3f}" for k, v in shown.items() if v is not None))
    lines += ["", "```python", "import torch", "model = torch.jit.load('model.torchscript.pt')",
              "probs = model(images_uint8)  # (B, C, H, W) uint8 -> (B, classes)", "```", "",
              "```json", json.dumps({k: v for k, v in card.items() if k != "metrics"}, indent=2, default=str), "```"]
    return "\n".join(lines) + "\n"
