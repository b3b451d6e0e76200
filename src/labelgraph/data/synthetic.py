"""Synthetic multi-label scenes with real label structure, written to disk in the custom CSV format.

Each image is a grid of cells. A scene first draws a **context** (an outfit type, a shape family); the context
decides which classes are likely, so labels co-occur the way objects do in photographs. Then every item may be
degraded -- drawn **small**, **faint**, or **occluded** by a patch -- so that recognising it alone is hard and
the rest of the scene helps. A few items come from outside the context (distractors), so context is a prior,
not a rule. Everything is a deterministic function of the seed.

Two sources of items:

- ``fashion``: Fashion-MNIST photographs (28 x 28 grayscale, tinted). Its tops are famously confusable (T-shirt,
  shirt, pullover, coat) while the footwear and the rest of the outfit tell them apart. Train scenes use items
  of Fashion-MNIST's train set, val/test scenes items of its test set. Read from the Debian package
  ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``) or a folder holding the four ``*-ubyte.gz``
  files (``$LABELGRAPH_FASHION_MNIST``).
- ``shapes``: procedural coloured shapes (circle/ring, square/diamond, hexagon/circle are confusable when small
  or faint); needs nothing installed.

Occluded items in the train split are marked unknown (``?name``) with probability ``unknown_rate``, so the
unknown-label path of the pipeline is exercised.
"""

from __future__ import annotations

import gzip
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from labelgraph.data.formats import write_csv
from labelgraph.data.label_table import LabelTable
from labelgraph.data.split_stats import split_statistics
from labelgraph.files import write_text

FASHION_DIRS = ("/usr/share/datasets/fashion-mnist",)
FASHION_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
# Outfit contexts: class -> probability of appearing in a scene of that context.
FASHION_CONTEXTS = {
    "winter": {"coat": 0.85, "pullover": 0.55, "trouser": 0.6, "ankle_boot": 0.85, "bag": 0.3},
    "summer": {"t-shirt": 0.8, "dress": 0.55, "sandal": 0.85, "bag": 0.4},
    "office": {"shirt": 0.85, "trouser": 0.8, "bag": 0.6},
    "sport": {"t-shirt": 0.7, "pullover": 0.25, "trouser": 0.5, "sneaker": 0.9},
}
SHAPE_CLASSES = ["circle", "ring", "square", "diamond", "triangle", "hexagon", "star", "cross", "bar", "crescent"]
SHAPE_CONTEXTS = {
    "round": {"circle": 0.8, "ring": 0.6, "crescent": 0.5, "star": 0.2},
    "angular": {"square": 0.8, "diamond": 0.6, "cross": 0.5, "bar": 0.3},
    "pointed": {"triangle": 0.8, "star": 0.6, "hexagon": 0.5},
    "mixed": {"hexagon": 0.5, "circle": 0.4, "cross": 0.5, "bar": 0.5},
}
SPLIT_SIZES = {"train": 2000, "val": 500, "test": 500}


@dataclass
class SceneConfig:
    grid: int = 3  # cells per side
    cell: int = 32  # cell side in pixels (image side = grid * cell)
    p_small: float = 0.2
    p_faint: float = 0.2
    p_occluded: float = 0.2
    p_distractor: float = 0.15
    noise: float = 8.0  # std of the Gaussian pixel noise (0-255 scale)
    unknown_rate: float = 0.5  # train split: probability that an occluded item is marked unknown


def find_fashion_mnist(root: str | Path | None = None) -> Path | None:
    """The folder with Fashion-MNIST's ``*-ubyte.gz`` files, or None."""
    candidates = [root, os.environ.get("LABELGRAPH_FASHION_MNIST"), *FASHION_DIRS]
    for c in candidates:
        if c and (Path(c) / "train-images-idx3-ubyte.gz").is_file():
            return Path(c)
    return None


def resolve_kind(kind: str, fashion_root: str | Path | None) -> tuple[str, Path | None]:
    """``(fashion | shapes, Fashion-MNIST's folder or None)`` for a dataset kind (``auto``: fashion when found)."""
    folder = find_fashion_mnist(fashion_root)
    if kind == "auto":
        kind = "fashion" if folder is not None else "shapes"
    if kind not in ("fashion", "shapes"):
        raise ValueError(f"unknown synthetic dataset {kind!r}; use fashion, shapes or auto")
    if kind == "fashion" and folder is None:
        raise FileNotFoundError(
            "Fashion-MNIST not found: install the Debian package dataset-fashion-mnist, or point "
            "$LABELGRAPH_FASHION_MNIST at a folder with its four *-ubyte.gz files (or use --data shapes)"
        )
    return kind, folder


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


class FashionItems:
    """Fashion-MNIST items by class, from the train set (``train``) or the test set (val/test scenes)."""

    def __init__(self, folder: Path, train: bool) -> None:
        prefix = "train" if train else "t10k"
        images = _read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")  # (N, 28, 28)
        labels = _read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")  # (N,)
        self.by_class = [images[labels == c] for c in range(10)]

    def draw(self, cls: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """An RGB tile (size, size, 3) and its mask in [0, 1]."""
        pool = self.by_class[cls]
        gray = pool[rng.integers(len(pool))]
        tile = np.asarray(Image.fromarray(gray).resize((size, size), Image.BILINEAR), dtype=np.float32) / 255
        tint = rng.uniform(0.55, 1.0, size=3)
        return tile[..., None] * tint * 255, tile


def _polygon(c: float, radius: float, rot: float, n: int, phase: float = 0.0) -> list[tuple[float, float]]:
    """The ``n`` corners of a regular polygon centred at ``(c, c)``, rotated by ``rot + phase``."""
    angles = [rot + phase + 2 * math.pi * k / n for k in range(n)]
    return [(c + radius * math.cos(a), c + radius * math.sin(a)) for a in angles]


def _bar(c: float, r: float, angle: float, half_width: float) -> list[tuple[float, float]]:
    """A rectangle through the centre: length 2r along ``angle``, width 2 * half_width."""
    dx, dy = r * math.cos(angle), r * math.sin(angle)
    px, py = -half_width * math.sin(angle), half_width * math.cos(angle)
    return [
        (c - dx - px, c - dy - py),
        (c + dx - px, c + dy - py),
        (c + dx + px, c + dy + py),
        (c - dx + px, c - dy + py),
    ]


def _disc(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fill: int) -> None:
    d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)


def _draw_ring(d: ImageDraw.ImageDraw, c: float, r: float, rot: float) -> None:
    _disc(d, c, c, r, 255)
    _disc(d, c, c, 0.55 * r, 0)


def _draw_crescent(d: ImageDraw.ImageDraw, c: float, r: float, rot: float) -> None:
    _disc(d, c, c, r, 255)
    off = 0.45 * r
    _disc(d, c + off * math.cos(rot), c + off * math.sin(rot), r, 0)


def _draw_diamond(d: ImageDraw.ImageDraw, c: float, r: float, rot: float) -> None:
    pts = _polygon(c, r, rot, 4)
    d.polygon([(c + 0.6 * (x - c), y) if k % 2 == 0 else (x, y) for k, (x, y) in enumerate(pts)], fill=255)  # rhombus


def _draw_star(d: ImageDraw.ImageDraw, c: float, r: float, rot: float) -> None:
    outer, inner = _polygon(c, r, rot, 5), _polygon(c, 0.45 * r, rot, 5, math.pi / 5)
    d.polygon([p for pair in zip(outer, inner, strict=True) for p in pair], fill=255)


def _draw_cross(d: ImageDraw.ImageDraw, c: float, r: float, rot: float) -> None:
    for angle in (rot, rot + math.pi / 2):
        d.polygon(_bar(c, r, angle, 0.32 * r), fill=255)


# name -> draw(canvas, centre, radius, rotation): each fills its shape with 255 on a black canvas
SHAPE_DRAWERS = {
    "circle": lambda d, c, r, rot: _disc(d, c, c, r, 255),
    "ring": _draw_ring,
    "crescent": _draw_crescent,
    "square": lambda d, c, r, rot: d.polygon(_polygon(c, r, rot, 4, math.pi / 4), fill=255),
    "diamond": _draw_diamond,
    "triangle": lambda d, c, r, rot: d.polygon(_polygon(c, r, rot, 3), fill=255),
    "hexagon": lambda d, c, r, rot: d.polygon(_polygon(c, r, rot, 6), fill=255),
    "star": _draw_star,
    "cross": _draw_cross,
    "bar": lambda d, c, r, rot: d.polygon(_bar(c, r, rot, 0.28 * r), fill=255),
}


def shape_mask(name: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Mask (size, size) in [0, 1] of a randomly rotated shape."""
    if name not in SHAPE_DRAWERS:
        raise ValueError(f"unknown shape {name!r}")
    scale = 4  # draw large and downsample: anti-aliased edges
    s = size * scale
    img = Image.new("L", (s, s), 0)
    c, r = s / 2, s * rng.uniform(0.36, 0.46)
    rot = rng.uniform(0, 2 * math.pi)
    SHAPE_DRAWERS[name](ImageDraw.Draw(img), c, r, rot)
    return np.asarray(img.resize((size, size), Image.BILINEAR), dtype=np.float32) / 255


class ShapeItems:
    def draw(self, cls: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        mask = shape_mask(SHAPE_CLASSES[cls], size, rng)
        colour = rng.uniform(60, 255, size=3)
        return mask[..., None] * colour, mask


def compose_scene(
    items,
    contexts: dict[str, dict[str, float]],
    class_names: list[str],
    cfg: SceneConfig,
    rng: np.random.Generator,
    mark_unknown: bool,
) -> tuple[np.ndarray, np.ndarray, str]:
    """One scene: an (S, S, 3) uint8 image, its (C,) int8 target row and its context name."""
    context = list(contexts)[rng.integers(len(contexts))]
    probs = contexts[context]
    present = [class_names.index(n) for n, p in probs.items() if rng.random() < p]
    if not present:  # a scene shows at least one item of its context
        names = list(probs)
        present = [class_names.index(names[rng.integers(len(names))])]
    if rng.random() < cfg.p_distractor:
        others = [i for i in range(len(class_names)) if class_names[i] not in probs]
        present.append(others[rng.integers(len(others))])
    present = present[: cfg.grid * cfg.grid]
    side = cfg.grid * cfg.cell
    background = rng.uniform(0, 50)
    canvas = np.full((side, side, 3), background, dtype=np.float32)
    target = np.zeros(len(class_names), dtype=np.int8)
    cells = rng.permutation(cfg.grid * cfg.grid)[: len(present)]
    for cls, cell in zip(present, cells, strict=True):
        size = cfg.cell
        if rng.random() < cfg.p_small:
            size = max(8, cfg.cell // 2)
        rgb, mask = items.draw(cls, size, rng)
        if rng.random() < cfg.p_faint:
            rgb, mask = rgb * 0.35, mask * 0.35
        y0 = (cell // cfg.grid) * cfg.cell + int(rng.integers(0, cfg.cell - size + 1))
        x0 = (cell % cfg.grid) * cfg.cell + int(rng.integers(0, cfg.cell - size + 1))
        region = canvas[y0 : y0 + size, x0 : x0 + size]
        region[:] = region * (1 - mask[..., None]) + rgb * mask[..., None]
        target[cls] = 1
        if rng.random() < cfg.p_occluded:  # a grey patch over 40-70% of the item
            ph, pw = (int(size * rng.uniform(0.4, 0.7)) for _ in range(2))
            py, px = y0 + int(rng.integers(0, size - ph + 1)), x0 + int(rng.integers(0, size - pw + 1))
            canvas[py : py + ph, px : px + pw] = rng.uniform(40, 200)
            if mark_unknown and rng.random() < cfg.unknown_rate:
                target[cls] = -1
    canvas += rng.normal(0, cfg.noise, canvas.shape)
    return np.clip(canvas, 0, 255).astype(np.uint8), target, context


def generate_dataset(
    out: str | Path,
    kind: str = "auto",
    seed: int = 0,
    sizes: dict[str, int] | None = None,
    config: SceneConfig | None = None,
    fashion_root: str | Path | None = None,
) -> dict:
    """Write ``out/{train,val,test}.csv``, ``out/images/<split>/*.png``, ``out/classes.txt`` and ``out/dataset.json``.

    Args:
        kind: ``fashion``, ``shapes`` or ``auto`` (fashion when Fashion-MNIST is found, shapes otherwise).
        seed: everything is a deterministic function of it.
        sizes: images per split (default 2000 / 500 / 500).

    Returns:
        the dataset description written to ``dataset.json``.
    """
    out = Path(out)
    sizes = dict(SPLIT_SIZES if sizes is None else sizes)
    cfg = config or SceneConfig()
    kind, folder = resolve_kind(kind, fashion_root)
    if kind == "fashion":
        class_names, contexts = FASHION_CLASSES, FASHION_CONTEXTS
        cfg.cell = 28 if config is None else cfg.cell
    else:
        class_names, contexts = SHAPE_CLASSES, SHAPE_CONTEXTS
    description = {
        "kind": kind,
        "seed": seed,
        "sizes": sizes,
        "classes": class_names,
        "contexts": contexts,
        "scene": cfg.__dict__,
        "image_size": cfg.grid * cfg.cell,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "classes.txt", "\n".join(class_names) + "\n")
    for split_index, (split, n) in enumerate(sizes.items()):
        items = FashionItems(folder, train=split == "train") if kind == "fashion" else ShapeItems()
        rng = np.random.default_rng([seed, split_index])
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        paths, rows = [], []
        for i in range(n):
            image, target, _ = compose_scene(items, contexts, class_names, cfg, rng, mark_unknown=split == "train")
            rel = f"images/{split}/{i:05d}.png"
            Image.fromarray(image).save(out / rel, optimize=False, compress_level=1)
            paths.append(rel)
            rows.append(target)
        table = LabelTable(paths, class_names, np.stack(rows) if rows else np.zeros((0, len(class_names))), root=out)
        write_csv(table, out / f"{split}.csv")
        description[split] = split_statistics(table)
    write_text(out / "dataset.json", json.dumps(description, indent=2))  # last: its presence marks a complete dataset
    return description


def single_item_images(
    kind: str, n: int, seed: int = 0, size: int = 48, fashion_root: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Isolated items for single-label pretraining (the demo's stand-in for ImageNet pretraining).

    Each image shows one item at a random scale and position, sometimes faint, with noise -- a different task from
    the multi-label scenes (no context, one label), drawn from the training items only.

    Returns:
        images (n, size, size, 3) uint8, labels (n,) int64, class names.
    """
    kind, folder = resolve_kind(kind, fashion_root)
    if kind == "fashion":
        items, names = FashionItems(folder, train=True), FASHION_CLASSES
    else:
        items, names = ShapeItems(), SHAPE_CLASSES
    rng = np.random.default_rng([seed, 99])
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    labels = rng.integers(len(names), size=n)
    for i, cls in enumerate(labels):
        item = int(rng.integers(size // 3, size + 1))
        rgb, mask = items.draw(int(cls), item, rng)
        if rng.random() < 0.2:
            rgb, mask = rgb * 0.35, mask * 0.35
        canvas = np.full((size, size, 3), rng.uniform(0, 50), dtype=np.float32)
        y0, x0 = (int(rng.integers(0, size - item + 1)) for _ in range(2))
        region = canvas[y0 : y0 + item, x0 : x0 + item]
        region[:] = region * (1 - mask[..., None]) + rgb * mask[..., None]
        canvas += rng.normal(0, 8.0, canvas.shape)
        images[i] = np.clip(canvas, 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64), list(names)
