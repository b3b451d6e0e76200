"""Training, evaluation and prediction decode JPEGs at the DCT scale the transform needs, and never smaller: the rule
of ``labelgraph.data.transforms.decode_size``, read back from the transform objects and checked at the edges."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from labelgraph.data import transforms
from labelgraph.data.image_io import decode_image
from labelgraph.data.transforms import (
    EVAL_PRESETS,
    TRAIN_PRESETS,
    MultiScaleCrop,
    SquareCrop,
    SquashResize,
    decode_size,
    eval_transform,
    train_transform,
)

SIZES = (224, 448)


def needed_side(pipeline: v2.Compose) -> float:
    """The side a decoded image needs for ``pipeline`` to lose nothing, from its steps: a crop from the image itself
    needs size / smallest scale; a resize to a frame (or a shorter side) needs the frame."""
    needs = []
    for step in pipeline.transforms:
        if isinstance(step, MultiScaleCrop):
            needs.append(step.frame if step.frame is not None else step.size / min(step.scales))
        elif isinstance(step, SquareCrop):
            needs.append(step.frame)
        elif isinstance(step, SquashResize):
            needs.append(step.size)
        elif isinstance(step, v2.Resize):
            needs.append(step.size if isinstance(step.size, int) else max(step.size))
    assert needs, f"{pipeline}: no step that sets the resolution; teach this test about it"
    return max(needs)


def pipelines():
    for size in SIZES:
        for preset in TRAIN_PRESETS:
            yield pytest.param(preset, size, train_transform(preset, size), id=f"train-{preset}-{size}")
        for preset in EVAL_PRESETS:
            yield pytest.param(preset, size, eval_transform(size, preset), id=f"eval-{preset}-{size}")


@pytest.mark.parametrize(("preset", "size", "pipeline"), pipelines())
def test_decode_size_keeps_what_the_transform_needs(preset, size, pipeline):
    assert decode_size(preset, size) >= round(needed_side(pipeline))
    assert decode_size(preset, size) <= round(needed_side(pipeline)) + 1  # and no more: a larger decode costs time


def jpeg(width: int, height: int) -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    buffer = io.BytesIO()
    Image.fromarray(pixels[:height, :width]).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_the_dct_scale_is_the_largest_that_keeps_both_sides(scale):
    d = decode_size("ml_gcn", 224)  # 448
    at_edge = decode_image(jpeg(scale * d, scale * d + 40), (d, d))
    assert tuple(at_edge.shape[-2:]) == (-(-(scale * d + 40) // scale), d)  # reduced by exactly `scale`
    below = decode_image(jpeg(scale * d - 8, scale * d + 40), (d, d))
    assert min(below.shape[-2:]) >= d and below.shape[-1] == -(-(scale * d - 8) // (scale // 2))  # one step less


def test_the_smallest_crop_of_a_camera_photo_spans_the_model_resolution(monkeypatch):
    """ml_gcn's multi-scale crop of a 4000 x 3000 JPEG decoded for 224 px: every crop, the smallest included, is
    resized down (or not at all) to 224, never up."""
    size = 224
    image = decode_image(jpeg(4000, 3000), (decode_size("ml_gcn", size),) * 2)
    assert tuple(image.shape[-2:]) == (750, 1000)  # 1/4: 1/8 would leave 375 < 448
    sources = []
    resize = transforms.resize_image
    monkeypatch.setattr(transforms, "resize_image", lambda img, s: sources.append(img.shape[-2:]) or resize(img, s))
    pipeline = train_transform("ml_gcn", size)
    for seed in range(200):
        torch.manual_seed(seed)
        transforms.random.seed(seed)
        pipeline(image)
    smallest = min(min(shape) for shape in sources)
    assert smallest >= size and smallest < 0.55 * 750  # the 0.5-scale crop was drawn, and spans 224 pixels or more


def test_checking_a_split_reads_every_byte_of_a_scaled_jpeg(tmp_path):
    """``data check`` decodes at 1/8 scale, and still finds a camera photo cut short."""
    from labelgraph.data.label_table import LabelTable
    from labelgraph.data.split_stats import check_images

    data = jpeg(4000, 3000)
    (tmp_path / "whole.jpg").write_bytes(data)
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 3 // 4])
    table = LabelTable(["whole.jpg", "cut.jpg"], ["a"], np.ones((2, 1), dtype=np.int8), root=tmp_path)
    problems = dict(check_images(table))
    assert list(problems) == [str(tmp_path / "cut.jpg")] and "truncated" in problems[str(tmp_path / "cut.jpg")]
