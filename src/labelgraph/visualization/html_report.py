"""``labelgraph report RUN_DIR``: one self-contained HTML page of a comparison run (the demo's output folder).

The page holds the metrics table, per-class AP, training curves and example test predictions of the best method
with the maps behind its top label (its own class maps, or Grad-CAM); every figure is embedded as base64 PNG, so
the file can be mailed or attached as is. RUN_DIR holds ``results.json`` (as ``labelgraph demo`` writes it), one
exported model per method in ``<method>/model`` and, for the examples, the test split ``data/test.csv``.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from PIL import Image

from labelgraph.files import write_text
from labelgraph.visualization.report import plot_curves, plot_per_class_ap
from labelgraph.visualization.trust import png_tag, trust_section


def _table(methods: dict[str, dict[str, Any]]) -> str:
    keys = ("mAP", "CP", "CR", "CF1", "OP", "OR", "OF1", "CF1_top3", "OF1_top3")
    head = "".join(f"<th>{k}</th>" for k in ("method", *keys, "params (M)", "seconds"))
    rows = []
    for name, r in sorted(methods.items(), key=lambda kv: -kv[1]["mAP"]):
        cells = "".join(f"<td>{r[k]:.2f}</td>" for k in keys)
        rows.append(
            f"<tr><td>{html.escape(name)}</td>{cells}<td>{r['params'] / 1e6:.2f}</td><td>{r['seconds']:.0f}</td></tr>"
        )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _examples(run: Path, test_csv: Path, model_dir: Path, count: int) -> str:
    """Test images with the model's labels, the truth, and the map of its top label."""
    from labelgraph.apis.predict import Predictor
    from labelgraph.data.formats import load_table
    from labelgraph.data.transforms import eval_view
    from labelgraph.visualization.explain import explain, overlay

    if not (test_csv.is_file() and model_dir.is_dir()):
        return "<p>(no test split or exported model in the run folder: no examples)</p>"
    predictor = Predictor.load(model_dir)
    table = load_table("csv", str(test_csv), class_names=predictor.classes)
    cells = []
    for i in range(min(count, len(table))):
        pixels = predictor.read(table.path(i))
        x = predictor.transform(pixels)[None]
        result = predictor.tag(predictor.scores(x)[0], predictor.thresholds, 5)
        scores = result["scores"]
        top = result["labels"][0] if result["labels"] else max(scores, key=scores.get)
        maps, kind = explain(predictor.model, x, [predictor.classes.index(top)])
        truth = [c for c, t in zip(predictor.classes, table.targets[i], strict=True) if t == 1]
        seen = eval_view(pixels, predictor.config.eval_transform).permute(1, 2, 0).numpy()
        big = Image.fromarray(seen).resize((192, 192), Image.NEAREST)
        cells.append(
            f"<div class='ex'>{png_tag(big)}{png_tag(overlay(big, maps[0].numpy()))}"
            f"<p><b>predicted</b>: {html.escape(', '.join(f'{c} {scores[c]:.2f}' for c in result['labels']) or '-')}"
            f"<br><b>truth</b>: {html.escape(', '.join(truth) or '-')}<br><i>{kind} of '{html.escape(top)}'</i></p>"
            "</div>"
        )
    return "".join(cells)


def write_html_report(run_dir: str | Path, count: int = 6) -> Path:
    """Write ``RUN_DIR/report.html`` and return its path."""
    run = Path(run_dir)
    results_path = run / "results.json"
    if not results_path.is_file():
        raise FileNotFoundError(f"{run}: no results.json (a folder written by labelgraph demo)")
    results = json.loads(results_path.read_text())
    methods, classes = results["methods"], results["dataset"]["classes"]
    if not methods:
        raise ValueError(f"{results_path}: no method results")
    best = max(methods, key=lambda m: methods[m]["mAP"])
    data, settings = results["dataset"], results["settings"]
    examples = {"split": "data/test.csv", "model": f"{best}/model", **data.get("examples", {})}  # default: the demo's
    held_out = data.get("held_out", "test")
    plot_per_class_ap(results["per_class_AP"], classes, run / "per_class_ap.png", held_out)
    plot_curves(results.get("history", {}), run / "curves.png")
    what = html.escape(data["description"]) if "description" in data else f"{data['kind']} scenes (seed {data['seed']})"
    sizes = " / ".join(f"{data[s]['num_images']} {s}" for s in ("train", "val", "test") if s in data)
    epochs = html.escape(settings["stages"]) if "stages" in settings else f"{settings['epochs']} epochs"
    trust = results.get("trust")
    thresholds = "the calibrated thresholds (next section)" if trust else "each model's stored thresholds"
    body = f"""
<h1>labelgraph report</h1>
<p>{what}: {sizes} images, {len(classes)} classes. {epochs}; backbone
<code>{html.escape(settings["backbone"])}</code>, {settings["image_size"]} px, on {settings["device"]}.</p>
<h2>Metrics on the {held_out} split</h2><p>Percent; mAP non-interpolated (no threshold); CP..OF1 at the uncalibrated
threshold 0.5, CF1 harmonic.</p>{_table(methods)}
<h2>Per-class AP ({held_out} split)</h2>{png_tag(run / "per_class_ap.png")}
<h2>Training</h2><p>Training loss and validation mAP per epoch.</p>{png_tag(run / "curves.png")}
{trust_section(trust) if trust else ""}
<h2>Examples: {html.escape(best)} (best mAP) on the first {held_out} images</h2>
<p>Predicted: the labels at {thresholds}, with their probabilities.</p>
{_examples(run, run / examples["split"], run / examples["model"], count)}
"""
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}"
        ".ex{display:inline-block;width:400px;vertical-align:top;margin:4px}.ex img{width:192px;margin-right:4px}"
        ".card{display:inline-block;width:250px;vertical-align:top;margin:4px;font-size:13px}"
        ".few td{background:#fff3cd}.warn{color:#8a4b00}td:first-child{text-align:left}"
    )
    page = f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>labelgraph report</title><style>{style}</style>"
    page += f"</head><body>{body}</body></html>"
    out = run / "report.html"
    write_text(out, page)
    return out
