"""Knowledge graphs with more nodes than classes, for the GGNN classifier.

Marino et al. ("The More You Know", CVPR 2017, https://arxiv.org/abs/1612.04844) propagate over a graph of
object concepts mined from Visual Genome relationships, of which the dataset's classes are a subset. The
graphMLC re-implementation builds it from the 300 most frequent object names (the classes forced in) and the
100 most frequent predicates, averaging over predicates into one weighted edge type.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

#: PASCAL VOC class names -> Visual Genome object names.
VOC_TO_VG = {
    "aeroplane": "airplane",
    "diningtable": "table",
    "motorbike": "motorcycle",
    "pottedplant": "plant",
    "sofa": "couch",
    "tvmonitor": "tv",
}


@dataclass
class KnowledgeGraph:
    """A directed weighted graph over K >= C concepts.

    Attributes:
        node_names: the K concept names.
        adjacency: (K, K) edge weights, ``adjacency[s, o]`` for ``s -> o`` (subject -> object).
        class_nodes: for each of the C classes, the index of its node.
    """

    node_names: list[str]
    adjacency: torch.Tensor
    class_nodes: list[int]

    def __post_init__(self) -> None:
        k = len(self.node_names)
        if self.adjacency.shape != (k, k):
            raise ValueError(
                f"knowledge graph with {k} nodes needs a ({k}, {k}) adjacency, got {tuple(self.adjacency.shape)}"
            )
        bad = [i for i in self.class_nodes if not 0 <= i < k]
        if bad:
            raise ValueError(f"class node indices {bad} are outside the {k} nodes")


def _name(entity: dict) -> str | None:
    name = entity.get("name") or (entity.get("names") or [None])[0]
    return name.strip().lower() if isinstance(name, str) and name.strip() else None


def knowledge_graph_from_relationships(
    relationships: str | Path | list,
    class_names: list[str],
    num_nodes: int = 300,
    num_predicates: int = 100,
    aliases: dict[str, str] | None = None,
) -> KnowledgeGraph:
    """Mine a concept graph from Visual Genome's ``relationships.json``.

    Args:
        relationships: the file, or its parsed content (a list of images with ``relationships``).
        class_names: the dataset's classes; each becomes a node (through ``aliases`` when its VG name differs).
        num_nodes: total nodes K: the classes plus the most frequent other object names.
        num_predicates: only relationships with one of the most frequent predicates become edges.
        aliases: class name -> VG name (default: :data:`VOC_TO_VG`).

    Returns:
        a graph whose ``adjacency[s, o]`` counts the relationships ``s --predicate--> o`` over kept predicates.
    """
    aliases = VOC_TO_VG if aliases is None else aliases
    if not isinstance(relationships, list):
        path = Path(relationships)
        try:
            relationships = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: cannot read Visual Genome relationships ({err})") from err
    triples: list[tuple[str, str, str]] = []
    for image in relationships:
        for rel in image.get("relationships", []):
            s, o = _name(rel.get("subject", {})), _name(rel.get("object", {}))
            pred = str(rel.get("predicate", "")).strip().lower()
            if s and o and pred:
                triples.append((s, pred, o))
    class_vg = [aliases.get(c, c).lower().replace("_", " ") for c in class_names]
    if num_nodes < len(class_vg):
        raise ValueError(f"num_nodes={num_nodes} is smaller than the {len(class_vg)} classes")
    object_counts = Counter(n for s, _, o in triples for n in (s, o))
    others = [n for n, _ in object_counts.most_common() if n not in class_vg]
    nodes = class_vg + others[: num_nodes - len(class_vg)]
    index = {n: i for i, n in enumerate(nodes)}
    keep = {p for p, _ in Counter(p for _, p, _ in triples).most_common(num_predicates)}
    adjacency = torch.zeros(len(nodes), len(nodes))
    for s, p, o in triples:
        if p in keep and s in index and o in index and s != o:
            adjacency[index[s], index[o]] += 1
    return KnowledgeGraph(nodes, adjacency, list(range(len(class_vg))))


def load_knowledge_graph(
    path: str | Path, class_names: list[str], aliases: dict[str, str] | None = None
) -> KnowledgeGraph:
    """A user's own graph: a CSV edge list (``source,target[,weight]``, header optional) or a JSON file
    ``{"nodes": [...], "edges": [[source, target, weight], ...]}``. Every class must be a node (or aliased to one)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"knowledge graph file {str(path)!r} does not exist")
    edges: list[tuple[str, str, float]] = []
    nodes: list[str] = []
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text())
            nodes = [str(n) for n in data.get("nodes", [])]
            edges = [(str(e[0]), str(e[1]), float(e[2]) if len(e) > 2 else 1.0) for e in data["edges"]]
        else:
            for line_no, row in enumerate(csv.reader(path.read_text().splitlines()), start=1):
                if not row or (line_no == 1 and row[:2] == ["source", "target"]):
                    continue
                if len(row) < 2:
                    raise ValueError(f"line {line_no}: expected source,target[,weight]")
                edges.append((row[0].strip(), row[1].strip(), float(row[2]) if len(row) > 2 else 1.0))
    except (KeyError, IndexError, TypeError, ValueError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: malformed knowledge graph ({err})") from err
    aliases = aliases or {}
    for s, o, _ in edges:
        nodes += [n for n in (s, o) if n not in nodes]
    index = {n: i for i, n in enumerate(nodes)}
    missing = [c for c in class_names if aliases.get(c, c) not in index]
    if missing:
        raise ValueError(f"{path}: classes {missing} are not nodes of the graph")
    adjacency = torch.zeros(len(nodes), len(nodes))
    for s, o, w in edges:
        adjacency[index[s], index[o]] += w
    return KnowledgeGraph(nodes, adjacency, [index[aliases.get(c, c)] for c in class_names])


def ggnn_adjacency(weights: torch.Tensor, tau: float = 0.1, p: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """In- and out-edge matrices for the GGNN from weighted edges ``weights[s, o]`` (s -> o).

    As graphMLC's GGNN: scale to a maximum of 1, binarise at ``tau``, re-weight each node's edges to sum to
    ``p`` with ``1 - p`` on the diagonal (ML-GCN's paper-style re-weighting, column-wise as graphMLC does).

    Shapes:
        weights (K, K) -> (A_in (K, K), A_out (K, K)); ``A_in[v, u]`` weighs the message from u to v along u -> v.
    """
    w = weights.float().clone()
    w.fill_diagonal_(0)
    w = w / w.max().clamp_min(1e-12)
    binary = (w >= tau).float() if w.max() > 0 else torch.zeros_like(w)
    col = binary.sum(dim=0, keepdim=True)
    out_edges = torch.where(col > 0, binary * p / col.clamp_min(1), torch.zeros_like(binary))
    out_edges = out_edges + (1 - p) * torch.eye(w.shape[0])
    return out_edges.T.contiguous(), out_edges


def knowledge_from_source(source: str, class_names: list[str]) -> KnowledgeGraph:
    """``vg:PATH`` (Visual Genome relationships.json) or the path of a user's graph (CSV edge list / JSON)."""
    if source.startswith("vg:"):
        return knowledge_graph_from_relationships(source[3:], class_names)
    return load_knowledge_graph(source, class_names)
