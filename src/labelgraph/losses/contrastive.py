"""SADCL's two contrastive terms on label-level features (Ma et al., ECAI 2023).

Both read ``forward_train`` outputs of ``sadcl``: ``projected`` (B, C, p), the projected label-level features of the
batch; ``memory_projected`` (M, p) with ``memory_classes`` (M,), the projected memory bank entries and their
classes; ``prototypes_projected`` (C, p). Features are L2-normalised here. Unknown (-1) targets are neither
positives nor negatives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from labelgraph.losses.auxiliary import AuxiliaryLoss


def _full(x: torch.Tensor) -> torch.Tensor:
    """Half-precision features (AMP) are compared in float32; float32/float64 stay as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class SampleToSampleContrastiveLoss(AuxiliaryLoss):
    r"""Supervised contrastive loss between label-level features of present labels (``L_S2S``, T = 0.2).

    The pool is every present label of the batch (feature of class c in image b with :math:`y_{bc} = 1`) plus every
    memory bank entry. Each batch entry i is an anchor; its positives P(i) are the other pool entries of the same
    class, and its denominator runs over the whole pool except itself (the other entries are present labels of
    *other* classes -- absent labels take no part, as in the official loss):

    .. math:: L = -\frac{T}{T_b} \frac{1}{|I|} \sum_{i \in I} \frac{1}{|P(i)|} \sum_{p \in P(i)}
              \log \frac{\exp(z_i \cdot z_p / T)}{\sum_{a \ne i} \exp(z_i \cdot z_a / T)}

    over anchors I with at least one positive. Default weight 100 (the official scripts; the paper writes a plain
    sum). The official anchors also include the memory entries; here they only serve as positives/negatives, which
    keeps the cost at anchors x pool.
    """

    def __init__(self, weight: float = 100.0, temperature: float = 0.2, base_temperature: float = 0.2) -> None:
        super().__init__(weight, name="s2s_loss")
        self.temperature, self.base_temperature = temperature, base_temperature

    def term(self, outputs: dict[str, torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
        z = F.normalize(_full(outputs["projected"]), dim=-1)  # (B, C, p)
        present = targets == 1
        anchors, anchor_classes = z[present], present.nonzero()[:, 1]  # (A, p), (A,)
        bank = F.normalize(_full(outputs["memory_projected"]), dim=-1)  # (M, p)
        pool = torch.cat([anchors, bank])  # (A + M, p)
        pool_classes = torch.cat([anchor_classes, outputs["memory_classes"]])
        if len(anchors) == 0:
            return z.sum() * 0.0
        sim = anchors @ pool.T / self.temperature  # (A, A + M)
        not_self = torch.ones_like(sim, dtype=torch.bool)
        not_self[:, : len(anchors)].fill_diagonal_(False)
        positives = (anchor_classes[:, None] == pool_classes[None]) & not_self
        log_prob = sim - torch.logsumexp(sim.masked_fill(~not_self, float("-inf")), dim=1, keepdim=True)
        counts = positives.sum(1)
        has_positive = counts > 0
        if not has_positive.any():
            return z.sum() * 0.0
        mean_log_prob = (log_prob * positives).sum(1)[has_positive] / counts[has_positive]
        return -(self.temperature / self.base_temperature) * mean_log_prob.mean()


class PrototypeToSampleContrastiveLoss(AuxiliaryLoss):
    r"""Pulls present labels' features to their class prototype, pushes absent ones away (``L_P2S``, T = 0.07).

    With :math:`s_{bc} = \cos(z_{bc}, \pi_c) / T` over the batch:

    .. math:: L = -\frac{1}{\sum_{b,c} y_{bc}} \sum_{c} \Big[\log \sum_{b: y_{bc} = 1} e^{s_{bc}}
              - \log \sum_{b} e^{s_{bc}}\Big]

    summed over classes with at least one present label in the batch (the official code also adds, for classes
    with none, a term that only depends on the negatives -- a masking artefact, left out). Default weight 50.
    """

    def __init__(self, weight: float = 50.0, temperature: float = 0.07) -> None:
        super().__init__(weight, name="p2s_loss")
        self.temperature = temperature

    def term(self, outputs: dict[str, torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
        z = F.normalize(_full(outputs["projected"]), dim=-1)  # (B, C, p)
        prototypes = F.normalize(_full(outputs["prototypes_projected"]), dim=-1)  # (C, p)
        s = (z * prototypes[None]).sum(-1) / self.temperature  # (B, C)
        present, known = targets == 1, targets >= 0
        classes = present.any(0)
        if not classes.any():
            return z.sum() * 0.0
        log_pos = torch.logsumexp(s.masked_fill(~present, float("-inf")), dim=0)  # (C,)
        log_all = torch.logsumexp(s.masked_fill(~known, float("-inf")), dim=0)
        return -(log_pos - log_all)[classes].sum() / present.sum()
