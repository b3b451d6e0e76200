"""Evaluation of trained models on a split, clean and under corruptions (``labelgraph evaluate``).

Every model sees the same corrupted images: each image's corruption draws from a seed made of (seed, image index,
corruption, severity), and the images are decoded once per condition for all the models together. The summary per
model is its clean metrics, mAP per corruption and severity, and the **mean relative drop**
``mean over corruptions and severities of (clean mAP - corrupted mAP) / clean mAP`` in percent (lower is more robust).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from labelgraph.data.corruptions import CORRUPTIONS, SEVERITIES, corrupt
from labelgraph.data.dataset import collate_skipping_bad, eval_dataset
from labelgraph.data.label_table import LabelTable
from labelgraph.evaluation.calibration import calibration_error, reliability_bins
from labelgraph.evaluation.metrics import METRIC_PRESETS, evaluate


class CorruptedDataset(Dataset):
    """The eval view of each image of ``table`` (``eval_transform`` at ``image_size``) under ``corruption`` at
    ``severity`` (None: clean)."""

    def __init__(
        self,
        table: LabelTable,
        image_size: int,
        corruption: str | None = None,
        severity: int = 1,
        seed: int = 0,
        eval_transform: str = "resize",
    ) -> None:
        self.images = eval_dataset(table, image_size, eval_transform)
        self.corruption, self.severity, self.seed = corruption, severity, seed
        self.salt = 0 if corruption is None else list(CORRUPTIONS).index(corruption) + 1

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, target = self.images[index]  # uint8 (3, S, S)
        if self.corruption is not None:
            image = image.float() / 255  # the corruptions are defined on [0, 1]
            seed = ((self.seed * 1_000_003 + index) * 11 + self.salt) * 7 + self.severity
            image = corrupt(image, self.corruption, self.severity, seed)
        return image, target


@torch.no_grad()
def _scores(
    models: dict[str, torch.nn.Module],
    dataset: Dataset,
    batch_size: int,
    num_workers: int,
    device: torch.device,
    scalings: dict[str, Any],
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_skipping_bad)
    scores: dict[str, list[np.ndarray]] = {name: [] for name in models}
    targets = []
    for batch in loader:
        images, target = batch
        images = images.to(device)
        for name, model in models.items():
            t, b = (torch.as_tensor(v, dtype=torch.float32, device=device) for v in scalings.get(name, (1.0, 0.0)))
            scores[name].append(torch.sigmoid(model(images).float() / t + b).cpu().numpy())
        targets.append(target.numpy())
    return {k: np.concatenate(v) for k, v in scores.items()}, np.concatenate(targets)


def evaluate_models(
    models: dict[str, torch.nn.Module],
    table: LabelTable,
    image_size: int,
    corruptions: Sequence[str] = (),
    severities: Sequence[int] = SEVERITIES,
    metrics: str = "ml_gcn",
    seed: int = 0,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
    eval_transform: str = "resize",
    scalings: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Clean metrics and, for each corruption and severity, the mAP of every model (in eval mode, on ``device``), all
    of them fed ``eval_transform`` at ``image_size``. ``scalings``: a model's ``(temperature, bias)``: its probabilities
    are ``sigmoid(logit / temperature + bias)``, as ``labelgraph predict`` gives them.

    Returns:
        ``{model: {"clean": {metric: value, "AP": [...], "ECE": %, "ECE_per_class": [...], "reliability": bins},
        "corrupted": {corruption: {severity: mAP}}, "relative_drop": {corruption: mean % drop over severities},
        "mean_relative_drop": %}}``; ECE and the reliability bins are those of
        :mod:`labelgraph.evaluation.calibration` (15 equal-width bins, every known entry).
    """
    scalings = scalings or {}
    unknown = [c for c in corruptions if c not in CORRUPTIONS]
    if unknown:
        raise ValueError(f"unknown corruption(s) {unknown}; available: {', '.join(CORRUPTIONS)}")
    bad = [s for s in severities if s not in SEVERITIES]
    if bad:
        raise ValueError(f"severities must be in {SEVERITIES}, got {bad}")
    device = torch.device(device)
    models = {name: m.eval().to(device) for name, m in models.items()}
    options = dict(METRIC_PRESETS[metrics])
    clean = CorruptedDataset(table, image_size, eval_transform=eval_transform)
    scores, targets = _scores(models, clean, batch_size, num_workers, device, scalings)
    results: dict[str, dict[str, Any]] = {}
    for name in models:
        clean = evaluate(scores[name], targets, **options)
        clean["AP"] = [None if np.isnan(v) else float(v) for v in clean["AP"]]
        ece = calibration_error(scores[name], targets)
        clean["ECE"] = ece["overall"]
        clean["ECE_per_class"] = [None if np.isnan(v) else float(v) for v in ece["per_class"]]
        clean["reliability"] = {
            k: [None if np.isnan(v) else float(v) for v in b]
            for k, b in reliability_bins(scores[name], targets).items()
        }
        results[name] = {"clean": clean, "corrupted": {}}
    for corruption in corruptions:
        for severity in severities:
            dataset = CorruptedDataset(table, image_size, corruption, severity, seed, eval_transform)
            scores, targets = _scores(models, dataset, batch_size, num_workers, device, scalings)
            for name in models:
                mean_ap = evaluate(scores[name], targets, top_k=0, **options)["mAP"]
                results[name]["corrupted"].setdefault(corruption, {})[str(severity)] = mean_ap
            if progress:
                line = ", ".join(f"{n} {results[n]['corrupted'][corruption][str(severity)]:.1f}" for n in models)
                print(f"  {corruption} {severity}: {line}", flush=True)
    for result in results.values():
        clean_map = result["clean"]["mAP"]
        drops = {
            c: float(np.mean([100 * (clean_map - v) / clean_map for v in per_severity.values()]))
            for c, per_severity in result["corrupted"].items()
        }
        result["relative_drop"] = drops
        result["mean_relative_drop"] = float(np.mean(list(drops.values()))) if drops else None
    return results


def robustness_table(results: dict[str, dict[str, Any]]) -> str:
    """Markdown: clean mAP, mAP per corruption (mean over severities) and the mean relative drop, most robust first."""
    names = sorted(results, key=lambda n: (results[n]["mean_relative_drop"] or 0.0, -results[n]["clean"]["mAP"]))
    corruptions = list(next(iter(results.values()))["corrupted"]) if results else []
    header = ["model", "clean mAP", *corruptions, "mean relative drop (%)"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for name in names:
        r = results[name]
        cells = [f"{np.mean(list(r['corrupted'][c].values())):.2f}" for c in corruptions]
        drop = "—" if r["mean_relative_drop"] is None else f"{r['mean_relative_drop']:.1f}"
        lines.append(f"| {name} | {r['clean']['mAP']:.2f} | " + " | ".join(cells) + f" | {drop} |")
    return "\n".join(lines)


def severity_table(results: dict[str, dict[str, Any]], corruption: str) -> str:
    """Markdown: mAP of every model at each severity of one corruption."""
    severities = list(next(iter(results.values()))["corrupted"][corruption])
    lines = [
        f"| {corruption} | clean | " + " | ".join(severities) + " |",
        "|---|---:|" + "---:|" * len(severities),
    ]
    for name, r in results.items():
        cells = " | ".join(f"{r['corrupted'][corruption][s]:.2f}" for s in severities)
        lines.append(f"| {name} | {r['clean']['mAP']:.2f} | {cells} |")
    return "\n".join(lines)
