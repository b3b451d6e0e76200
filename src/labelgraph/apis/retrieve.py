"""Image retrieval with a trained model's features (LGLM's retrieval experiment; ``labelgraph retrieve``).

An image is described by the globally average-pooled last backbone stage, L2-normalised; neighbours are ranked by
cosine similarity. Unreadable index images are reported and left out.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from labelgraph.apis.predict import Predictor  # noqa: E402
from labelgraph.data.dataset import stack_images  # noqa: E402
from labelgraph.data.image_io import ImageLoadError, load_image, read_image  # noqa: E402
from labelgraph.files import literal_text, save_figure


@torch.no_grad()
def embed(predictor: Predictor, paths: list[Path], batch_size: int = 32) -> tuple[torch.Tensor, list[Path], list]:
    """(N, d) unit-norm features of the readable images, their paths, and the errors of the others."""
    feats, kept, errors = [], [], []
    for start in range(0, len(paths), batch_size):
        tensors = []
        for path in paths[start : start + batch_size]:
            try:
                tensors.append(predictor.transform(read_image(path, predictor.decode_size)))
                kept.append(path)
            except ImageLoadError as err:
                errors.append({"image": str(path), "error": str(err)})
        if tensors:
            maps = predictor.model.features(stack_images(tensors).to(predictor.device))[-1]
            feats.append(F.normalize(maps.mean(dim=(2, 3)).float(), dim=1).cpu())
    return (torch.cat(feats) if feats else torch.zeros(0, 1)), kept, errors


def nearest(query: torch.Tensor, index: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities and indices of the ``k`` nearest index rows to each query row (both unit-norm)."""
    sims = query @ index.T  # (Q, N)
    top = sims.topk(min(k, index.shape[0]), dim=1)
    return top.values, top.indices


def plot_results(query: Path, hits: list[tuple[Path, float]], path: str | Path) -> None:
    """The query and its neighbours in a row, with their similarities."""
    fig, axes = plt.subplots(1, len(hits) + 1, figsize=(2.2 * (len(hits) + 1), 2.6))
    axes[0].imshow(load_image(query))
    axes[0].set_title("query", fontsize=9)
    for ax, (hit, sim) in zip(axes[1:], hits, strict=True):
        ax.imshow(load_image(hit))
        ax.set_title(f"{hit.name}\n{sim:.3f}", fontsize=7)
    for ax in axes:
        ax.axis("off")
    literal_text(fig).tight_layout()
    save_figure(fig, path)
