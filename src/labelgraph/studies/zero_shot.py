"""ML-Decoder's zero-shot setting in small (Ridnik et al., "ML-Decoder", WACV 2023, https://arxiv.org/abs/2111.12933):
queries made from label embeddings through one shared projection, trained on 20 colour-shape classes whose images
never show 5 held-out pairs; the 5 new names then get queries from their embeddings and are ranked on scenes of all
25. Chance AP is a class's prevalence.

Why pairs: with the demo's ten classes alone, a held-out item's name has to be placed by a projection learnt from seven
vectors, which a probe found barely above chance; in a pair every word of a held-out name was seen in other pairs (the
paper trains on 925 NUS-WIDE tags and tests 81 unseen labels: many neighbours). The test pins the protocol with GloVe
vectors; ``benchmarks/bench_label_embeddings.py`` runs it over seeds with GloVe and with MiniLM.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn as nn

from labelgraph.data.synthetic import shape_mask
from labelgraph.evaluation.metrics import average_precision
from labelgraph.graph.label_graph import LabelGraph
from labelgraph.models import create_model

COLOURS = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 70, 230), "yellow": (230, 210, 40),
           "white": (235, 235, 235)}  # fmt: skip
SHAPES = ["circle", "square", "triangle", "star", "cross"]  # five of the demo's procedural shapes
PAIRS = [f"{colour} {shape}" for colour in COLOURS for shape in SHAPES]  # 25 classes, named in words
HELD_OUT = [f"{colour} {shape}" for colour, shape in zip(COLOURS, SHAPES, strict=True)]  # each colour, each shape once
SEEN = [name for name in PAIRS if name not in HELD_OUT]


def colour_shape_scenes(n: int, allowed: list[str], rng: np.random.Generator) -> tuple[torch.Tensor, np.ndarray]:
    """(n, 3, 64, 64) scenes of 2 x 2 cells, each holding a coloured demo shape with p 0.6; (n, 25) targets."""
    cell = 32
    images, targets = np.zeros((n, 3, 2 * cell, 2 * cell), np.float32), np.zeros((n, len(PAIRS)), np.int8)
    for i in range(n):
        canvas = np.full((2 * cell, 2 * cell, 3), rng.uniform(0, 40), np.float32)
        for k in np.flatnonzero(rng.random(4) < 0.6):
            name = allowed[rng.integers(len(allowed))]
            colour, shape = name.split()
            size = int(rng.integers(20, cell + 1))
            mask = shape_mask(shape, size, rng)[..., None]
            rgb = np.clip(np.array(COLOURS[colour]) + rng.normal(0, 15, 3), 0, 255)
            row, col = divmod(k, 2)
            y0 = row * cell + int(rng.integers(0, cell - size + 1))
            x0 = col * cell + int(rng.integers(0, cell - size + 1))
            region = canvas[y0 : y0 + size, x0 : x0 + size]
            region[:] = region * (1 - mask) + rgb * mask
            targets[i, PAIRS.index(name)] = 1
        images[i] = np.clip(canvas + rng.normal(0, 8, canvas.shape), 0, 255).transpose(2, 0, 1) / 255
    return torch.from_numpy(images), targets


def zero_shot_run(embed: Callable[[list[str]], torch.Tensor], seed: int, backbone: str, epochs: int = 10) -> dict:
    """Train on the seen pairs with ``embed(names)`` -> (C, D) queries, score all 25 names on new scenes.

    Returns:
        ``{"held_out_ap": (5,), "prevalence": (5,), "seen_ap": (20,), "cross": (5, 5)}`` -- ``cross[i, j]``: the AP
        of held-out name j's scores for pair i's images (the diagonal: each name ranks its own pair).
    """
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    train_x, train_t = colour_shape_scenes(2000, SEEN, rng)
    test_x, test_t = colour_shape_scenes(600, PAIRS, rng)
    seen = [PAIRS.index(name) for name in SEEN]
    graph = LabelGraph.from_targets(train_t[:, seen], SEEN)
    graph.embeddings = embed(SEEN)
    model = create_model("ml_decoder", num_classes=len(SEEN), label_graph=graph, backbone=backbone,
                         queries="embeddings", embed_dim=128, dim_feedforward=512)  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    y = torch.from_numpy(train_t[:, seen]).float()
    for _ in range(epochs):
        for idx in torch.randperm(len(y)).split(32):
            loss = nn.functional.binary_cross_entropy_with_logits(model(train_x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval().score_new_classes(embed(PAIRS))
    with torch.no_grad():
        scores = torch.cat([model(x) for x in test_x.split(100)]).numpy()
    held = [PAIRS.index(name) for name in HELD_OUT]
    per_class = average_precision(scores, test_t)
    cross = np.stack([average_precision(scores[:, held], np.repeat(test_t[:, [c]], len(held), 1)) for c in held])
    return {"held_out_ap": per_class[held], "prevalence": test_t[:, held].mean(axis=0), "seen_ap": per_class[seen],
            "cross": cross}  # fmt: skip
