"""``docs/adding_a_method.md`` cannot rot: its example method, copied out of the page, registers, trains one demo epoch
through ``labelgraph demo --methods csra``, is exported, and tags an image with ``labelgraph predict``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image

PAGE = Path(__file__).resolve().parents[1] / "docs" / "adding_a_method.md"


def page_code() -> str:
    """The page's Python: its one ``python`` block, the method's whole file."""
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    assert len(blocks) == 1, "the page shows the method's file as one python block"
    return blocks[0]


def test_the_documented_method_trains_exports_and_predicts(tmp_path):
    (tmp_path / "csra.py").write_text(page_code())
    image = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "demo"
    script = textwrap.dedent(f"""
        import runpy, sys
        runpy.run_path({str(tmp_path / "csra.py")!r}, run_name="labelgraph.models.csra")  # registers "csra"
        from labelgraph.cli import main
        demo = ["demo", "--methods", "csra", "--out", {str(out)!r}, "--data", "shapes", "--images", "48",
                "--epochs", "1", "--image-size", "32", "--batch-size", "16", "--pretrain-images", "64",
                "--no-progress"]
        assert main(demo) == 0
        model, predictions = {str(out / "csra" / "model")!r}, {str(tmp_path / "p.json")!r}
        sys.exit(main(["predict", model, {str(image)!r}, "--out", predictions]))
    """)  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    row = json.loads((out / "results.json").read_text())["methods"]["csra"]
    assert row["recipe"]["optimizer"].startswith("AdamW") and 0 <= row["mAP"] <= 100  # the recipe, scaled
    config = json.loads((out / "csra" / "model" / "config.json").read_text())
    assert config["method"] == "csra" and config["model_kwargs"]["backbone"] == "resnet10t"
    prediction = json.loads((tmp_path / "p.json").read_text())["predictions"][0]
    assert set(prediction["scores"]) == set(config["class_names"])
