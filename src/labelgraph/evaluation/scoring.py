"""Scores of a whole split, in the split's order: what calibration, PR curves and evaluation read."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader

from labelgraph.data.dataset import MultiLabelDataset, collate_images
from labelgraph.data.label_table import LabelTable


def split_scores(
    score: Callable[[torch.Tensor], np.ndarray],
    transform: Callable,
    table: LabelTable,
    batch_size: int = 32,
    decode_size: int | None = None,
) -> np.ndarray:
    """Probabilities ``(N, C)`` of every image of ``table``, in its order.

    Args:
        score: images ``(B, 3, H, W)`` -> probabilities ``(B, C)`` (e.g. ``Predictor.scores``).
        transform: the model's eval preprocessing of one image.
        decode_size: the side images are decoded at, at least (reduced as in training's validation; None: full).

    An unreadable image stops here, naming the file: skipping it would misalign scores and targets.
    """
    dataset = MultiLabelDataset(table, transform, decode_size=decode_size)
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_images)
    return np.concatenate([score(images) for images, _ in loader])
