"""Every dataset format on fixtures in its real layout: hand-counted statistics, options, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labelgraph.cli import main
from labelgraph.data import AnnotationError, load_table
from labelgraph.data.split_stats import check_images, split_statistics

from . import fixtures


def stats_json(capsys, *args) -> dict:
    assert main(["data", "stats", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


class TestCOCO:
    def test_orders_images_and_stats(self, tmp_path, capsys):
        root = fixtures.coco(tmp_path)
        t = load_table("coco2014", "val", root=root)
        assert t.class_names == ["person", "bicycle", "car"]  # category-id order
        assert t.targets.tolist() == [[1, 0, 1], [0, 0, 1], [0, 0, 0]]
        assert t.path(0) == root / "val2014" / "a.jpg"
        alpha = load_table("coco2014", "val", root=root, class_order="alphabetical")
        assert alpha.class_names == ["bicycle", "car", "person"] and alpha.targets[0].tolist() == [0, 1, 1]
        assert len(load_table("coco2014", "val2014", root=root, include_unlabeled=False)) == 2
        s = stats_json(capsys, "--format", "coco2014", "--root", str(root), "--split", "val")
        assert s == {
            "num_images": 3,
            "num_classes": 3,
            "label_cardinality": 1.0,
            "class_counts": {"person": 1, "bicycle": 0, "car": 2},
            "empty_images": 1,
            "unknown_labels": 0,
            "missing_files": 0,
        }

    @pytest.mark.parametrize(
        "edit, match",
        [
            (lambda d: d["annotations"].append({"id": 99, "image_id": 1, "category_id": 42}),
             "annotation 99 has unknown category id 42"),
            (lambda d: d["annotations"].append({"id": 98, "image_id": 7, "category_id": 1}),
             "annotation 98 refers to image id 7"),
            (lambda d: d["images"].append({"id": 1, "file_name": "z.jpg"}), "image id 1 is listed twice"),
            (lambda d: d.pop("categories"), "malformed COCO"),
        ],
    )  # fmt: skip
    def test_bad_annotations_name_file_and_entry(self, tmp_path, edit, match):
        root = fixtures.coco(tmp_path)
        path = root / "annotations" / "instances_val2014.json"
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))
        with pytest.raises(AnnotationError, match=match) as info:
            load_table("coco2014", "val", root=root)
        assert "instances_val2014.json" in str(info.value)

    def test_unknown_split_and_broken_json(self, tmp_path):
        root = fixtures.coco(tmp_path)
        with pytest.raises(ValueError, match="split 'test' does not exist"):
            load_table("coco2014", "test", root=root)
        (root / "annotations" / "instances_train2014.json").write_text("{not json")
        with pytest.raises(AnnotationError, match="instances_train2014.json: malformed"):
            load_table("coco2014", "train", root=root)


class TestVOC:
    def test_difficult_policies(self, tmp_path):
        root = fixtures.voc(tmp_path)
        names = ["bottle", "cat", "dog", "person"]
        idx = [{"bottle": 4, "cat": 7, "dog": 11, "person": 14}[n] for n in names]
        expect = {  # per image: bottle, cat, dog, person
            "unknown": [[0, 0, 1, -1], [0, 1, 0, 0], [-1, 0, 0, 0]],
            "negative": [[0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]],
            "positive": [[0, 0, 1, 1], [0, 1, 0, 0], [1, 0, 0, 0]],
        }
        for policy, rows in expect.items():
            t = load_table("voc2007", "trainval", root=root, difficult=policy)
            assert t.targets[:, idx].tolist() == rows, policy
        assert len(t.class_names) == 20 and t.class_names[0] == "aeroplane"

    def test_root_may_be_devkit_or_year_folder_and_stats(self, tmp_path, capsys):
        devkit = fixtures.voc(tmp_path)
        a = load_table("voc2007", "test", root=devkit)
        b = load_table("voc2007", "test", root=devkit / "VOC2007")
        assert (a.targets == b.targets).all() and a.path(0) == devkit / "VOC2007" / "JPEGImages" / "000001.jpg"
        s = stats_json(capsys, "--format", "voc2007", "--root", str(devkit), "--split", "test")
        assert s["unknown_labels"] == 2 and s["empty_images"] == 1 and s["label_cardinality"] == pytest.approx(2 / 3)
        assert s["class_counts"]["dog"] == 1 and s["class_counts"]["person"] == 0

    def test_errors(self, tmp_path):
        devkit = fixtures.voc(tmp_path)
        with pytest.raises(ValueError, match=r"split 'tset' does not exist; available: \['test', 'train'"):
            load_table("voc2007", "tset", root=devkit)
        with pytest.raises(FileNotFoundError, match="no VOC2012 folder"):
            load_table("voc2012", "train", root=devkit)
        (devkit / "VOC2007" / "Annotations" / "000002.xml").write_text(
            fixtures.VOC_XML.format(fixtures.VOC_OBJ.format("dragon", 0))
        )
        with pytest.raises(AnnotationError, match="000002.xml: unknown class 'dragon'"):
            load_table("voc2007", "train", root=devkit)
        (devkit / "VOC2007" / "Annotations" / "000002.xml").write_text("<annotation><object>")
        with pytest.raises(AnnotationError, match="000002.xml: malformed XML"):
            load_table("voc2007", "train", root=devkit)
        (devkit / "VOC2007" / "ImageSets" / "Main" / "val.txt").write_text("000001\n000001\n")
        with pytest.raises(AnnotationError, match="duplicate image ids"):
            load_table("voc2007", "val", root=devkit)


class TestNUSWIDE:
    def test_official_layout_and_empty_rows(self, tmp_path, capsys):
        root = fixtures.nuswide(tmp_path)
        t = load_table("nuswide", "train", root=root)
        assert t.class_names == ["sky", "clouds", "person"]
        assert t.targets.tolist() == [[1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 0, 0]]
        assert t.path(2) == root / "Flickr" / "sky" / "0003_3.jpg"  # Windows separators converted
        assert len(load_table("nuswide", "train", root=root, drop_empty=True)) == 3
        s = stats_json(capsys, "--format", "nuswide", "--root", str(root), "--split", "train")
        assert (
            s["empty_images"] == 1
            and s["label_cardinality"] == 1.0
            and s["class_counts"] == {"sky": 2, "clouds": 1, "person": 1}
        )

    def test_asl_csv_variant(self, tmp_path):
        root = fixtures.nuswide(tmp_path)
        t = load_table("nuswide", "train", root=root, variant="asl_csv")
        assert t.class_names == ["clouds", "person", "sky"]  # sorted, as ASL's loader
        assert t.targets.tolist() == [[1, 0, 1], [0, 1, 0], [0, 0, 0]]
        assert load_table("nuswide", "test", root=root, variant="asl_csv").images == ["images/x4.jpg"]

    def test_label_file_length_mismatch(self, tmp_path):
        root = fixtures.nuswide(tmp_path)
        (root / "Groundtruth" / "TrainTestLabels" / "Labels_sky_Test.txt").write_text("1\n")
        with pytest.raises(AnnotationError, match="Labels_sky_Test.txt: 1 labels for the 2 images"):
            load_table("nuswide", "test", root=root)


class TestVG500AndMIRFLICKR:
    def test_vg500(self, tmp_path):
        root = fixtures.vg500(tmp_path)
        t = load_table("vg500", "train", root=root)
        assert t.num_classes == 500 and t.class_names[7] == "class_7"
        assert np.flatnonzero(t.targets[0]).tolist() == [0, 499] and np.flatnonzero(t.targets[1]).tolist() == [7]
        s = split_statistics(load_table("vg500", "test", root=root))
        assert (s["num_images"], s["empty_images"], s["label_cardinality"], s["missing_files"]) == (1, 1, 0.0, 0)
        (root / "vg_category_500_labels_index.json").write_text(json.dumps({"1.jpg": [500]}))
        with pytest.raises(AnnotationError, match="label index 500 outside"):
            load_table("vg500", "train", root=root)

    def test_mirflickr_seeded_disjoint_split_and_relevant(self, tmp_path):
        root = fixtures.mirflickr(tmp_path)
        train = load_table("mirflickr", "train", root=root, num_images=10)
        test = load_table("mirflickr", "test", root=root, num_images=10)
        assert len(train) == len(test) == 5 and not set(train.images) & set(test.images)
        assert train.images == load_table("mirflickr", "train", root=root, num_images=10).images  # seeded
        everything = load_table("mirflickr", "all", root=root, num_images=10)
        sky, dog = everything.class_names.index("sky"), everything.class_names.index("dog")
        assert everything.targets[:, sky].tolist() == [1, 1, 1] + [0] * 7
        assert everything.targets[:, dog].tolist() == [0, 1] + [0] * 7 + [1]
        s = split_statistics(everything)
        assert s["class_counts"]["sky"] == 3 and s["class_counts"]["dog"] == 2 and s["empty_images"] == 6
        assert s["label_cardinality"] == pytest.approx(0.5)
        relevant = load_table("mirflickr", "all", root=root, num_images=10, relevant=True)
        assert relevant.targets[:, sky].sum() == 1
        (root / "annotations" / "sky.txt").write_text("1\nim2\n")
        with pytest.raises(AnnotationError, match="sky.txt: line 2"):
            load_table("mirflickr", "all", root=root, num_images=10)


def test_unknown_format_and_missing_root():
    with pytest.raises(ValueError, match="available: coco2014, csv"):
        load_table("imagenet", "train", root=".")
    with pytest.raises(ValueError, match="needs `root`"):
        load_table("coco2014", "train")


def test_check_reports_bad_images_by_path(tmp_path, capsys):
    root = fixtures.coco(tmp_path)
    (root / "val2014" / "b.jpg").write_bytes(b"truncated")
    (root / "val2014" / "c.jpg").unlink()
    t = load_table("coco2014", "val", root=root)
    problems = dict(check_images(t))
    assert set(problems) == {str(root / "val2014" / "b.jpg"), str(root / "val2014" / "c.jpg")}
    assert split_statistics(t)["missing_files"] == 1
    assert main(["data", "check", "--format", "coco2014", "--root", str(root), "--split", "val"]) == 1
    out = capsys.readouterr().out
    assert "b.jpg" in out and "c.jpg: file not found" in out and "2 problem(s)" in out
