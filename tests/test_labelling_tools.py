"""Label Studio's JSON / JSON-MIN exports and CVAT's "CVAT for images 1.1" XML as dataset formats, on files written
here in the shapes the tools export (fields as Label Studio's documentation and its converter, and CVAT's, write
them)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from labelgraph.cli import main as cli_main
from labelgraph.data.formats import AnnotationError, load_table


def choices(*names: str, control: str = "tags") -> dict:
    return {"id": "r1", "from_name": control, "to_name": "image", "type": "choices", "value": {"choices": list(names)}}


def annotation(result: list, updated: str, cancelled: bool = False) -> dict:
    return {"id": 1, "result": result, "was_cancelled": cancelled, "ground_truth": False,
            "created_at": updated, "updated_at": updated, "lead_time": 3.2, "completed_by": 1}  # fmt: skip


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.jpg", "b.jpg", "sub/c.jpg", "d.jpg", "e.jpg"):
        (folder / name).write_bytes(b"")
    return folder


def full_export(tmp_path, tasks: list) -> str:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks))
    return str(path)


def test_label_studio_full_export(images, tmp_path, caplog):
    tasks = [
        {"id": 1, "data": {"image": "/data/upload/3/0f1e2d3c-a.jpg"},  # an upload: its name prefixed
         "annotations": [annotation([choices("cat")], "2024-01-01T10:00:00Z"),
                         annotation([choices("dog", "person")], "2024-01-02T10:00:00Z")]},  # the latest is kept
        {"id": 2, "data": {"image": "/data/local-files/?d=sub/c.jpg"},
         "annotations": [annotation([choices("cat"), choices("sky", control="scene")], "2024-01-01T10:00:00Z")]},
        {"id": 3, "data": {"image": "https://bucket.example/x/b.jpg?sig=1"},
         "annotations": [annotation([], "2024-01-03T10:00:00Z", cancelled=True)]},  # skipped
        {"id": 4, "data": {"image": "s3://bucket/d.jpg"}, "annotations": [annotation([], "2024-01-01T10:00:00Z")]},
        {"id": 5, "data": {"image": "e.jpg"}, "annotations": []},  # not labelled yet
    ]  # fmt: skip
    with caplog.at_level(logging.WARNING):
        table = load_table("label-studio", full_export(tmp_path, tasks), root=images)
    assert table.class_names == ["cat", "dog", "person", "sky"]
    assert table.images == [str(images / "a.jpg"), str(images / "sub" / "c.jpg"), str(images / "d.jpg")]
    assert table.targets.tolist() == [[0, 1, 1, 0], [1, 0, 0, 1], [0, 0, 0, 0]]
    assert table.missing_files() == []
    assert "2 task(s)" in caplog.text and "3, 5" in caplog.text and "export.json" in caplog.text


def test_label_studio_json_min(images, tmp_path):
    records = [
        {"image": "/data/upload/3/0f1e2d3c-a.jpg", "id": 1, "tags": {"choices": ["cat", "dog"]}, "annotator": 1,
         "annotation_id": 10, "created_at": "2024-01-01T10:00:00Z", "updated_at": "2024-01-01T10:00:00Z",
         "lead_time": 2.0},
        {"image": "/data/upload/3/0f1e2d3c-a.jpg", "id": 1, "tags": "person", "annotator": 2,  # one choice: a string
         "annotation_id": 11, "created_at": "2024-02-01T10:00:00Z", "updated_at": "2024-02-01T10:00:00Z",
         "lead_time": 2.0},
        {"image": "/data/upload/3/9a8b7c6d-b.jpg", "id": 2, "tags": {"choices": ["cat", "person"]}, "annotator": 1,
         "annotation_id": 12, "created_at": "2024-01-01T10:00:00Z", "updated_at": "2024-01-01T10:00:00Z",
         "lead_time": 2.0},
    ]  # fmt: skip
    table = load_table(
        "label-studio", full_export(tmp_path, records), root=images, class_names=["cat", "dog", "person"]
    )
    assert table.images == [str(images / "a.jpg"), str(images / "b.jpg")]
    assert table.targets.tolist() == [[0, 0, 1], [1, 0, 1]]  # task 1: the later annotator's


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ([{"id": 7, "data": {}, "annotations": []}], "task 7: no image"),
        ([{"id": 8, "data": {"image": "a.jpg"}, "annotations": [annotation([choices("zebra")], "t")]}],
         "task 8: label 'zebra' is not a class"),
        ([{"id": 1, "data": {"image": "a.jpg"}, "annotations": [annotation([choices("cat")], "t")]},
          {"id": 9, "data": {"image": "a.jpg"}, "annotations": [annotation([choices("cat")], "t")]}],
         r"task 9: image 'a.jpg' is listed twice \(also task 1\)"),
        ({"not": "a list"}, "a list of tasks"),
    ],
)  # fmt: skip
def test_label_studio_errors_name_the_task(images, tmp_path, tasks, message):
    with pytest.raises(AnnotationError, match=message):
        load_table("label-studio", full_export(tmp_path, tasks), root=images, class_names=["cat", "dog"])


CVAT = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <id>12</id><name>photos</name><size>4</size><mode>annotation</mode>
      <labels>
        <label><name>sky</name><color>#33ddff</color><type>any</type><attributes></attributes></label>
        <label><name>cat</name><color>#fa3253</color><type>tag</type><attributes></attributes></label>
        <label><name>dog</name><color>#34d1b7</color><type>any</type><attributes></attributes></label>
      </labels>
    </task>
    <dumped>2024-03-01 10:00:00.000000+00:00</dumped>
  </meta>
  <image id="0" name="a.jpg" width="640" height="480">
    <tag label="cat" source="manual"></tag>
    <tag label="sky" source="manual"></tag>
    <box label="dog" source="manual" occluded="0" xtl="1" ytl="2" xbr="30" ybr="40" z_order="0"></box>
  </image>
  <image id="1" name="sub/c.jpg" width="640" height="480"></image>
  <image id="2" name="b.jpg" width="640" height="480">
    <tag label="dog" source="auto"></tag>
  </image>
</annotations>
"""


def test_cvat_tags_in_the_declared_class_order(images, tmp_path):
    (tmp_path / "annotations.xml").write_text(CVAT)
    table = load_table("cvat", str(tmp_path / "annotations.xml"), root=images)
    assert table.class_names == ["sky", "cat", "dog"]  # as <meta> declares them
    assert table.images == [str(images / "a.jpg"), str(images / "sub" / "c.jpg"), str(images / "b.jpg")]
    assert table.targets.tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 1]]  # the box is not a tag
    default_root = load_table("cvat", str(tmp_path / "annotations.xml"))
    assert default_root.images[0] == str(tmp_path / "a.jpg")  # without --root: the export's folder


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda x: x.replace('name="b.jpg"', 'name="a.jpg"'),
            r"<image> 3: image 'a.jpg' is listed twice \(also <image> 1\)",
        ),
        (
            lambda x: x.replace('label="dog" source="auto"', 'label="zebra" source="auto"'),
            "<image> 3: label 'zebra' is not a class",
        ),
        (lambda x: x.replace('name="sub/c.jpg" ', ""), "image id='1' has no name"),
        (lambda x: x[: len(x) // 2], "not a CVAT XML export"),
    ],
)
def test_cvat_errors_name_the_image(images, tmp_path, change, message):
    (tmp_path / "annotations.xml").write_text(change(CVAT))
    with pytest.raises(AnnotationError, match=message):
        load_table("cvat", str(tmp_path / "annotations.xml"), root=images)


def test_data_stats_reads_both_tools_exports(images, tmp_path, capsys):
    (tmp_path / "annotations.xml").write_text(CVAT)
    argv = ["data", "stats", "--format", "cvat", "--split", str(tmp_path / "annotations.xml"), "--root", str(images)]
    assert cli_main([*argv, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["num_images"] == 3 and stats["missing_files"] == 0 and stats["class_counts"] == {"sky": 1, "cat": 1,
                                                                                                  "dog": 1}  # fmt: skip
    tasks = [{"id": 1, "data": {"image": "a.jpg"}, "annotations": [annotation([choices("cat")], "t")]}]
    argv = ["data", "stats", "--format", "label-studio", "--split", full_export(tmp_path, tasks), "--root", str(images)]
    assert cli_main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_images"] == 1
    assert np.array_equal(load_table("label-studio", full_export(tmp_path, tasks), root=images).targets, [[1]])


def test_train_from_a_label_studio_export(tiny_dataset, tmp_path, monkeypatch):
    """A Label Studio export to a trained model in one command (local files, as Label Studio serves a folder)."""
    table = load_table("csv", str(tiny_dataset / "train.csv"))
    tasks = [
        {"id": i + 1, "data": {"image": f"/data/local-files/?d={table.images[i]}"},
         "annotations": [annotation([choices(*(c for c, v in zip(table.class_names, table.targets[i], strict=True)
                                               if v == 1))], "2024-01-01T10:00:00Z")]}
        for i in range(len(table))
    ]  # fmt: skip
    export = full_export(tmp_path, tasks)
    monkeypatch.chdir(tmp_path)
    argv = ["train", export, "--format", "label-studio", "--root", str(table.root), "--weights", "none",
            "--backbone", "test_resnet", "--image-size", "32", "--epochs", "1", "--method", "baseline", "--out", "run",
            "--no-progress"]  # fmt: skip
    assert cli_main(argv) == 0
    assert json.loads((tmp_path / "run" / "model" / "config.json").read_text())["class_names"] == sorted(
        {c for i in range(len(table)) for c, v in zip(table.class_names, table.targets[i], strict=True) if v == 1}
    )


# --- pre-labels: what labelgraph writes for the tools, read back --------------------------------------------------


def accepted(tasks: list) -> list:
    """What Label Studio exports after a person accepted each task's pre-annotation unchanged."""
    return [{"id": i + 1, "data": t["data"], "predictions": t["predictions"],
             "annotations": [{**annotation(t["predictions"][0]["result"], "2024-05-01T10:00:00Z"),
                              "parent_prediction": i + 1}]}
            for i, t in enumerate(tasks)]  # fmt: skip


def table_as_predictions(table) -> list:
    """A label table as :meth:`Predictor.predict`'s predictions (labels = its positives; scores 0.9 / 0.1)."""
    rows = []
    for image, row in zip(table.images, table.targets, strict=True):
        labels = [c for c, v in zip(table.class_names, row, strict=True) if v == 1]
        rows.append({"image": str(table.root / image), "labels": labels,
                     "scores": {c: 0.9 if c in labels else 0.1 for c in table.class_names}})  # fmt: skip
    return rows


def test_csv_to_label_studio_tasks_and_back(tiny_dataset, tmp_path):
    """CSV -> Label Studio tasks -> (accepted in the tool) export -> read back: the same images and labels; a task
    nobody annotated is left out (the reader's rule), not read as 'no labels'."""
    from labelgraph.data.formats.prelabels import label_studio_tasks

    table = load_table("csv", str(tiny_dataset / "train.csv"))
    tasks = label_studio_tasks(table_as_predictions(table), table.root, "v1")
    assert tasks[0]["data"]["image"].startswith("/data/local-files/?d=") and tasks[0]["predictions"][0]["score"] == 0.9
    export = accepted(tasks)
    export.append({"id": 999, "data": {"image": "/data/local-files/?d=never.jpg"}, "annotations": [],
                   "predictions": tasks[0]["predictions"]})  # fmt: skip
    back = load_table("label-studio", full_export(tmp_path, export), root=table.root, class_names=table.class_names)
    assert [back.path(i) for i in range(len(back))] == [table.path(i) for i in range(len(table))]
    assert np.array_equal(back.targets, (table.targets == 1).astype(np.int8))
    assert back.missing_files() == []


def test_csv_to_cvat_and_back(tiny_dataset, tmp_path):
    """CSV -> a CVAT annotation file -> read back: the same images, labels and class order (declared in <meta>)."""
    from labelgraph.data.formats.prelabels import cvat_annotations

    table = load_table("csv", str(tiny_dataset / "train.csv"))
    rows = table_as_predictions(table)
    xml = cvat_annotations(rows, table.class_names, table.root, [(32, 32)] * len(rows))
    (tmp_path / "annotations.xml").write_text(xml)
    back = load_table("cvat", str(tmp_path / "annotations.xml"), root=table.root)
    assert back.class_names == table.class_names
    assert [back.path(i) for i in range(len(back))] == [table.path(i) for i in range(len(table))]
    assert np.array_equal(back.targets, (table.targets == 1).astype(np.int8))


def test_predict_writes_label_studio_and_cvat_pre_labels(tiny_model, tiny_dataset, tmp_path, capsys):
    """``predict --format label-studio|cvat``: the model's tags and scores in the tools' files, the images relative
    to --image-root, a labelling config beside the tasks; an image outside the root refused before any work."""
    import xml.etree.ElementTree as ET

    images = sorted((tiny_dataset / "images" / "test").glob("*.png"))[:5]
    base = ["predict", str(tiny_model), *map(str, images), "--runtime", "torch"]
    assert cli_main([*base, "--out", str(tmp_path / "p.json")]) == 0
    expected = {p["image"]: p for p in json.loads((tmp_path / "p.json").read_text())["predictions"]}
    root = str(tiny_dataset)
    assert cli_main([*base, "--format", "label-studio", "--out", str(tmp_path / "t.json"), "--image-root", root]) == 0
    tasks = json.loads((tmp_path / "t.json").read_text())
    assert len(tasks) == len(images)
    for task, image in zip(tasks, images, strict=True):
        rel = image.relative_to(tiny_dataset).as_posix()
        assert task["data"]["image"] == f"/data/local-files/?d={rel}"
        (prediction,) = task["predictions"]
        assert prediction["result"][0]["value"]["choices"] == expected[str(image)]["labels"]
        assert task["data"]["scores"] == expected[str(image)]["scores"]
        assert prediction["model_version"].startswith("labelgraph baseline m sha256:")
        assert prediction["score"] == pytest.approx(min(max(p, 1 - p) for p in expected[str(image)]["scores"].values()))
    config = ET.fromstring((tmp_path / "t.label_config.xml").read_text())
    assert [c.get("value") for c in config.iter("Choice")] == json.loads((tmp_path / "p.json").read_text())["classes"]
    choices_tag, image_tag = config.find("Choices"), config.find("Image")
    assert choices_tag.get("choice") == "multiple" and choices_tag.get("toName") == image_tag.get("name")
    for task in tasks:  # the pre-annotation addresses the config's controls, the image its data field
        result = task["predictions"][0]["result"][0]
        assert (result["from_name"], result["to_name"]) == (choices_tag.get("name"), image_tag.get("name"))
        assert image_tag.get("value") == "$image" and "image" in task["data"]

    assert cli_main([*base, "--format", "cvat", "--out", str(tmp_path / "a.xml"), "--image-root", root]) == 0
    xml = ET.parse(tmp_path / "a.xml").getroot()
    for element, image in zip(xml.iter("image"), images, strict=True):
        assert element.get("name") == image.relative_to(tiny_dataset).as_posix()
        assert (element.get("width"), element.get("height")) == ("32", "32")
        assert [t.get("label") for t in element.iter("tag")] == expected[str(image)]["labels"]

    capsys.readouterr()
    assert cli_main([*base, "--format", "cvat", "--out", str(tmp_path / "b.xml"), "--image-root", str(tmp_path)]) == 2
    assert "not under the image root" in capsys.readouterr().err and not (tmp_path / "b.xml").exists()


def test_cvat_image_size_is_the_upright_one(tmp_path):
    """CVAT shows a photo turned by its EXIF orientation: the size written is the turned one, read from the header."""
    from PIL import Image

    from labelgraph.data.image_io import upright_size

    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to show
    Image.new("RGB", (40, 20)).save(tmp_path / "turned.jpg", exif=exif.tobytes())
    Image.new("RGB", (40, 20)).save(tmp_path / "plain.jpg")
    assert upright_size(tmp_path / "turned.jpg") == (20, 40) and upright_size(tmp_path / "plain.jpg") == (40, 20)
