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
