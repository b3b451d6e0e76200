"""SADCL's class prototypes from a trained Query2Label (or SADCL) model (``labelgraph prototypes``).

The prototype of class c is the mean label-level feature (the decoder output for query c) over the training images
where c is present *and* predicted with probability above ``threshold`` (SADCL's files use 0.85 at 448 px). The
official release ships such files but not the code that made them; this is that step.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from labelgraph.errors import InvalidInputError
from labelgraph.models import methods_providing


@torch.no_grad()
def class_prototypes(
    model: nn.Module, loader: DataLoader, num_classes: int, threshold: float = 0.85
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean label-level feature of confidently predicted positives, per class.

    A class with no confident positive falls back to the mean over all its positives (with a warning); a class with
    no positive at all gets a zero prototype (warned too).

    Returns:
        prototypes (C, d) and the number of images averaged per class (C,).
    """
    head = model.head
    if not head.provides("label_features"):
        raise InvalidInputError(
            f"{model.config['method']} has no label-level features (a label-query head's label_features): use a model "
            f"of {', '.join(methods_providing('label_features'))}"
        )
    model.eval()
    confident_sum = all_sum = None
    confident_n = torch.zeros(num_classes)
    all_n = torch.zeros(num_classes)
    for batch in loader:
        if batch is None:
            continue
        images, targets = batch
        features = model.features(images)
        h = head.label_features(features).float()  # (B, C, d)
        probs = torch.sigmoid(head(features).float())  # (B, C)
        present = targets == 1
        confident = present & (probs > threshold)
        if confident_sum is None:
            confident_sum, all_sum = torch.zeros(num_classes, h.shape[-1]), torch.zeros(num_classes, h.shape[-1])
        confident_sum += (h * confident[..., None]).sum(0)
        all_sum += (h * present[..., None]).sum(0)
        confident_n += confident.sum(0)
        all_n += present.sum(0)
    if confident_sum is None:
        raise ValueError("the data loader yielded no images")
    use_all = confident_n == 0
    if use_all.any():
        warnings.warn(
            f"{int(use_all.sum())} class(es) have no positive predicted above {threshold}: their prototype averages "
            "all their positives",
            stacklevel=2,
        )
    if (all_n == 0).any():
        warnings.warn(f"{int((all_n == 0).sum())} class(es) have no positive image: zero prototype", stacklevel=2)
    sums = torch.where(use_all[:, None], all_sum, confident_sum)
    counts = torch.where(use_all, all_n, confident_n)
    return sums / counts.clamp_min(1)[:, None], counts
