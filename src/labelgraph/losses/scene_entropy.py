"""SALGL's two scene terms (Zhu et al., "Scene-Aware Label Graph Learning for Multi-Label Image Classification", ICCV
2023): scenes are learnt without labels, so each image should belong to one scene clearly and the batch should use
them all. Both read ``outputs["scene_probs"]`` (B, K), the softmax of the image's scene scores."""

from __future__ import annotations

import torch

from labelgraph.losses.auxiliary import AuxiliaryLoss

EPS = 1e-7  # inside the logarithm, as the official EntropyLoss


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Mean entropy of the rows of ``p`` (..., K) -> scalar."""
    return -(p * torch.log(p + EPS)).sum(-1).mean()


def scene_probs_of(outputs: dict[str, torch.Tensor], loss: str) -> torch.Tensor:
    if "scene_probs" not in outputs:
        raise KeyError(f"{loss} needs forward_train outputs with a 'scene_probs' entry (SALGL's head returns them)")
    return outputs["scene_probs"].float()


class SceneEntropyLoss(AuxiliaryLoss):
    """The mean entropy of each image's scene distribution: low when every image is sure of its scene."""

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__(weight, name="scene_entropy")

    def term(self, outputs: dict[str, torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
        return entropy(scene_probs_of(outputs, type(self).__name__))


class SceneBalanceLoss(AuxiliaryLoss):
    """(log K - H(mean of the batch's scene distributions)) x ``scale`` (100, as the official code): zero when the
    batch spreads over all K scenes evenly, so no scene is left unused."""

    def __init__(self, weight: float = 1.0, scale: float = 100.0) -> None:
        super().__init__(weight, name="scene_balance")
        self.scale = scale

    def term(self, outputs: dict[str, torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
        p = scene_probs_of(outputs, type(self).__name__)
        uniform = torch.full((p.shape[-1],), 1.0 / p.shape[-1], device=p.device)
        return (entropy(uniform) - entropy(p.mean(0))) * self.scale
