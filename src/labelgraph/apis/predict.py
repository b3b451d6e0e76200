"""Tag images with an exported model: ``labelgraph.load(MODEL_DIR).predict(paths)`` and ``labelgraph predict``.

Images are read the way training read them (EXIF orientation, grayscale/16-bit/CMYK/alpha converted), brought to the
input size by the eval transform the model records (squash resize, or a centre crop), and scored with sigmoid
probabilities -- of the logits scaled as ``labelgraph calibrate`` fitted them (``logit / temperature + bias``). A file
that cannot be read is reported in ``errors`` by path and the others are still predicted.

Decision rules (``threshold``): the model's stored thresholds (default), ``"calibrated"`` (the per-class ones, which
must exist), ``"recall"`` (the conformal threshold with a recall guarantee, which must exist), or one probability.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from labelgraph.apis.onnx import OnnxModel, choose_runtime
from labelgraph.data.dataset import stack_images
from labelgraph.data.formats.csv_format import parse_labels
from labelgraph.data.image_io import (
    DEFAULT_MAX_DECODED_BYTES,
    ImageLoadError,
    decode_image,
    pil_to_tensor,
    read_image,
)
from labelgraph.data.label_table import LabelTable
from labelgraph.data.transforms import decode_size, eval_transform
from labelgraph.errors import InvalidInputError
from labelgraph.evaluation.scoring import split_scores
from labelgraph.files import write_text
from labelgraph.models import ModelConfig, load_model
from labelgraph.models.hub_source import model_folder

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def expand_paths(items: Iterable[str | Path]) -> tuple[list[Path], list[dict[str, str]]]:
    """Files, folders (searched recursively for image files) and glob patterns -> sorted image paths.

    Returns the paths and an error entry for each item that matches nothing.
    """
    paths: list[Path] = []
    errors: list[dict[str, str]] = []
    for item in map(str, items):
        if Path(item).is_dir():
            found = sorted(p for p in Path(item).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                errors.append({"image": item, "error": "folder contains no image files"})
            paths += found
        elif Path(item).exists():
            paths.append(Path(item))
        elif any(c in item for c in "*?["):
            found = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
            if not found:
                errors.append({"image": item, "error": "pattern matches no file"})
            paths += found
        else:
            errors.append({"image": item, "error": "no such file or folder"})
    return paths, errors


class Predictor:
    """An exported model ready to tag images.

    Attributes:
        model: the network (eval mode).
        config: what the model carries (:class:`~labelgraph.models.ModelConfig`).
        classes: class names in output order.
        image_size: the side the model was trained at.
        thresholds: (C,) per-class decision thresholds stored with the model (0.5 unless calibrated).
        temperature, logit_bias: (C,) the probabilities are ``sigmoid(logit / temperature + logit_bias)`` (1 and 0:
            the network's own).
        recall_rule: the stored recall-guaranteed rule (``threshold``, ``recall``, ...), or None.
        transform: the eval transform the model records (uint8 (3, H, W) -> (3, S, S)).
        runtime: what computes the logits: ``torch``, or ``onnxruntime`` (the folder's ``model.onnx``, see
            :mod:`labelgraph.apis.onnx`); class maps and explanations always run the PyTorch model.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        config: ModelConfig,
        device: str | torch.device = "cpu",
        scorer: torch.nn.Module | None = None,
        runtime: str = "torch",
    ) -> None:
        if not config.image_size:
            raise InvalidInputError(f"{config.method}: the model does not record its input size; export it with one")
        self.model = model.eval().to(device)
        self.scorer = self.model if scorer is None else scorer  # what computes the logits (the same, or ONNX)
        self.runtime = runtime
        self.config = config
        self.device = torch.device(device)
        self.classes: list[str] = list(config.class_names)
        self.image_size: int = config.image_size
        self.thresholds = np.broadcast_to(np.asarray(config.thresholds, dtype=np.float64), (len(self.classes),)).copy()
        self.calibrated = config.calibrated
        self.temperature, self.logit_bias = (
            np.broadcast_to(np.asarray(value, dtype=np.float32), (len(self.classes),)).copy()
            for value in (config.temperature, config.logit_bias)
        )
        self.recall_rule = config.recall_rule
        # the eval preprocessing the model was validated with (squash resize, or SSGRL's centre crop)
        self.transform = eval_transform(self.image_size, config.eval_transform)
        self.decode_size = (decode_size(config.eval_transform, self.image_size),) * 2  # phone photos: DCT scaling
        self.max_decoded_bytes = DEFAULT_MAX_DECODED_BYTES  # an image whose decode would hold more is refused

    @classmethod
    def load(cls, model_dir: str | Path, device: str | torch.device = "cpu", runtime: str = "auto") -> Predictor:
        """An exported folder (or ``hf-hub:`` name); ``runtime``: ``auto``, ``onnx`` or ``torch``
        (:func:`labelgraph.apis.onnx.choose_runtime`)."""
        folder = model_folder(model_dir)
        model, config = load_model(folder)
        scorer, name = choose_runtime(folder if folder.is_dir() else None, model, runtime, device)
        return cls(model, config, device, scorer, name)

    def score_classes(self, class_names: list[str], embeddings: str) -> Predictor:
        """Zero-shot: score ``class_names`` from now on, each through a query made from its word vector
        (``embeddings``: a source of :func:`labelgraph.graph.embeddings_from_source`, the one the model was trained
        with). Only an ML-Decoder trained with ``queries="embeddings"`` can. The thresholds become the model's
        single one (calibrated per-class thresholds belong to the trained classes)."""
        from labelgraph.graph.embeddings import embeddings_from_source

        if not class_names:
            raise InvalidInputError("no class names to score")
        vectors, _ = embeddings_from_source(embeddings, class_names)
        self.model.score_new_classes(vectors)
        self.scorer, self.runtime = self.model, "torch"  # the ONNX graph has the trained classes built in
        stored = self.config.thresholds
        self.classes = list(class_names)
        self.thresholds = np.full(len(self.classes), 0.5 if isinstance(stored, list) else float(stored))
        self.calibrated = False
        global_scaling = not isinstance(self.config.temperature, list) and not isinstance(self.config.logit_bias, list)
        t, b = (self.config.temperature, self.config.logit_bias) if global_scaling else (1.0, 0.0)  # per class: theirs
        self.temperature = np.full(len(self.classes), float(t), dtype=np.float32)
        self.logit_bias = np.full(len(self.classes), float(b), dtype=np.float32)
        self.recall_rule = None
        return self

    def resolve_thresholds(self, threshold: float | str | None) -> np.ndarray:
        """None -> the stored thresholds; ``"calibrated"`` -> the stored per-class ones (must exist); ``"recall"`` ->
        the recall rule's threshold for every class (must exist); a number."""
        if threshold is None:
            return self.thresholds
        if threshold == "calibrated":
            if not self.calibrated:
                raise InvalidInputError("this model has no calibrated thresholds: run `labelgraph calibrate` first")
            return self.thresholds
        if threshold == "recall":
            if self.recall_rule is None:
                raise InvalidInputError("this model has no recall rule: run `labelgraph calibrate --recall 0.9` first")
            return np.full(len(self.classes), float(self.recall_rule["threshold"]))
        return np.full(len(self.classes), float(threshold))

    @torch.no_grad()
    def logits(self, images: torch.Tensor) -> np.ndarray:
        """(B, 3, H, W) uint8, or float in [0, 1] -> (B, C) the network's logits (before any scaling)."""
        return self.scorer(images.to(self.device)).float().cpu().numpy()

    @torch.no_grad()
    def scores(self, images: torch.Tensor, known: np.ndarray | None = None) -> np.ndarray:
        """(B, 3, H, W) uint8, or float in [0, 1] -> (B, C) probabilities: sigmoid(logits / temperature + bias).

        ``known`` (B, C) in {1, 0, -1}: the labels already known of each image. A method that conditions on them
        (:attr:`conditions_on_known`: C-Tran) scores the unknown ones given them (in PyTorch: the ONNX graph has every
        label unknown built in); every method returns the known entries as 1 / 0."""
        if known is not None and not (known >= 0).any():
            known = None
        probs = self.plain_or_conditioned_scores(images, known)
        return probs if known is None else np.where(known >= 0, known, probs).astype(probs.dtype)

    def plain_or_conditioned_scores(self, images: torch.Tensor, known: np.ndarray | None) -> np.ndarray:
        """:meth:`scores` before the known entries are set: conditioned on ``known`` where the method can."""
        if known is not None and self.conditions_on_known:
            logits = self.model.forward_known(images.to(self.device), torch.from_numpy(known).to(self.device)).float()
        elif isinstance(self.scorer, OnnxModel) and self.scorer.scaled_as(self.temperature, self.logit_bias):
            return torch.sigmoid(torch.from_numpy(self.scorer.scaled(images))).numpy()  # the graph scales as they do
        else:
            logits = self.scorer(images.to(self.device)).float()
        t, b = (torch.from_numpy(v).to(logits.device) for v in (self.temperature, self.logit_bias))
        return torch.sigmoid(logits / t + b).cpu().numpy()

    @property
    def conditions_on_known(self) -> bool:
        """Whether the method scores labels given the ones known (C-Tran), rather than only fixing them."""
        return self.model.head.provides("forward_known")

    @property
    def known_labels_use(self) -> str:
        """What the answers say was done with known labels: ``"conditioned"`` or ``"fixed"``."""
        return "conditioned" if self.conditions_on_known else "fixed"

    def known_rows(self, known: Sequence[Any] | np.ndarray | None, count: int) -> np.ndarray | None:
        """``predict``'s ``known`` -> (count, C) in {1, 0, -1}: an array, or one item per image -- None (nothing
        known), a labels field of the CSV format (``"cat|!dog|?*"``: cat present, dog absent, the rest unknown;
        without ``?*`` an unlisted class is absent) or a mapping ``{class: True/False}`` (unlisted: unknown)."""
        if known is None:
            return None
        if isinstance(known, np.ndarray):
            if known.shape != (count, len(self.classes)):
                raise InvalidInputError(f"known: shape {known.shape}, expected ({count}, {len(self.classes)})")
            return known.astype(np.int8)
        if len(known) != count:
            raise InvalidInputError(f"known: {len(known)} entries for {count} images")
        rows = np.full((count, len(self.classes)), -1, dtype=np.int8)
        for i, item in enumerate(known):
            if isinstance(item, str):
                rows[i] = parse_labels(item, self.classes, f"known labels of image {i}")
            elif isinstance(item, dict):
                unknown = sorted(set(item) - set(self.classes))
                if unknown:
                    raise InvalidInputError(f"known labels of image {i}: {unknown} are not classes of the model")
                for name, value in item.items():
                    rows[i, self.classes.index(name)] = int(bool(value))
            elif item is not None:
                raise InvalidInputError(f"known labels of image {i}: a labels string, a mapping or None")
        return rows

    def table_scores(self, table: LabelTable, batch_size: int = 32, logits: bool = False) -> np.ndarray:
        """(N, C) probabilities -- or, ``logits``, the network's logits -- of every image of ``table``, in its order,
        preprocessed as the model was validated (an unreadable image stops it, naming the file)."""
        score = self.logits if logits else self.scores
        return split_scores(score, self.transform, table, batch_size, self.decode_size[0])

    def read(self, item: str | Path | bytes | Image.Image, name: str = "<bytes>") -> torch.Tensor:
        """A path, encoded bytes (an upload, errors naming it ``name``) or a PIL image -> uint8 (3, H, W) as decoded
        (JPEGs at a reduced DCT scale when they are at least twice the input size)."""
        if isinstance(item, Image.Image):
            return pil_to_tensor(item.convert("RGB"))
        if isinstance(item, bytes | bytearray):
            return decode_image(bytes(item), self.decode_size, name, self.max_decoded_bytes)
        return read_image(item, self.decode_size, self.max_decoded_bytes)

    def tag(self, probs: np.ndarray, thresholds: np.ndarray, top_k: int | None) -> dict[str, Any]:
        """(C,) probabilities -> ``{"scores": {class: p}, "labels": [...]}``: the classes at or above their threshold,
        most probable first, at most ``top_k``."""
        order = np.argsort(-probs, kind="stable")
        labels = [self.classes[c] for c in order if probs[c] >= thresholds[c]][:top_k]
        scores = {c: round(float(p), 6) for c, p in zip(self.classes, probs, strict=True)}
        return {"scores": scores, "labels": labels}

    def predict(
        self,
        images: Sequence[str | Path | Image.Image],
        threshold: float | str | None = None,
        top_k: int | None = None,
        batch_size: int = 16,
        progress: bool = False,
        known: Sequence[Any] | np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Score images (paths, or PIL images) and apply the thresholds; ``known``: the labels already known of each
        image (:meth:`known_rows`), which C-Tran conditions on and every other method returns fixed.

        Returns:
            ``{"classes": [...], "predictions": [{"image", "scores": {class: p}, "labels": [...]}],
            "errors": [{"image", "error"}], "runtime": "torch" | "onnxruntime"}``; ``labels`` are the classes at or
            above their threshold, sorted by probability, at most ``top_k`` of them. With ``known``: each prediction
            with known labels has ``"known": {class: 1 | 0}``, and ``"known_labels"`` says ``"conditioned"`` (the
            method scored the others given them) or ``"fixed"`` (its plain scores, the known entries set).
        """
        thresholds = self.resolve_thresholds(threshold)
        known_rows = self.known_rows(known, len(images))
        predictions: list[dict[str, Any]] = []
        errors: list[dict[str, str]] = []
        batches = range(0, len(images), batch_size)
        if progress and len(images) > batch_size and sys.stderr.isatty():  # no carriage returns in a log file
            from tqdm import tqdm

            batches = tqdm(batches, desc="predict", unit="batch")
        for start in batches:
            names, tensors, rows = [], [], []
            for offset, item in enumerate(images[start : start + batch_size]):
                name = str(item) if not isinstance(item, Image.Image) else f"<image {start + offset}>"
                try:
                    tensors.append(self.transform(self.read(item)))
                except ImageLoadError as err:
                    errors.append({"image": name, "error": str(err)})
                    continue
                names.append(name)
                rows.append(start + offset)
            if not tensors:
                continue
            batch_known = None if known_rows is None else known_rows[rows]
            for k, (name, probs) in enumerate(zip(names, self.scores(stack_images(tensors), batch_known), strict=True)):
                predictions.append({"image": name, **self.tag(probs, thresholds, top_k)})
                if batch_known is not None and (batch_known[k] >= 0).any():
                    predictions[-1]["known"] = self.known_dict(batch_known[k])
        result = {"classes": self.classes, "predictions": predictions, "errors": errors, "runtime": self.runtime}
        if known_rows is not None:
            result["known_labels"] = self.known_labels_use
        return result

    def known_dict(self, row: np.ndarray) -> dict[str, int]:
        """(C,) in {1, 0, -1} -> ``{class: 1 or 0}`` of the known entries."""
        return {c: int(v) for c, v in zip(self.classes, row, strict=True) if v >= 0}


def load(model_dir: str | Path, device: str | torch.device = "cpu", runtime: str = "auto") -> Predictor:
    """Load an exported model folder as a :class:`Predictor` (``labelgraph.load``); ``runtime``: ``auto`` (ONNX
    Runtime where the folder has a current ``model.onnx``), ``onnx`` or ``torch``."""
    return Predictor.load(model_dir, device, runtime)


def write_predictions(result: dict[str, Any], out: str | Path, format: str | None = None) -> None:
    """``.json``: the whole result; ``.csv``: one row per image (image, labels, one column per class); ``format``
    (``json`` | ``csv``) instead of the suffix.

    Written whole or not at all (a temporary file renamed into place). File names that are not UTF-8 (Python holds
    their bytes as surrogates) are written back as the same bytes in the CSV, and as ``\\udcXX`` escapes in JSON."""
    out = Path(out)
    format = format or out.suffix.lower().lstrip(".")
    if format == "json":
        write_text(out, json.dumps(result, indent=1))
    elif format == "csv":
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer)
        writer.writerow(["image", "labels", *result["classes"]])
        for p in result["predictions"]:
            writer.writerow([p["image"], "|".join(p["labels"]), *(p["scores"][c] for c in result["classes"])])
        write_text(out, buffer.getvalue(), errors="surrogateescape")
    else:
        raise InvalidInputError(f"{out}: the output must end in .json or .csv (or give --format)")
