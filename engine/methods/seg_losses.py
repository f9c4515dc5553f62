"""Pure segmentation losses (METHODS §4.2): CE + Dice, pixel InfoNCE, region- and anatomical-aware sampling.

Shapes: logits (B, K, H, W); masks (B, H, W) int64 with -1 = ignore; embeddings (B, d, h, w) unit length per
pixel. Every sampler is memory-bounded: at most n_anchor anchors per class and n_neg negatives per class.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def dice_loss(logits: torch.Tensor, masks: torch.Tensor, include_background: bool = False,
              eps: float = 1e-5) -> torch.Tensor:
    """1 - soft Dice per class, pooled over the batch (stable when one image has no foreground)."""
    probs = torch.softmax(logits.float(), dim=1)
    valid = (masks >= 0).unsqueeze(1).float()  # (B, 1, H, W)
    onehot = F.one_hot(masks.clamp(min=0), logits.shape[1]).permute(0, 3, 1, 2).float() * valid
    probs = probs * valid
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + eps) / (denom + eps)  # (K,)
    first = 0 if include_background or logits.shape[1] == 1 else 1
    return 1.0 - dice[first:].mean()


def seg_supervised_loss(logits: torch.Tensor, masks: torch.Tensor, class_weights: torch.Tensor | None = None,
                        dice_weight: float = 1.0) -> torch.Tensor:
    """CE(logits, y) + dice_weight * Dice(softmax(logits), y), ignoring pixels labelled -1."""
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    ce = F.cross_entropy(logits.float(), masks, weight=class_weights, ignore_index=-1)
    return ce + dice_weight * dice_loss(logits, masks) if dice_weight else ce


def info_nce(anchors: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, tau: float) -> torch.Tensor:
    """-log(e^{a.p/tau} / (e^{a.p/tau} + sum_n e^{a.n/tau})), mean over anchors.

    anchors, positives (A, d); negatives (M, d) shared by every anchor, or (A, M, d) per anchor.
    """
    pos = (anchors * positives).sum(dim=1, keepdim=True)  # (A, 1)
    neg = anchors @ negatives.t() if negatives.ndim == 2 else torch.einsum("ad,amd->am", anchors, negatives)
    logits = torch.cat([pos, neg], dim=1).float() / tau
    return F.cross_entropy(logits, torch.zeros(len(anchors), dtype=torch.long, device=anchors.device))


def region_vectors(embeddings: torch.Tensor, grid: int) -> torch.Tensor:
    """G x G average-pooled cells, re-normalised: (B, d, h, w) -> (B * G * G, d), row-major cells per image."""
    pooled = F.adaptive_avg_pool2d(embeddings, grid)  # (B, d, G, G)
    return F.normalize(pooled.flatten(2).transpose(1, 2).reshape(-1, embeddings.shape[1]), dim=1)


def region_contrast(student: torch.Tensor, teacher: torch.Tensor, grid: int = 4, tau: float = 0.1) -> torch.Tensor:
    """Variant A: positive = the teacher's same cell of the same image; negatives = every other teacher cell."""
    s, t = region_vectors(student, grid), region_vectors(teacher, grid)  # (N, d) each, N = B * G^2
    logits = (s @ t.t()).float() / tau  # (N, N); diagonal = positives
    return F.cross_entropy(logits, torch.arange(len(s), device=s.device))


def pseudo_labels(logits: torch.Tensor, size: tuple[int, int], threshold: float = 0.9) -> torch.Tensor:
    """argmax of softmax at full resolution, -1 where confidence < threshold, nearest-down-sampled to size."""
    conf, label = torch.softmax(logits.float(), dim=1).max(dim=1)
    label = label.masked_fill(conf < threshold, -1)
    return downsample_mask(label, size)


def downsample_mask(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest down-sampling of a class-index mask (B, H, W) -> (B, h, w); -1 stays -1."""
    if tuple(masks.shape[-2:]) == tuple(size):
        return masks
    return F.interpolate(masks.unsqueeze(1).float(), size=size, mode="nearest").squeeze(1).long()


def _subsample(index: torch.Tensor, limit: int, gen: torch.Generator | None) -> torch.Tensor:
    if len(index) <= limit:
        return index
    order = torch.randperm(len(index), generator=gen, device=gen.device if gen is not None else "cpu")
    return index[order[:limit].to(index.device)]


def anatomical_contrast(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, tau: float = 0.1,
                        n_anchor: int = 256, n_neg: int = 512, gen: torch.Generator | None = None) -> torch.Tensor:
    """Variant B: per class k, anchors = student pixels labelled k, positive = the teacher prototype c_k,
    negatives = teacher pixels labelled != k (subsampled) plus the other prototypes.

    student/teacher (B, d, h, w); labels (B, h, w) with -1 = not confident (never sampled). Returns 0 (with a
    graph) when fewer than two classes are present: there is nothing to contrast.
    """
    d = student.shape[1]
    s = student.permute(0, 2, 3, 1).reshape(-1, d)  # (P, d)
    t = teacher.permute(0, 2, 3, 1).reshape(-1, d)
    flat = labels.reshape(-1)
    classes = [int(k) for k in torch.unique(flat[flat >= 0])]
    if len(classes) < 2:
        return student.sum() * 0.0
    protos = torch.stack([F.normalize(t[flat == k].mean(dim=0), dim=0) for k in classes])  # (C', d)
    total, count = s.new_zeros(()), 0
    for i, k in enumerate(classes):
        anchors = _subsample(torch.nonzero(flat == k).squeeze(1), n_anchor, gen)
        negatives = _subsample(torch.nonzero((flat >= 0) & (flat != k)).squeeze(1), n_neg, gen)
        bank = torch.cat([t[negatives], protos[torch.arange(len(classes), device=protos.device) != i]])
        positive = protos[i].expand(len(anchors), d)
        total = total + info_nce(s[anchors], positive, bank, tau) * len(anchors)
        count += len(anchors)
    return total / count
