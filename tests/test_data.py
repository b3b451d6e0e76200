"""Data: the CSV format, robust image loading, transforms, dataset and data module."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from labelgraph.data import (
    AnnotationError,
    ImageLoadError,
    LabelTable,
    MultiLabelDataModule,
    MultiLabelDataset,
    collate_skipping_bad,
    load_image,
    read_csv,
    read_image,
    write_csv,
)
from labelgraph.data.transforms import (
    EVAL_PRESETS,
    TRAIN_PRESETS,
    Cutout,
    MultiScaleCrop,
    eval_transform,
    train_transform,
)


def write(path, text):
    path.write_text(text)
    return path


class TestCSVFormat:
    def test_present_unknown_absent_and_empty(self, tmp_path):
        p = write(tmp_path / "a.csv", "image,labels\nx.jpg,cat|?dog\ny.jpg,\nz.jpg,dog\n")
        t = read_csv(p)
        assert t.class_names == ["cat", "dog"]
        assert t.targets.tolist() == [[1, -1], [0, 0], [0, 1]]
        assert t.path(0) == tmp_path / "x.jpg"

    def test_explicit_class_order_and_extra_columns(self, tmp_path):
        p = write(tmp_path / "a.csv", "id,image,labels,note\n1,x.jpg,b,hi\n2,y.jpg,a|b,\n")
        t = read_csv(p, class_names=["b", "a"])
        assert t.targets.tolist() == [[1, 0], [1, 1]]

    def test_round_trip(self, tmp_path):
        table = LabelTable(["a.png", "b.png"], ["x", "y", "z"], np.array([[1, -1, 0], [0, 0, 1]]), root=tmp_path)
        write_csv(table, tmp_path / "t.csv")
        again = read_csv(tmp_path / "t.csv", class_names=["x", "y", "z"])
        assert again.images == table.images and (again.targets == table.targets).all()

    @pytest.mark.parametrize(
        "text, match",
        [
            ("", "empty"),
            ("file,tags\nx.jpg,a\n", "lacks the columns"),
            ("image,labels\n,a\n", "line 2: empty image path"),
            ("image,labels\nx.jpg,a||b\n", "line 2: empty label name"),
            ("image,labels\nx.jpg,a\ny.jpg,zebra\n", "line 3: unknown class 'zebra'"),
            ("image,labels\nx.jpg,a|?a\n", "both present and unknown"),
            ("image,labels\nx.jpg,a,extra\n", "expected 2 columns"),
            ("image,labels\nx.jpg,a\ny.jpg,b\nx.jpg,b\n", "line 4: image 'x.jpg' is already listed on line 2"),
        ],
    )
    def test_malformed_files_name_file_and_line(self, tmp_path, text, match):
        p = write(tmp_path / "bad.csv", text)
        with pytest.raises(AnnotationError, match=match) as info:
            read_csv(p, class_names=["a", "b"])
        assert "bad.csv" in str(info.value)

    def test_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nope.csv"):
            read_csv(tmp_path / "nope.csv")


class TestImageLoading:
    @pytest.mark.parametrize("mode", ["L", "1", "CMYK", "P", "RGBA", "LA", "I;16", "I", "F"])
    def test_every_mode_becomes_rgb(self, tmp_path, mode):
        img = Image.new(mode, (10, 8))
        suffix = ".tiff" if mode in ("CMYK", "F", "I", "I;16") else ".png"
        img.save(tmp_path / f"x{suffix}")
        out = load_image(tmp_path / f"x{suffix}")
        assert out.mode == "RGB" and out.size == (10, 8)

    def test_transparent_pixels_become_white(self, tmp_path):
        Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(tmp_path / "t.png")
        assert load_image(tmp_path / "t.png").getpixel((0, 0)) == (255, 255, 255)

    def test_exif_orientation_is_applied(self, tmp_path):
        img = Image.new("RGB", (20, 10))
        exif = img.getexif()
        exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
        img.save(tmp_path / "r.jpg", exif=exif)
        assert load_image(tmp_path / "r.jpg").size == (10, 20)

    def test_truncated_empty_missing_and_non_image_files_name_the_path(self, tmp_path):
        buf = io.BytesIO()
        Image.new("RGB", (64, 64), (10, 200, 30)).save(buf, format="JPEG")
        (tmp_path / "trunc.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
        (tmp_path / "empty.jpg").write_bytes(b"")
        (tmp_path / "text.jpg").write_text("hello")
        for name in ("trunc.jpg", "empty.jpg", "text.jpg", "missing.jpg"):
            for reader in (load_image, read_image):
                with pytest.raises(ImageLoadError, match=name):
                    reader(tmp_path / name)


def as_tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(img)).permute(2, 0, 1)


def photo_like(w: int = 96, h: int = 72) -> Image.Image:
    """Smooth gradients and noise: something JPEG encodes as it encodes photographs."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(xx / 7) * 80 + 128, xx / w * 255, yy / h * 255], -1) + rng.normal(0, 6, (h, w, 3))
    return Image.fromarray(base.clip(0, 255).astype(np.uint8))


class TestReadImage:
    """``read_image`` (the data pipeline's reader: torchvision's JPEG decoder, PIL for the rest) means what
    ``load_image`` means, pixel for pixel."""

    @pytest.mark.parametrize(
        "mode, suffix",
        [("RGB", ".jpg"), ("L", ".jpg"), ("CMYK", ".jpg"), ("RGB", ".png"), ("RGBA", ".png"), ("P", ".png"),
         ("I;16", ".tiff"), ("LA", ".png")],
    )  # fmt: skip
    def test_same_pixels_as_load_image(self, tmp_path, mode, suffix):
        img = photo_like()
        img = img.convert(mode) if mode != "RGBA" else img.convert("RGBA").rotate(20)  # transparent corners
        img.save(tmp_path / f"x{suffix}")
        out = read_image(tmp_path / f"x{suffix}")
        assert out.dtype == torch.uint8 and out.shape == (3, 72, 96)
        assert torch.equal(out, as_tensor(load_image(tmp_path / f"x{suffix}")))

    def test_exif_orientation_is_applied(self, tmp_path):
        img = photo_like(20, 10)
        exif = img.getexif()
        exif[0x0112] = 6
        img.save(tmp_path / "r.jpg", exif=exif)
        out = read_image(tmp_path / "r.jpg")
        assert out.shape == (3, 20, 10) and torch.equal(out, as_tensor(load_image(tmp_path / "r.jpg")))

    def test_jpegs_go_to_torchvision_and_the_rest_to_pil(self, tmp_path, monkeypatch):
        from labelgraph.data import image_io

        real, calls = image_io.decode_jpeg, []

        def counting(*args, **kwargs):
            calls.append(1)
            return real(*args, **kwargs)

        monkeypatch.setattr(image_io, "decode_jpeg", counting)
        for mode in ("RGB", "L", "CMYK"):
            photo_like().convert(mode).save(tmp_path / f"{mode}.jpg")
        photo_like().save(tmp_path / "x.png")
        read_image(tmp_path / "RGB.jpg"), read_image(tmp_path / "L.jpg")
        assert len(calls) == 2
        read_image(tmp_path / "CMYK.jpg"), read_image(tmp_path / "x.png")
        assert len(calls) == 2

    @pytest.mark.parametrize("need, expected", [(None, (72, 96)), (36, (36, 48)), (20, (36, 48)), (17, (18, 24)),
                                                (40, (72, 96))])  # fmt: skip
    def test_large_jpegs_decode_at_a_dct_scale_that_keeps_the_needed_size(self, tmp_path, need, expected):
        photo_like(96, 72).save(tmp_path / "big.jpg", quality=95)
        out = read_image(tmp_path / "big.jpg", (need, need) if need else None)
        assert tuple(out.shape[-2:]) == expected  # draft scales 1/2, 1/4, ...: both sides stay >= need
        if need:
            assert min(out.shape[-2:]) >= need
        if expected == (36, 48):  # the DCT-scaled decode is the image, smaller: close to a resize of it
            reference = as_tensor(load_image(tmp_path / "big.jpg").resize((48, 36), Image.BOX))
            assert (out.float() - reference.float()).abs().mean() < 3


class TestDataset:
    def make(self, tmp_path, skip):
        Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
        (tmp_path / "bad.png").write_bytes(b"broken")
        table = LabelTable(["ok.png", "bad.png"], ["a"], np.array([[1], [0]]), root=tmp_path)
        return MultiLabelDataset(table, eval_transform(16), skip_bad_images=skip)

    def test_item_is_dense_channels_last_uint8_and_int8_target(self, tmp_path):
        image, target = self.make(tmp_path, skip=False)[0]
        assert image.shape == (3, 16, 16) and image.dtype == torch.uint8 and image.permute(1, 2, 0).is_contiguous()
        assert target.dtype == torch.int8 and target.tolist() == [1]

    def test_bad_image_raises_or_is_skipped_and_counted(self, tmp_path):
        with pytest.raises(ImageLoadError, match="bad.png"):
            self.make(tmp_path, skip=False)[1]
        ds = self.make(tmp_path, skip=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            batch = collate_skipping_bad([ds[0], ds[1]])
        assert batch[0].shape == (1, 3, 16, 16) and batch[0].is_contiguous(memory_format=torch.channels_last)
        assert ds.skipped == [str(tmp_path / "bad.png")] and "bad.png" in str(caught[0].message)
        assert collate_skipping_bad([ds[1]]) is None


class TestTransforms:
    def test_multiscale_crop_size_and_offsets(self):
        import random

        random.seed(0)
        crop = MultiScaleCrop(32)
        for _ in range(20):
            assert crop(torch.zeros(3, 60, 100, dtype=torch.uint8)).shape == (3, 32, 32)
        offsets = MultiScaleCrop._offsets(100, 60, 60, 40)  # steps (10, 5)
        assert len(offsets) == 13 and (40, 20) in offsets and (20, 10) in offsets

    def test_cutout_paints_a_half_size_square(self):
        import random

        for seed in range(40):
            random.seed(seed)
            img = Cutout(0.5)(torch.tensor([1, 2, 3], dtype=torch.uint8).view(3, 1, 1).expand(3, 40, 40))
            changed = (img.permute(1, 2, 0).numpy() != (1, 2, 3)).any(-1)
            rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
            assert changed.sum() == len(rows) * len(cols)  # one solid rectangle
            # a 20-px side (PIL's box is inclusive: 21), clipped by the border to no less than half of it (11);
            # Query2Label's --cutout gives a few-pixel patch, which this refuses
            assert 11 <= len(rows) <= 21 and 11 <= len(cols) <= 21, (seed, len(rows), len(cols))

    @staticmethod
    def draws(preset: str, image: Image.Image, n: int = 24) -> list[torch.Tensor]:
        import random

        out = []
        for seed in range(n):
            random.seed(seed)
            torch.manual_seed(seed)
            out.append(train_transform(preset, 24)(image))
        return out

    @staticmethod
    def left_bright() -> Image.Image:
        """Red falls from left to right, green from top to bottom: every crop keeps its left brighter than its right
        (a flip reverses that), and crops of different sizes and places have different means."""
        red = np.tile(np.linspace(255, 0, 48, dtype=np.float32), (40, 1))
        green = np.tile(np.linspace(255, 0, 40, dtype=np.float32)[:, None], (1, 48))
        return Image.fromarray(np.stack([red, green, np.full_like(red, 90)], -1).astype(np.uint8))

    @pytest.mark.parametrize("preset", TRAIN_PRESETS)
    def test_presets_give_dense_channels_last_uint8_square_tensors(self, preset):
        for x in self.draws(preset, self.left_bright(), n=4):
            assert x.shape == (3, 24, 24) and x.dtype == torch.uint8 and x.permute(1, 2, 0).is_contiguous()

    @pytest.mark.parametrize("preset", TRAIN_PRESETS)
    def test_a_pil_image_and_its_tensor_give_the_same_draws(self, preset):
        img = self.left_bright()
        tensor = torch.from_numpy(np.array(img)).permute(2, 0, 1)  # as read_image returns it: a (3, H, W) view
        pairs = zip(self.draws(preset, img, 4), self.draws(preset, tensor, 4), strict=True)
        assert all(torch.equal(a, b) for a, b in pairs)

    def test_none_is_the_eval_pipeline(self):
        img = self.left_bright()
        assert all(torch.equal(x, eval_transform(24)(img)) for x in self.draws("none", img, n=3))

    def test_flip_is_a_resize_flipped_half_the_time(self):
        img = self.left_bright()
        plain = eval_transform(24)(img)
        flipped = [torch.equal(x, plain.flip(-1)) for x in self.draws("flip", img)]
        assert all(f or torch.equal(x, plain) for f, x in zip(flipped, self.draws("flip", img), strict=True))
        assert 4 <= sum(flipped) <= 20  # p = 0.5 over 24 draws

    @pytest.mark.parametrize("preset", ["ml_gcn", "add_gcn"])
    def test_multiscale_presets_crop_and_flip(self, preset):
        img = self.left_bright()
        plain = eval_transform(24)(img)
        outs = [x.float() for x in self.draws(preset, img)]
        left_bright = [x[0, :, :4].mean() > x[0, :, -4:].mean() for x in outs]  # red: bright left third
        assert 4 <= sum(left_bright) <= 20  # flipped about half the time
        plain, outs = plain.float() / 255, [x / 255 for x in outs]
        assert sum(not torch.allclose(x, plain, atol=0.02) and not torch.allclose(x, plain.flip(-1), atol=0.02)
                   for x in outs) >= 12  # fmt: skip  # most draws are crops, not the whole image

    def test_ssgrl_crops_but_never_flips(self):
        img = self.left_bright()
        outs = [x.float() for x in self.draws("ssgrl", img)]
        assert all(x[0, :, :3].mean() > x[0, :, -3:].mean() for x in outs)  # the bright left stays left
        assert len({round(float(x.mean()), 4) for x in outs}) >= 3  # several crop sizes

    def test_asl_and_graphmlc_are_the_papers_steps(self):
        # their random colour and affine operations are torchvision's; what is ours is which steps, how often
        asl = train_transform("asl", 24).transforms[1:]  # after the PIL -> tensor step
        assert isinstance(asl[1], Cutout) and asl[1].fraction == 0.5 and isinstance(asl[2], v2.RandAugment)
        graphmlc = train_transform("graphmlc", 24).transforms[1:]
        with pytest.warns(DeprecationWarning, match="'review' is now called 'graphmlc'"):
            assert repr(train_transform("review", 24)) == repr(train_transform("graphmlc", 24))  # the old name
        assert [type(t).__name__ for t in graphmlc[:4]] == [
            "SquashResize",
            "RandomApply",
            "RandomApply",
            "RandomHorizontalFlip",
        ]
        assert (graphmlc[1].p, graphmlc[2].p) == (0.3, 0.5)
        assert graphmlc[2].transforms[0].degrees == [-45.0, 45.0]

    @pytest.mark.parametrize("preset", EVAL_PRESETS)
    def test_eval_presets(self, preset):
        assert eval_transform(36, preset)(Image.new("RGB", (90, 45))).shape == (3, 36, 36)

    def test_center_crop_keeps_the_central_region_as_ssgrl(self):
        img = Image.new("RGB", (80, 40), (0, 0, 0))
        img.paste((255, 255, 255), (0, 0, 20, 40))  # a white band on the left quarter, cropped away
        x = eval_transform(36, "center_crop")(img)  # shorter side -> 40, then the central 36 x 36
        assert x.max() == 0
        assert eval_transform(36, "resize")(img).max() == 255

    def test_unknown_preset(self):
        with pytest.raises(ValueError, match="available"):
            train_transform("fancy", 24)
        with pytest.raises(ValueError, match="available"):
            eval_transform(24, "fancy")


class TestDataModule:
    def test_classes_graph_from_train_only_and_loaders(self, tiny_dataset):
        dm = MultiLabelDataModule(
            train=str(tiny_dataset / "train.csv"),
            val=str(tiny_dataset / "val.csv"),
            classes=str(tiny_dataset / "classes.txt"),
            image_size=32,
            batch_size=8,
            num_workers=0,
        )
        assert dm.num_classes == 10 and dm.class_names[0] == "circle"
        train_targets = dm.train_table.targets
        assert dm.label_graph.counts.tolist() == (train_targets == 1).sum(0).tolist()
        assert dm.label_graph.num_images == 48
        dm.setup("fit")
        images, targets = next(iter(dm.train_dataloader()))
        assert images.shape == (8, 3, 32, 32) and targets.shape == (8, 10)
        assert dm.test_table is dm.val_table or dm.test_table.images == dm.val_table.images

    def test_missing_images_are_reported_with_the_annotation_file(self, tmp_path):
        write(tmp_path / "train.csv", "image,labels\nnope1.png,a\nnope2.png,b\n")
        dm = MultiLabelDataModule(train=str(tmp_path / "train.csv"), num_workers=0)
        with pytest.raises(FileNotFoundError, match=r"train.csv: 2 image file\(s\) not found"):
            _ = dm.num_classes

    def test_unknown_transform_fails_at_construction(self, tmp_path):
        with pytest.raises(ValueError, match="train_transform"):
            MultiLabelDataModule(train="x.csv", train_transform="bogus")
        with pytest.raises(ValueError, match="eval_transform"):
            MultiLabelDataModule(train="x.csv", eval_transform="bogus")

    def test_missing_split_for_stage(self, tiny_dataset):
        dm = MultiLabelDataModule(train=str(tiny_dataset / "train.csv"), num_workers=0)
        with pytest.raises(ValueError, match="no test split"):
            dm.setup("test")
