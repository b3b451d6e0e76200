"""The model card of an exported model: ``README.md`` in its folder, what the Hub shows on the model's page.

Everything on it comes from the folder's ``config.json`` (method, arguments, classes, preprocessing, thresholds, and
what training recorded: the metrics of its last evaluations and the command that ran it) and from the method's module
docstring (the paper). Nothing is typed by hand, so the card cannot disagree with the weights beside it.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from labelgraph.models import get_model_builder


def paper_of(method: str) -> str:
    """The first paragraph of the method's module docstring: the paper's title, venue and link."""
    doc = inspect.getmodule(get_model_builder(method)).__doc__ or method
    return " ".join(doc.strip().split("\n\n")[0].split())


def metrics_lines(extra: dict[str, Any]) -> list[str]:
    """One table of every split's metrics the export recorded (demo: ``test_metrics``; fit: ``metrics``)."""
    splits = dict(extra.get("metrics") or {})
    if extra.get("test_metrics"):
        splits["test"] = extra["test_metrics"]
    if not splits:
        return ["No evaluation was recorded with this export."]
    names = [k for k in ("mAP", "CF1", "OF1", "CP", "CR", "OP", "OR", "CF1_top3", "OF1_top3")
             if any(k in row for row in splits.values())]  # fmt: skip
    rows = ["| split | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for split, row in splits.items():
        cells = ["" if row.get(k) is None else f"{row[k]:.2f}" for k in names]
        rows.append(f"| {split} | " + " | ".join(cells) + " |")
    return rows


def model_card(model_dir: str | Path, repo_id: str | None = None) -> str:
    """The card's Markdown (YAML front matter for the Hub, then the description)."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    method, classes, prep = config["method"], config["class_names"], config["preprocessing"]
    extra, kwargs = config.get("extra", {}), config.get("model_kwargs", {})
    name = f"hf-hub:{repo_id}" if repo_id else str(model_dir)
    command = extra.get("command") or extra.get("trained_on")
    lines = [
        "---", "library_name: labelgraph", "pipeline_tag: image-classification",
        f"tags: [labelgraph, multi-label-image-classification, {method}]", "---", "",
        f"# {repo_id or method}", "",
        f"A multi-label image classifier ({method}) trained and exported with "
        "labelgraph: sigmoid scores for each of its "
        f"{len(classes)} classes.", "",
        f"- **Method**: `{method}` -- {paper_of(method)}",
        f"- **Backbone**: `{kwargs.get('backbone', 'the method default')}`; builder arguments: "
        f"`{json.dumps(kwargs, sort_keys=True)}`",
        f"- **Input**: RGB, resized ({prep.get('resize', 'squash')}) to {prep['image_size']} x {prep['image_size']}, "
        f"scaled to [0, 1], normalised with mean {prep.get('mean')} and std {prep.get('std')}",
        f"- **Decision thresholds**: {describe_thresholds(config.get('thresholds', 0.5))}",
        f"- **Classes** ({len(classes)}, in output order): " + ", ".join(f"`{c}`" for c in classes), "",
        "## Metrics (percent)", "", *metrics_lines(extra), "",
        "## How it was made", "", "```bash", str(command or "(not recorded)"), "```", "",
        "## Use", "", "```python", "import labelgraph", "", f'tagger = labelgraph.load("{name}")',
        'print(tagger.predict(["photo.jpg"])["predictions"][0]["labels"])', "```", "", "```bash",
        f"labelgraph predict {name} photo.jpg", f"labelgraph serve {name}", "```", "",
    ]  # fmt: skip
    return "\n".join(lines)


def describe_thresholds(thresholds: float | list[float]) -> str:
    if isinstance(thresholds, list):
        return f"calibrated per class ({min(thresholds):.2f} .. {max(thresholds):.2f})"
    return f"{thresholds:g} for every class"


def write_model_card(model_dir: str | Path, repo_id: str | None = None) -> Path:
    """Write ``README.md`` into the exported model's folder and return its path."""
    path = Path(model_dir) / "README.md"
    path.write_text(model_card(model_dir, repo_id))
    return path
