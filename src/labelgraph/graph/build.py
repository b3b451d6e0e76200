"""Build a label graph file from raw annotations (``labelgraph data graph``)."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import DataLoader

from labelgraph.classes import check_same_classes
from labelgraph.data import MultiLabelDataset, collate_skipping_bad, load_table
from labelgraph.data.formats import read_class_list
from labelgraph.data.transforms import eval_transform
from labelgraph.graph.embeddings import embeddings_from_source, image_embeddings
from labelgraph.graph.knowledge import knowledge_from_source
from labelgraph.graph.label_graph import LabelGraph


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
    batch_size: int = 64,
    num_workers: int = 0,
) -> LabelGraph:
    """Count labels over the train split, add embeddings / a knowledge graph, and write a safetensors file.

    Args:
        embeddings: ``onehot`` | ``glove:PATH`` | ``glove50`` | ``image:MODEL_DIR`` (an exported model whose
            backbone gives IML-GCN's image-based embeddings over this train split; ``pca`` reduces them).
        knowledge: ``vg:relationships.json`` or a user's graph file.
    """
    names = read_class_list(classes) if classes else None
    table = load_table(format, train, root=root, class_names=names, image_root=image_root, **(format_options or {}))
    graph = LabelGraph.from_targets(table.targets, table.class_names)
    graph.metadata = {
        "train": str(train),
        "format": format,
        "root": str(root or ""),
        "options": str(format_options or {}),
    }
    if embeddings and embeddings.startswith("image:"):
        from labelgraph.export import load_model

        model_dir = embeddings.split(":", 1)[1]
        model, config = load_model(model_dir)
        size = config["preprocessing"]["image_size"]
        loader = DataLoader(
            MultiLabelDataset(table, eval_transform(size)),
            batch_size=batch_size,
            num_workers=num_workers,
            collate_fn=collate_skipping_bad,
        )
        graph.embeddings = image_embeddings(model, loader, table.num_classes, pca_dim=pca)
        graph.embedding_source = f"image:{Path(model_dir).name}" + (f"+pca{pca}" if pca else "")
    elif embeddings:
        graph.embeddings, graph.embedding_source = embeddings_from_source(embeddings, table.class_names)
    if knowledge:
        graph.knowledge = knowledge_from_source(knowledge, table.class_names)
    check_same_classes(graph.class_names, table.class_names, "graph", "dataset")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    graph.save(out)
    return graph
