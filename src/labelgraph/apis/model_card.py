"""The model card of an exported model: ``README.md`` in its folder, what the Hub shows on the model's page.

Everything on it comes from the folder's ``config.json`` (:class:`~labelgraph.models.ModelConfig`: method, arguments,
classes, preprocessing, thresholds, label graph, what it was trained with, the metrics of its last evaluations and the
command that ran it) and from the method's module docstring (the paper) and recipe. Nothing is typed by hand, so the
card cannot disagree with the weights beside it.
"""

from __future__ import annotations

import inspect
import json
import re
import shlex
from pathlib import Path
from typing import Any

from labelgraph.evaluation.calibration import scaling_formula
from labelgraph.files import write_text
from labelgraph.models import ModelConfig, get_model_builder, get_recipe
from labelgraph.models.model_config import ONNX_FILE
from labelgraph.models.weights import read_model_config

INPUTS = {
    "resize": "resized (squashed) to {s} x {s}",
    "center_crop": "resized to {r} on the shorter side, the centre {s} x {s} kept",
}


def paper_of(method: str) -> str:
    """The first paragraph of the method's module docstring: the paper's title, venue and link."""
    doc = inspect.getmodule(get_model_builder(method)).__doc__ or method
    return " ".join(doc.strip().split("\n\n")[0].split())


def metrics_lines(splits: dict[str, Any] | None) -> list[str]:
    """One table of every split's metrics the model recorded."""
    if not splits:
        return ["No evaluation was recorded with this model."]
    names = [
        k
        for k in ("mAP", "CF1", "OF1", "CP", "CR", "OP", "OR", "CF1_top3", "OF1_top3")
        if any(k in row for row in splits.values())
    ]
    rows = ["| split | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for split, row in splits.items():
        cells = ["" if row.get(k) is None else f"{row[k]:.2f}" for k in names]
        rows.append(f"| {split} | " + " | ".join(cells) + " |")
    return rows


def input_line(config: ModelConfig) -> str:
    s = config.image_size
    shape = INPUTS[config.eval_transform].format(s=s, r=round(s * 640 / 576) if s else s)
    return f"RGB, {shape}, scaled to [0, 1], normalised with mean {config.mean} and std {config.std}"


def training_lines(config: ModelConfig) -> list[str]:
    """What it was trained with (recorded), else its method's recipe (the paper's)."""
    if config.recipe:
        return [f"- {k}: {json.dumps(v) if isinstance(v, dict | list) else v}" for k, v in config.recipe.items()]
    recipe = get_recipe(config.method)
    return [
        "Not recorded; the method's recipe (its paper's) is:",
        "",
        *(f"- {k}: {v}" for k, v in recipe.describe().items()),
    ]


def model_card(model_dir: str | Path, repo_id: str | None = None, config: ModelConfig | None = None) -> str:
    """The card's Markdown (YAML front matter for the Hub, then the description); ``config``: the folder's, when
    the caller holds it already."""
    config = config or read_model_config(Path(model_dir))
    method, classes, kwargs = config.method, config.class_names, config.model_kwargs
    name = f"hf-hub:{repo_id}" if repo_id else str(model_dir)
    graph = config.label_graph
    lines = [
        "---",
        "library_name: labelgraph",
        "pipeline_tag: image-classification",
        f"tags: [labelgraph, multi-label-image-classification, {method}]",
        "---",
        "",
        f"# {repo_id or method}",
        "",
        f"A multi-label image classifier ({method}) trained and exported with "
        "labelgraph: sigmoid scores for each of its "
        f"{len(classes)} classes.",
        "",
        f"- **Method**: `{method}` -- {paper_of(method)}",
        f"- **Backbone**: {code_span(str(kwargs.get('backbone', 'the method default')))}; builder arguments: "
        + code_span(json.dumps(kwargs, sort_keys=True)),
        f"- **Input**: {input_line(config)}",
        f"- **Decision thresholds**: {describe_thresholds(config.thresholds)}",
        f"- **Probabilities**: {describe_calibration(config)}",
        f"- **Label graph**: {describe_graph(graph)}",
        f"- **Runtime**: {describe_runtime(Path(model_dir))}",
        f"- **Classes** ({len(classes)}, in output order): " + ", ".join(code_span(c) for c in classes),
        "",
        "## Metrics (percent)",
        "",
        *metrics_lines(config.metrics),
        "",
        "## How it was made",
        "",
        *code_block(str(config.command or "(not recorded)"), "bash"),
        "",
        *training_lines(config),
        "",
        *use_lines(name),
    ]
    return "\n".join(lines)


def code_span(text: str) -> str:
    """``text`` as a Markdown code span that nothing in it can close: fenced by one backtick more than its longest run
    of them (a class called ``a`<script>`` stays text, never HTML)."""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def code_block(text: str, language: str = "") -> list[str]:
    """``text`` as a fenced code block whose fence is longer than any run of backticks in it."""
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return [fence + language, text, fence]


def use_lines(name: str) -> list[str]:
    """The card's "Use" section: the model ``name`` loaded from Python and from the command line."""
    python = f"import labelgraph\n\ntagger = labelgraph.load({json.dumps(name)})\n"
    python += 'print(tagger.predict(["photo.jpg"])["predictions"][0]["labels"])'
    shell = f"labelgraph predict {shlex.quote(name)} photo.jpg\nlabelgraph serve {shlex.quote(name)}"
    return ["## Use", "", *code_block(python, "python"), "", *code_block(shell, "bash"), ""]


def describe_thresholds(thresholds: float | list[float]) -> str:
    if isinstance(thresholds, list):
        return f"calibrated per class ({min(thresholds):.2f} .. {max(thresholds):.2f})"
    return f"{thresholds:g} for every class"


def describe_calibration(config: Any) -> str:
    """The logits' scaling, the recall rule and where the calibration was measured, in one line."""
    t, b = (v if isinstance(v, list) else [v] for v in (config.temperature, config.logit_bias))
    parts = [scaling_formula(t, b)]
    if config.recall_rule:
        rule = config.recall_rule
        parts.append(
            f"`--threshold recall` (p >= {rule['threshold']:.3g}) keeps at least {rule['recall']:g} of an "
            f"image's true labels in expectation (conformal, {rule.get('images', '?')} calibration "
            "images)"
        )
    measured = (config.calibration or {}).get("out_of_sample")
    if measured:
        parts.append(
            f"calibrated CF1 {measured['CF1']:.2f} and ECE {measured['ece_before']:.2f} -> "
            f"{measured['ece_after']:.2f} % on {measured['where']}"
        )
    return "; ".join(parts)


def describe_runtime(folder: Path) -> str:
    """What ``labelgraph predict`` and ``serve`` run the model on: the folder's ONNX graph, or PyTorch."""
    if (folder / ONNX_FILE).is_file():
        return (
            f"`{ONNX_FILE}` (the weights' graph, checked against PyTorch when exported): `labelgraph predict`, "
            "`serve`, `evaluate` and `calibrate` run it on ONNX Runtime on the CPU (`--runtime torch`: PyTorch)"
        )
    return "PyTorch (no `model.onnx`: `labelgraph export FOLDER --onnx` writes one, for ONNX Runtime)"


def describe_graph(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return "none (the method uses no label statistics)"
    if not summary:
        return "label_graph.safetensors (recorded before graph summaries)"
    parts = [f"co-occurrence of {summary['classes']} classes over {summary['train_images']} training images"]
    if summary.get("embeddings"):
        parts.append(f"label embeddings {summary['embeddings']} ({summary['embedding_dim']}-d)")
    if summary.get("knowledge_nodes"):
        parts.append(f"a knowledge graph of {summary['knowledge_nodes']} nodes")
    return "; ".join(parts) + " (label_graph.safetensors)"


def write_model_card(model_dir: str | Path, repo_id: str | None = None, config: ModelConfig | None = None) -> Path:
    """Write ``README.md`` into the exported model's folder and return its path."""
    path = Path(model_dir) / "README.md"
    write_text(path, model_card(model_dir, repo_id, config))
    return path
