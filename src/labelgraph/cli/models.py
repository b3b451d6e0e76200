"""``labelgraph models [--details | --recipes]``: the registered methods, their parameters and FLOPs, their recipes."""

from __future__ import annotations

from labelgraph.cli._common import Parser, positive_int


def run(argv: list[str]) -> int:
    p = Parser(prog="labelgraph models", description="List the registered methods.")
    p.add_argument("--details", action="store_true", help="parameters and forward FLOPs of every method")
    p.add_argument("--recipes", action="store_true", help="every method's recipe (its paper's), as a Markdown table")
    p.add_argument("--backbone", default="resnet101", help="with --details (resnet101)")
    p.add_argument("--size", type=positive_int, default=448, help="with --details: input side (448)")
    p.add_argument("--classes", type=positive_int, default=80, help="with --details: number of classes (80)")
    args = p.parse_args(argv)
    from labelgraph.models import list_models

    if args.recipes:
        print(recipes_table())
        return 0
    if not args.details:
        print("\n".join(list_models()))
        return 0
    print_model_details(args.backbone, args.size, args.classes)
    return 0


def print_model_details(backbone: str, size: int, classes: int) -> None:
    """Parameters and forward FLOPs of every method at one input size, on a random label graph."""
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from labelgraph.graph import LabelGraph
    from labelgraph.models import create_model, list_models

    rng = np.random.default_rng(0)
    graph = LabelGraph.from_targets(
        (rng.random((500, classes)) < 0.05).astype(np.int8), [str(c) for c in range(classes)]
    )
    graph.embeddings, graph.embedding_source = torch.randn(classes, 300), "image:random"
    print(f"{'method':<12} {'params (M)':>11} {'GFLOPs':>9}   ({backbone}, {size} px, {classes} classes)")
    for name in list_models():
        model = create_model(name, num_classes=classes, label_graph=graph, backbone=backbone).eval()
        params = sum(p.numel() for p in model.parameters()) / 1e6
        with FlopCounterMode(display=False) as counter:  # (under no_grad its hooks trip on frozen stages)
            model(torch.rand(1, 3, size, size))
        print(f"{name:<12} {params:>11.2f} {counter.get_total_flops() / 1e9:>9.2f}")


def recipes_table() -> str:
    """One row per method: what its recipe trains and evaluates it with (``labelgraph.models.get_recipe``)."""
    from labelgraph.models import get_recipe, list_models

    head = (
        "| method | loss (+ auxiliary) | optimiser | backbone lr | schedule | EMA | epochs | batch | size | "
        "train / eval transform | metrics |"
    )
    rows = [head, "|---|---|---|---:|---|---:|---:|---:|---:|---|---|"]
    for name in list_models():
        r = get_recipe(name)
        loss = " + ".join([r.criterion.describe(), *(a.describe() for a in r.aux_losses)])
        schedule = r.lr_scheduler.describe() if r.lr_scheduler else "constant"
        cells = [
            f"`{name}`",
            loss,
            r.optimizer.describe(),
            f"x{r.backbone_lr_mult:g}",
            schedule,
            r.ema_decay or "",
            r.epochs,
            r.batch_size,
            r.image_size,
            f"{r.train_transform} / {r.eval_transform}",
            r.metrics,
        ]
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(rows)
