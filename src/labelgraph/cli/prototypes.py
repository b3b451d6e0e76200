"""``labelgraph prototypes``: class prototypes of a trained label-query model (SADCL's second stage starts from
them)."""

from __future__ import annotations

import json

from labelgraph.cli._common import (
    Parser,
    UsageError,
    dataset_arguments,
    load_split,
    non_negative_int,
    positive_int,
    probability,
)


def run(argv: list[str]) -> int:
    proto = Parser(
        prog="labelgraph prototypes",
        description="Class prototypes of a trained label-query model (Query2Label, SADCL): the mean label feature of "
        "each class over the confidently predicted positives of a split. SADCL's second stage starts from them.",
    )
    proto.add_argument("--model", required=True, help="an exported model folder or a checkpoint of labelgraph fit")
    dataset_arguments(proto, "--split")
    proto.add_argument("--out", required=True, help="output .safetensors file")
    proto.add_argument("--threshold", type=probability, default=0.85, help="probability a positive must exceed (0.85)")
    proto.add_argument("--image-size", type=positive_int, default=None, help="default: the exported model's")
    proto.add_argument("--batch-size", type=positive_int, default=32)
    proto.add_argument("--num-workers", type=non_negative_int, default=0)
    args = proto.parse_args(argv)

    from safetensors.torch import save_file
    from torch.utils.data import DataLoader

    from labelgraph.apis.prototypes import class_prototypes
    from labelgraph.data.classes import check_same_classes
    from labelgraph.data.dataset import collate_skipping_bad, eval_dataset
    from labelgraph.files import atomic_path
    from labelgraph.models import load_trained_model

    model, config = load_trained_model(args.model)
    table = load_split(args, args.split, config.class_names)
    check_same_classes(config.class_names, table.class_names, f"model {args.model}", f"split {table.source}")
    size = args.image_size or config.image_size
    if not size:
        raise UsageError(f"{args.model}: the checkpoint does not record its training resolution; pass --image-size")
    loader = DataLoader(
        eval_dataset(table, size, config.eval_transform),
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        collate_fn=collate_skipping_bad,
    )
    prototypes, counts = class_prototypes(model, loader, table.num_classes, args.threshold)
    metadata = {"class_names": json.dumps(table.class_names), "threshold": str(args.threshold), "model": args.model}
    with atomic_path(args.out) as tmp:
        save_file({"prototypes": prototypes.contiguous(), "counts": counts}, str(tmp), metadata=metadata)
    print(f"wrote {tuple(prototypes.shape)} prototypes to {args.out} ({int(counts.sum())} label features averaged)")
    return 0
