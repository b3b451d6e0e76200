"""Reading the labelling tools' exports at the size of a real project: 100,000 images with COCO's 80 classes (about
three tags each), written as a labelgraph CSV, a Label Studio JSON export (one annotation per task), a Label Studio
JSON-MIN export and a "CVAT for images 1.1" XML file, then each read by ``load_table`` in a child process of its own:
seconds and the child's peak resident memory, beside a child that only imports the readers.

    python -m benchmarks.bench_labelling_formats [--images 100000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, write

CHILD = """
import json, resource, sys, time
from labelgraph.data.formats import load_table
if sys.argv[1] != "import":
    start = time.perf_counter()
    table = load_table(sys.argv[1], sys.argv[2], root=sys.argv[3])
    seconds, rows = time.perf_counter() - start, len(table)
else:
    seconds, rows = 0.0, 0
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "rows": rows, "peak_mb": peak_mb}))
"""


def labels_of(n: int, classes: list[str], seed: int = 0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [list(rng.choice(classes, size=int(rng.integers(1, 6)), replace=False)) for _ in range(n)]


def write_files(folder: Path, n: int) -> dict[str, tuple[str, Path]]:
    classes = [f"class {i}" for i in range(80)]
    tags = labels_of(n, classes)
    names = [f"photos/{i // 1000:03d}/{i:06d}.jpg" for i in range(n)]
    csv = folder / "labels.csv"
    csv.write_text("image,labels\n" + "".join(f"{name},{'|'.join(t)}\n" for name, t in zip(names, tags, strict=True)))
    (folder / "classes.txt").write_text("\n".join(classes) + "\n")
    stamp = "2024-05-01T10:00:00.000000Z"
    full = [{"id": i + 1, "data": {"image": f"/data/local-files/?d={name}"}, "annotations": [
                {"id": i + 1, "completed_by": 1, "was_cancelled": False, "ground_truth": False, "created_at": stamp,
                 "updated_at": stamp, "lead_time": 4.1, "result": [{"id": "r", "type": "choices", "from_name": "choice",
                 "to_name": "image", "origin": "manual", "value": {"choices": t}}]}], "predictions": []}
            for i, (name, t) in enumerate(zip(names, tags, strict=True))]  # fmt: skip
    (folder / "ls.json").write_text(json.dumps(full))
    minimal = [{"image": f"/data/local-files/?d={name}", "id": i + 1, "choice": {"choices": t}, "annotator": 1,
                "annotation_id": i + 1, "created_at": stamp, "updated_at": stamp, "lead_time": 4.1}
               for i, (name, t) in enumerate(zip(names, tags, strict=True))]  # fmt: skip
    (folder / "ls_min.json").write_text(json.dumps(minimal))
    label_xml = "".join(f"<label><name>{c}</name><type>tag</type><attributes></attributes></label>" for c in classes)
    images = "".join(f'<image id="{i}" name="{name}" width="4000" height="3000">'
                     + "".join(f'<tag label="{c}" source="manual"></tag>' for c in t) + "</image>\n"
                     for i, (name, t) in enumerate(zip(names, tags, strict=True)))  # fmt: skip
    meta = f"<meta><task><labels>{label_xml}</labels></task></meta>"
    xml = f'<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version>{meta}\n{images}</annotations>\n'
    (folder / "cvat.xml").write_text(xml)
    return {"csv": ("csv", csv), "label-studio (JSON)": ("label-studio", folder / "ls.json"),
            "label-studio (JSON-MIN)": ("label-studio", folder / "ls_min.json"),
            "cvat": ("cvat", folder / "cvat.xml")}  # fmt: skip


def read_in_child(fmt: str, path: Path, root: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", CHILD, fmt, str(path), str(root)], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(result: dict[str, Any]) -> str:
    base = result["import_only"]["peak_mb"]
    csv = result["formats"]["csv"]
    lines = [f"| format ({result['images']:,} images) | file MB | read s | vs CSV | peak MB (import: {base:.0f}) |",
             "|---|---:|---:|---:|---:|"]  # fmt: skip
    for name, row in result["formats"].items():
        lines.append(f"| {name} | {row['file_mb']:.1f} | {row['seconds']:.2f} | {row['seconds'] / csv['seconds']:.1f}x "
                     f"| {row['peak_mb']:.0f} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=100_000)
    p.add_argument("--out", default=str(RESULTS / "labelling_formats.json"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = write_files(folder, args.images)
        result: dict[str, Any] = {"images": args.images, "import_only": read_in_child("import", folder, folder)}
        result["formats"] = {}
        for name, (fmt, path) in files.items():
            row = read_in_child(fmt, path, folder)
            assert row["rows"] == args.images, row
            result["formats"][name] = {**row, "file_mb": path.stat().st_size / 1e6}
            print(name, json.dumps(result["formats"][name]), flush=True)
    write(result, args.out)
    print(markdown(result))


if __name__ == "__main__":
    main()
