"""``LabelGraph``: the label statistics a graph method is built from, computed from the train split only."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from labelgraph.errors import InvalidInputError
from labelgraph.files import atomic_path
from labelgraph.graph.knowledge import KnowledgeGraph

#: classes a dataset or a model may have. Open Images' 9,605 fit; past this the C x C label graph (1.6 GB at 20,000
#: classes in float32) and the N x C targets no longer fit an ordinary machine, so the count is refused before anything
#: of that size is allocated.
MAX_CLASSES = 20_000


def check_class_count(count: int, source: object) -> None:
    """Refuse (:class:`InvalidInputError`, naming ``source``) more than :data:`MAX_CLASSES` classes."""
    if count > MAX_CLASSES:
        raise InvalidInputError(
            f"{source}: {count} classes; at most {MAX_CLASSES} are supported (a label graph over {count} classes "
            f"would take {count * count * 4 / 2**30:.0f} GB)"
        )


@dataclass
class LabelGraph:
    """Class names, per-class image counts, pairwise co-occurrence and (optionally) label embeddings.

    Attributes:
        class_names: the C class names, in the dataset's order.
        counts: (C,) number of train images in which each class is present.
        cooccurrence: (C, C) number of train images in which both classes are present; symmetric, zero diagonal
            (the convention of ML-GCN's ``adj`` files; the diagonal is ``counts``).
        num_images: number of train images the statistics were computed on.
        embeddings: optional (C, D) label embeddings (word vectors, image-based, one-hot).
        embedding_source: what produced ``embeddings`` (e.g. ``"glove.840B.300d"``).
        knowledge: optional concept graph with more nodes than classes (GGNN classifier).
        metadata: free-form strings recorded with the graph (how it was built).
        known_pairs: (C, C) number of train images in which class i is present and class j is known (present or
            absent), for splits with unknown entries; None when every entry is known (then it is ``counts[i]``).

    Incomplete labels: a co-occurrence statistic is only taken over the images where both of its entries are known,
    so ``P(j | i) = cooccurrence[i, j] / known_pairs[i, j]`` -- an unknown entry is never read as absent. A pair that
    is never known together (every pair, with single-positive labels) has no estimate; its ``P(j | i)`` then comes
    from the label embeddings, ``max(0, cos(e_i, e_j))`` (zero without embeddings): :meth:`conditional_probability`,
    stated by :meth:`pair_note`.
    """

    class_names: list[str]
    counts: torch.Tensor
    cooccurrence: torch.Tensor
    num_images: int
    embeddings: torch.Tensor | None = None
    embedding_source: str | None = None
    knowledge: KnowledgeGraph | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    known_pairs: torch.Tensor | None = None

    def __post_init__(self) -> None:
        c = len(self.class_names)
        if self.counts.shape != (c,) or self.cooccurrence.shape != (c, c):
            raise ValueError(
                f"LabelGraph with {c} classes needs counts ({c},) and cooccurrence ({c}, {c}); "
                f"got {tuple(self.counts.shape)} and {tuple(self.cooccurrence.shape)}"
            )
        if self.known_pairs is not None and self.known_pairs.shape != (c, c):
            raise ValueError(f"known_pairs has shape {tuple(self.known_pairs.shape)} for {c} classes")
        if self.embeddings is not None and self.embeddings.shape[0] != c:
            raise ValueError(f"embeddings have {self.embeddings.shape[0]} rows for {c} classes")
        if self.knowledge is not None and len(self.knowledge.class_nodes) != c:
            raise ValueError(f"knowledge graph maps {len(self.knowledge.class_nodes)} classes, expected {c}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @classmethod
    def from_targets(cls, targets: np.ndarray | torch.Tensor, class_names: list[str]) -> LabelGraph:
        """Count classes and pairs over a target matrix (N, C) in {1, 0, -1}; only ``1`` counts as present, and with
        unknown (-1) entries ``known_pairs`` counts where each pair could be observed."""
        targets = np.asarray(targets)
        present = torch.as_tensor(targets == 1, dtype=torch.float64)  # (N, C)
        if present.shape[1] != len(class_names):
            raise ValueError(f"targets have {present.shape[1]} columns for {len(class_names)} class names")
        cooc = present.T @ present  # (C, C), diagonal = counts
        counts = cooc.diagonal().clone()
        cooc.fill_diagonal_(0)
        known_pairs = None
        if (targets < 0).any():
            known_pairs = (present.T @ torch.as_tensor(targets >= 0, dtype=torch.float64)).float()  # (C, C)
        return cls(
            list(class_names), counts.float(), cooc.float(), num_images=int(present.shape[0]), known_pairs=known_pairs
        )

    def conditional_probability(self) -> torch.Tensor:
        """``P[i, j] = P(j | i)`` over the images where both entries are known; pairs never known together take the
        embedding prior (see the class docstring); rows of classes never present are zero.

        Shapes:
            -> (C, C).
        """
        cooc, counts = self.cooccurrence.double(), self.counts.double()
        seen = counts[:, None].expand_as(cooc) if self.known_pairs is None else self.known_pairs.double()
        prob = torch.where(seen > 0, cooc / seen.clamp_min(1), torch.zeros_like(cooc))
        unobserved = self.unobserved_pairs_mask()
        if unobserved.any():
            prob = torch.where(unobserved, self.embedding_prior().double(), prob)
        return prob.float()

    def unobserved_pairs_mask(self) -> torch.Tensor:
        """(C, C) bool: pairs (i != j) of present classes whose co-occurrence was never observable."""
        if self.known_pairs is None:
            return torch.zeros(self.num_classes, self.num_classes, dtype=torch.bool)
        mask = (self.known_pairs == 0) & (self.counts[:, None] > 0)
        return mask.fill_diagonal_(False)

    def embedding_prior(self) -> torch.Tensor:
        """``max(0, cos(e_i, e_j))`` of the label embeddings (zeros without embeddings), zero diagonal.

        Shapes:
            -> (C, C).
        """
        if self.embeddings is None:
            return torch.zeros(self.num_classes, self.num_classes)
        e = torch.nn.functional.normalize(self.embeddings.double(), dim=1)
        return (e @ e.T).clamp_min(0).fill_diagonal_(0).float()

    def pair_note(self) -> str | None:
        """One line saying where the graph's pair statistics come from when the labels are incomplete; None else."""
        if self.known_pairs is None:
            return None
        note = "label graph: incomplete labels, co-occurrence counted over known pairs only"
        unobserved, total = int(self.unobserved_pairs_mask().sum()), self.num_classes * (self.num_classes - 1)
        if unobserved == 0:
            return note
        if self.embeddings is None:
            return f"{note}; {unobserved} of {total} class pairs were never known together: no edge between them"
        return (
            f"{note}; {unobserved} of {total} class pairs were never known together: their P(j | i) is "
            f"max(0, cosine similarity) of the label embeddings ({self.embedding_source})"
        )

    def to_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """The graph as tensors + string metadata (what the safetensors file and checkpoints store)."""
        tensors = {"counts": self.counts.contiguous(), "cooccurrence": self.cooccurrence.contiguous()}
        if self.embeddings is not None:
            tensors["embeddings"] = self.embeddings.float().contiguous()
        if self.knowledge is not None:
            tensors["knowledge_adjacency"] = self.knowledge.adjacency.float().contiguous()
        if self.known_pairs is not None:
            tensors["known_pairs"] = self.known_pairs.float().contiguous()
        meta = {
            "class_names": json.dumps(self.class_names),
            "num_images": str(self.num_images),
            "embedding_source": self.embedding_source or "",
            "extra": json.dumps(self.metadata),
        }
        if self.knowledge is not None:
            meta["knowledge_nodes"] = json.dumps(self.knowledge.node_names)
            meta["knowledge_class_nodes"] = json.dumps(self.knowledge.class_nodes)
        return tensors, meta

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> LabelGraph:
        """Inverse of ``to_tensors`` (raises ``KeyError``/``ValueError`` on incomplete input)."""
        knowledge = None
        if "knowledge_adjacency" in tensors:
            knowledge = KnowledgeGraph(
                json.loads(meta["knowledge_nodes"]),
                tensors["knowledge_adjacency"],
                json.loads(meta["knowledge_class_nodes"]),
            )
        return cls(
            class_names=json.loads(meta["class_names"]),
            counts=tensors["counts"],
            cooccurrence=tensors["cooccurrence"],
            num_images=int(meta["num_images"]),
            embeddings=tensors.get("embeddings"),
            embedding_source=meta.get("embedding_source") or None,
            knowledge=knowledge,
            metadata=json.loads(meta.get("extra", "{}")),
            known_pairs=tensors.get("known_pairs"),
        )

    def save(self, path: str | Path) -> None:
        """Write to a safetensors file (tensors + JSON metadata); no pickle."""
        tensors, meta = self.to_tensors()
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> LabelGraph:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"label graph file {str(path)!r} does not exist")
        try:
            tensors = load_file(str(path))
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            return cls.from_tensors(tensors, meta)
        except (SafetensorError, KeyError, json.JSONDecodeError, ValueError) as err:
            raise ValueError(f"{path}: not a labelgraph graph file ({err})") from err


def require_embeddings(method: str, label_graph: LabelGraph | None, num_classes: int) -> LabelGraph:
    """``label_graph`` when it has label embeddings for ``num_classes`` classes; else a message naming ``method`` and
    the remedy (the methods whose classifiers or queries are built from label embeddings call it)."""
    if label_graph is None or label_graph.embeddings is None:
        raise ValueError(
            f"{method} builds its classifiers from label embeddings, and the label graph has none: build a graph "
            "with `labelgraph data graph --embeddings ...` or set the data module's `embeddings` option"
        )
    if label_graph.num_classes != num_classes:
        raise ValueError(f"the label graph has {label_graph.num_classes} classes, the model {num_classes}")
    return label_graph
