"""Why Query2Label trailed the baseline on the demo data (issue 17, point 2): the suspected causes, one at a time.

    .venv/bin/python docs/experiments/query2label_demo.py OUT_DIR 1000 6    # 1,000 train images, 6 epochs

Same data (the demo's fashion outfits, seed 0, 1000/250/250 images), the demo's pretrained resnet10t, 96 px, batch
32, seed 0 for every run. Writes OUT_DIR/experiments.json (test mAP, CF1, OF1, seconds).
- E0 the old state: feed-forward 8192, frozen BatchNorm + frozen stem/layer1, the graph methods' demo recipe (AdamW
  1e-3 for the head, 0.1x for the backbone, cosine);
- E1 feed-forward 4x the hidden width (2048 for the 512-wide resnet10t), else as E0;
- E2 E1 with BatchNorm re-estimated and every stage trained;
- E3/E6 E1 with Query2Label's recipe (ASL, AdamW one lr for all, one-cycle 20 % warm-up, EMA) at peak 1e-3 / 1e-4;
- E4/E5 E2 with that recipe at peak 1e-3 / 1e-4 (E5 is the demo's setting now).
"""

import json
import sys
import time
from pathlib import Path

from labelgraph.models import get_recipe
from labelgraph.studies import demo

out, images, epochs = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
dataset = demo.prepare_data(out, "auto", 0, images)
weights = demo.pretrain_backbone(dataset["kind"], "resnet10t", out / "pretrained" / "w.safetensors", 0, images=6000)
dm = demo.demo_datamodule(out / "data", 96, 32)
# Query2Label's loss with the graph methods' short-run optimisation: a recipe without warm-up scales to AdamW 1e-3,
# backbone 0.1x, cosine, no EMA (labelgraph.models.Recipe.scaled)
graph_recipe = get_recipe("query2label").replace(lr_scheduler=get_recipe("ml_gcn").lr_scheduler, ema_decay=None)

frozen = {"frozen_batchnorm": True, "trainable_stages": 3}  # Query2Label's official ResNet setting
live = {"frozen_batchnorm": False, "trainable_stages": None}
runs = {  # name: (method, builder arguments, recipe (None: the method's own), peak learning rate)
    "baseline": ("baseline", None, None, None),
    "E0 old: FFN 8192, frozen BN, demo recipe": ("query2label", {**frozen, "dim_feedforward": 8192}, graph_recipe, 0),
    "E1 FFN 4x": ("query2label", frozen, graph_recipe, None),
    "E2 FFN 4x + live BN": ("query2label", live, graph_recipe, None),
    "E3 FFN 4x + Q2L recipe (peak 1e-3)": ("query2label", frozen, None, 1e-3),
    "E4 FFN 4x + live BN + Q2L recipe (peak 1e-3)": ("query2label", live, None, 1e-3),
    "E5 FFN 4x + live BN + Q2L recipe (peak 1e-4, paper)": ("query2label", live, None, 1e-4),
    "E6 FFN 4x + Q2L recipe (peak 1e-4, paper)": ("query2label", frozen, None, 1e-4),
}
results = {}
for name, (method, args, recipe, peak) in runs.items():
    settings = demo.DemoSettings(epochs, 0, "resnet10t", str(weights), False, transformer_lr=peak)
    start = time.perf_counter()
    run_dir = out / "runs" / str(len(results))
    row, _, _ = demo.train_one(method, dm, dm.label_graph, run_dir, settings, args, recipe=recipe)
    results[name] = {k: row[k] for k in ("mAP", "CF1", "OF1")} | {"seconds": round(time.perf_counter() - start, 1)}
    print(name, results[name], flush=True)
    (out / "experiments.json").write_text(json.dumps(results, indent=1))
