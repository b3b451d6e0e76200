"""Tiny datasets in each real format, written by the tests themselves (no downloads)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image


def image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), (120, 60, 200)).save(path)


def coco(root: Path) -> Path:
    """val2014 + train2014: 3 images each; categories listed out of id order; image 3 has no annotation."""
    for split in ("train", "val"):
        data = {
            "images": [
                {"id": 1, "file_name": "a.jpg"},
                {"id": 2, "file_name": "b.jpg"},
                {"id": 3, "file_name": "c.jpg"},
            ],
            "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 2, "name": "bicycle"}],
            "annotations": [
                {"id": 10, "image_id": 1, "category_id": 1},
                {"id": 11, "image_id": 1, "category_id": 3},
                {"id": 12, "image_id": 2, "category_id": 3},
                {"id": 13, "image_id": 2, "category_id": 3},  # two cars: one label
            ],
        }
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"instances_{split}2014.json").write_text(json.dumps(data))
        for name in ("a", "b", "c"):
            image(root / f"{split}2014" / f"{name}.jpg")
    return root


VOC_XML = "<annotation>{}</annotation>"
VOC_OBJ = "<object><name>{}</name><difficult>{}</difficult></object>"


def voc(root: Path, year: int = 2007) -> Path:
    """VOCdevkit/VOC<year>: 000001 dog + difficult-only person; 000002 difficult and easy cat;
    000003 difficult bottle."""
    folder = root / "VOCdevkit" / f"VOC{year}"
    objects = {
        "000001": [("dog", 0), ("person", 1)],
        "000002": [("cat", 1), ("cat", 0)],
        "000003": [("bottle", 1)],
    }
    (folder / "Annotations").mkdir(parents=True, exist_ok=True)
    for image_id, objs in objects.items():
        body = "".join(VOC_OBJ.format(n, d) for n, d in objs)
        (folder / "Annotations" / f"{image_id}.xml").write_text(VOC_XML.format(body))
        image(folder / "JPEGImages" / f"{image_id}.jpg")
    main = folder / "ImageSets" / "Main"
    main.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "trainval", "test"):
        (main / f"{split}.txt").write_text("000001\n000002\n000003\n")
    (main / "dog_trainval.txt").write_text("000001  1\n")  # per-class lists are not splits
    return root / "VOCdevkit"


def nuswide(root: Path) -> Path:
    """Official layout with 3 concepts; 4 train images (the last without labels), 2 test images; ASL csv too."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Concepts81.txt").write_text("sky\nclouds\nperson\n")
    (root / "ImageList").mkdir(parents=True, exist_ok=True)
    train = ["actor\\0001_1.jpg", "actor\\0002_2.jpg", "sky\\0003_3.jpg", "sky\\0004_4.jpg"]
    test = ["sky\\0005_5.jpg", "actor\\0006_6.jpg"]
    (root / "ImageList" / "TrainImagelist.txt").write_text("\n".join(train) + "\n")
    (root / "ImageList" / "TestImagelist.txt").write_text("\n".join(test) + "\n")
    labels = {
        "Train": {"sky": "1 0 1 0", "clouds": "1 0 0 0", "person": "0 1 0 0"},
        "Test": {"sky": "1 0", "clouds": "0 0", "person": "0 1"},
    }
    gt = root / "Groundtruth" / "TrainTestLabels"
    gt.mkdir(parents=True, exist_ok=True)
    for part, concepts in labels.items():
        for concept, values in concepts.items():
            (gt / f"Labels_{concept}_{part}.txt").write_text("\n".join(values.split()) + "\n")
    for p in train + test:
        image(root / "Flickr" / p.replace("\\", "/"))
    rows = [
        "filepath,label,split",
        "x1.jpg,\"['sky', 'clouds']\",train",
        "x2.jpg,\"['person']\",train",
        "x3.jpg,[],train",
        "x4.jpg,\"['sky']\",val",
    ]
    (root / "nus_wid_data.csv").write_text("\n".join(rows) + "\n")
    for name in ("x1", "x2", "x3", "x4"):
        image(root / "images" / f"{name}.jpg")
    return root


def vg500(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "train_list_500.txt").write_text("1.jpg\n2.jpg\n")
    (root / "test_list_500.txt").write_text("3.jpg\n")
    (root / "vg_category_500_labels_index.json").write_text(json.dumps({"1.jpg": [0, 499], "2.jpg": [7], "3.jpg": []}))
    for name in ("1", "2", "3"):
        image(root / "VG_100K" / f"{name}.jpg")
    return root


def mirflickr(root: Path, num_images: int = 10) -> Path:
    from labelgraph.data.formats.mirflickr import CONCEPTS

    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for concept in CONCEPTS:
        (root / "annotations" / f"{concept}.txt").write_text("")
        (root / "annotations" / f"{concept}_r1.txt").write_text("")
    (root / "annotations" / "sky.txt").write_text("1\n2\n3\n")
    (root / "annotations" / "sky_r1.txt").write_text("1\n")
    (root / "annotations" / "dog.txt").write_text("2\n10\n")
    for i in range(1, num_images + 1):
        image(root / "mirflickr" / f"im{i}.jpg")
    return root
