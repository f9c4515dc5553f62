"""Pure loss functions shared by every method (METHODS §1-3). Shapes: logits (B, C), features (B, D)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def probabilities(logits: torch.Tensor, task: str) -> torch.Tensor:
    """softmax for mutually exclusive classes, sigmoid per label for multi-label (P1)."""
    return torch.softmax(logits, dim=1) if task == "multiclass" else torch.sigmoid(logits)


def supervised_loss(logits: torch.Tensor, targets: torch.Tensor, task: str,
                    class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """CE on logits (multiclass, int targets) or BCE-with-logits averaged over labels (multilabel)."""
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    logits = logits.float()
    if task == "multiclass":
        return F.cross_entropy(logits, targets, weight=class_weights)
    return F.binary_cross_entropy_with_logits(logits, targets.float(), pos_weight=class_weights)


def consistency_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor, task: str,
                    class_weights: torch.Tensor | None = None, sum_classes: bool = False) -> torch.Tensor:
    """Mean over samples AND classes of the squared probability gap (MT's normalisation, P13).

    sum_classes: sum over classes, mean over samples (SRC-MT's released weighted consistency).
    """
    gap = (probabilities(student_logits.float(), task) - probabilities(teacher_logits.float(), task)) ** 2
    if class_weights is not None:
        gap = gap * class_weights
    return gap.sum(dim=1).mean() if sum_classes else gap.mean()


def consistency_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, task: str) -> torch.Tensor:
    """KL(teacher || student), per-sample mean; multilabel: per-label Bernoulli KL averaged."""
    s, t = student_logits.float(), teacher_logits.float()
    if task == "multiclass":
        return F.kl_div(F.log_softmax(s, 1), F.log_softmax(t, 1), log_target=True, reduction="batchmean")
    t_prob = torch.sigmoid(t)
    return F.binary_cross_entropy_with_logits(s, t_prob) - F.binary_cross_entropy_with_logits(t, t_prob)


def relation_matrix(features: torch.Tensor, centre: bool = False) -> torch.Tensor:
    """SRC-MT: Gram matrix A A^T (N, N), each ROW divided by its L2 norm (not Frobenius, P4).

    centre: subtract the batch mean feature first. Post-ReLU features share a large common component, so
    the uncentred matrix is nearly flat at initialisation (diagonal 0.146 vs off-diagonal 0.144 at N = 48).
    """
    flat = features.float().flatten(1)  # (N, D)
    if centre:
        flat = flat - flat.mean(dim=0, keepdim=True)
    gram = flat @ flat.t()  # (N, N)
    return F.normalize(gram, p=2, dim=1)


def relation_consistency(student_features: torch.Tensor, teacher_features: torch.Tensor,
                         centre: bool = False) -> torch.Tensor:
    """L_src = (1/N) sum_ij (R_ij - R'_ij)^2; it grows with N, so beta is tuned per batch size (P4)."""
    diff = relation_matrix(student_features, centre) - relation_matrix(teacher_features, centre)
    return (diff ** 2).sum() / student_features.shape[0]


def jcl_loss(query: torch.Tensor, keys: torch.Tensor, negatives: torch.Tensor, tau: float,
             strength: float, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """JCL (Cai et al.): InfoNCE upper bound with infinitely many positives drawn from N(mu, Sigma).

    query (B, d) unit vectors with grad; keys (B, M, d) unit vectors without grad; negatives (K, d).
    Loss = CE([s_pos, q.n/tau], 0) + strength/(2 tau^2) q^T Sigma q, s_pos = q.mu/tau + that same term.
    exclude (B, K) bool masks negatives that are the query's own key mean (batch negatives).
    """
    mu = keys.mean(dim=1)  # (B, d), deliberately not re-normalised
    centred = keys - mu.unsqueeze(1)  # (B, M, d)
    q_sigma_q = (torch.einsum("bd,bmd->bm", query, centred) ** 2).mean(dim=1)  # q^T Sigma q, (B,)
    spread = strength / (2.0 * tau * tau) * q_sigma_q
    positive = (query * mu).sum(dim=1) / tau + spread  # (B,)
    negative = query @ negatives.t() / tau  # (B, K)
    if exclude is not None:
        negative = negative.masked_fill(exclude, float("-inf"))
    logits = torch.cat([positive.unsqueeze(1), negative], dim=1)
    target = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
    return F.cross_entropy(logits, target) + spread.mean()
