"""Build label graphs from raw annotations: statistics, embeddings and knowledge graphs (``labelgraph data graph``).

Used by the data module (``embeddings`` / ``knowledge_graph`` options) and the ``labelgraph data graph`` command,
so a graph built either way is the same.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import DataLoader

from labelgraph.data.classes import check_same_classes
from labelgraph.data.dataset import collate_skipping_bad, eval_dataset
from labelgraph.data.formats import load_table, read_class_list
from labelgraph.data.label_table import LabelTable
from labelgraph.graph.embeddings import embeddings_from_source, image_embeddings
from labelgraph.graph.knowledge import knowledge_from_source
from labelgraph.graph.label_graph import LabelGraph


def add_extras(
    graph: LabelGraph,
    train: LabelTable,
    embeddings: str | None = None,
    pca: int | None = None,
    knowledge: str | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
) -> LabelGraph:
    """Attach label embeddings and/or a knowledge graph to ``graph`` (in place, and returned).

    Args:
        train: the train split (image-based embeddings average its images' features).
        embeddings: ``onehot`` | ``glove:PATH`` | ``glove50`` | ``image:MODEL_DIR`` (an exported model; IML-GCN).
        pca: PCA dimension of image-based embeddings (at most C - 1).
        knowledge: ``vg:relationships.json`` or a user's graph file (CSV edge list or JSON).
    """
    check_same_classes(graph.class_names, train.class_names, "label graph", "train split")
    if embeddings and embeddings.startswith("image:"):
        from labelgraph.models import load_model

        model_dir = embeddings.split(":", 1)[1]
        model, config = load_model(model_dir)
        dataset = eval_dataset(train, config.image_size, config.eval_transform)
        loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_skipping_bad)
        graph.embeddings = image_embeddings(model, loader, train.num_classes, pca_dim=pca)
        graph.embedding_source = f"image:{Path(model_dir).name}" + (f"+pca{pca}" if pca else "")
    elif embeddings:
        graph.embeddings, graph.embedding_source = embeddings_from_source(embeddings, train.class_names)
    if knowledge:
        graph.knowledge = knowledge_from_source(knowledge, train.class_names)
    return graph


def build_label_graph(
    train: str,
    out: str | Path,
    *,
    format: str = "csv",
    root: str | None = None,
    format_options: dict | None = None,
    classes: str | None = None,
    image_root: str | None = None,
    embeddings: str | None = None,
    pca: int | None = None,
    knowledge: str | None = None,
) -> LabelGraph:
    """Count labels over the train split, add embeddings / a knowledge graph, and write a safetensors file."""
    names = read_class_list(classes) if classes else None
    table = load_table(format, train, root=root, class_names=names, image_root=image_root, **(format_options or {}))
    graph = LabelGraph.from_targets(table.targets, table.class_names)
    graph.metadata = {"train": str(train), "format": format, "root": str(root or ""), "options": str(format_options)}
    add_extras(graph, table, embeddings=embeddings, pca=pca, knowledge=knowledge)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    graph.save(out)
    return graph
