"""What makes Query2Label and SADCL what they are: label queries, position encoding, contrastive terms, memory bank."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from labelgraph import create_model
from labelgraph.apis import save_model
from labelgraph.cli import main as cli_main
from labelgraph.engine.schedulers import OneCycleLR
from labelgraph.engine.task import MultiLabelTask
from labelgraph.layers.position_encoding import sine_position_encoding
from labelgraph.losses import PrototypeToSampleContrastiveLoss, SampleToSampleContrastiveLoss
from labelgraph.models import initialise_from

from .conftest import TINY_BACKBONE, TINY_SIZE
from .test_task import datamodule, trainer

C = 4
SMALL = {"dim_feedforward": 64}  # the tiny backbone's width is 96: 4 heads of 24


def build(name: str, **kwargs):
    torch.manual_seed(0)
    return create_model(name, num_classes=C, backbone=TINY_BACKBONE, **{**SMALL, **kwargs})


class TestQuery2Label:
    def test_any_input_size_works_and_the_position_encoding_follows_the_map(self):
        model = build("query2label").eval()
        for size in ((64, 64), (96, 160)):
            assert torch.isfinite(model(torch.rand(2, 3, *size))).all()
        small, large = model.features(torch.rand(1, 3, 64, 64)), model.features(torch.rand(1, 3, 96, 160))
        assert small[-1].shape[-2:] == (2, 2) and large[-1].shape[-2:] == (3, 5)

    def test_sine_position_encoding_by_hand(self):
        pe = sine_position_encoding(3, 5, 8)  # half = 4 frequencies per axis: 1, 1, 100, 100 at T = 10000
        assert pe.shape == (8, 3, 5)
        y, x = 2 / 3 * 2 * math.pi, 4 / 5 * 2 * math.pi  # row index 1 -> 2 / H, column 3 -> 4 / W, times 2π
        expected_row = [math.sin(y), math.cos(y), math.sin(y / 100), math.cos(y / 100)]
        expected_col = [math.sin(x), math.cos(x), math.sin(x / 100), math.cos(x / 100)]
        assert torch.allclose(pe[:, 1, 3], torch.tensor(expected_row + expected_col), atol=1e-5)

    def test_queries_do_not_see_each_other_without_decoder_self_attention(self):
        x = torch.rand(1, 3, 64, 64)
        for self_attention, isolated in ((False, True), (True, False)):
            model = build("query2label", decoder_self_attention=self_attention).eval()
            feats = model.features(x)
            before = model.head.label_features(feats)
            with torch.no_grad():
                model.head.query_embed.weight[0].add_(1.0)  # change label 0's query only
            after = model.head.label_features(feats)
            assert not torch.allclose(before[:, 0], after[:, 0])
            assert torch.allclose(before[:, 1:], after[:, 1:], atol=1e-6) == isolated

    def test_group_wise_linear_is_one_classifier_per_class(self):
        model = build("query2label").eval()
        h = model.head.label_features(model.features(torch.rand(2, 3, 64, 64)))
        w, b = model.head.classifier.weight, model.head.classifier.bias
        expected = torch.stack([h[:, c] @ w[c] + b[c] for c in range(C)], dim=1)
        assert torch.allclose(model.head.classifier(h), expected, atol=1e-5)

    def test_official_backbone_setting_on_pretrained_weights_only(self, tmp_path):
        from labelgraph.models import Backbone

        weights = tmp_path / "backbone.safetensors"
        save_file({k: v.contiguous() for k, v in Backbone(TINY_BACKBONE).body.state_dict().items()}, str(weights))

        def setting(model):
            frozen_bn = not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.modules())
            return frozen_bn, {n.split(".")[1] for n, p in model.backbone.named_parameters() if p.requires_grad}

        pretrained = build("query2label", pretrained=str(weights))
        assert setting(pretrained) == (True, {"layer2", "layer3", "layer4"})  # the official ResNet setting
        # from random weights, frozen statistics and stages would stay random: everything trains
        assert setting(build("query2label")) == (False, {"conv1", "bn1", "layer1", "layer2", "layer3", "layer4"})
        forced = build("query2label", trainable_stages=3, frozen_batchnorm=True)
        assert setting(forced) == (True, {"layer2", "layer3", "layer4"})
        assert setting(build("sadcl", pretrained=str(weights)))[0]
        # the resolved setting is recorded, so a rebuild without the weights file is the same network
        save_model(pretrained, tmp_path / "m", class_names=list("abcd"), image_size=64)
        from labelgraph.models import load_model

        loaded, _ = load_model(tmp_path / "m")
        assert setting(loaded) == setting(pretrained)
        assert build("query2label", hidden=64).head.input_proj.out_channels == 64  # projection when widths differ

    def test_feed_forward_is_four_times_the_hidden_width(self):
        ffn = build("query2label", dim_feedforward=None).head.transformer
        widths = {m.out_features for n, m in ffn.named_modules() if isinstance(m, torch.nn.Linear) and "ffn" in n}
        assert max(widths) == 4 * 96  # test_resnet is 96 wide; R101's 2048 gives the official 8192
        assert 4 * 64 in {m.out_features for m in build("query2label", hidden=64, dim_feedforward=None).modules()
                          if isinstance(m, torch.nn.Linear)}  # fmt: skip


def s2s_by_hand(z, targets, bank, bank_classes, t=0.2):
    """Supervised contrastive loss written as loops over anchors and pool entries."""
    z, bank = F.normalize(z, dim=-1), F.normalize(bank, dim=-1)
    pool = [(z[b, c], c) for b in range(z.shape[0]) for c in range(z.shape[1]) if targets[b, c] == 1]
    anchors = len(pool)
    pool += [(bank[m], int(bank_classes[m])) for m in range(len(bank))]
    losses = []
    for i in range(anchors):
        zi, ci = pool[i]
        denom = sum(math.exp(float(zi @ za) / t) for a, (za, _) in enumerate(pool) if a != i)
        logs = [float(zi @ zp) / t - math.log(denom) for p, (zp, cp) in enumerate(pool) if p != i and cp == ci]
        if logs:
            losses.append(-sum(logs) / len(logs))
    return sum(losses) / len(losses)


def p2s_by_hand(z, targets, prototypes, t=0.07):
    z, prototypes = F.normalize(z, dim=-1), F.normalize(prototypes, dim=-1)
    total, positives = 0.0, int((targets == 1).sum())
    for c in range(z.shape[1]):
        s = [float(z[b, c] @ prototypes[c]) / t for b in range(z.shape[0])]
        pos = [s[b] for b in range(z.shape[0]) if targets[b, c] == 1]
        known = [s[b] for b in range(z.shape[0]) if targets[b, c] >= 0]
        if pos:
            total += math.log(sum(map(math.exp, pos))) - math.log(sum(map(math.exp, known)))
    return -total / positives


class TestContrastiveLosses:
    targets = torch.tensor([[1, 0, 1, 0], [1, 1, -1, 0], [0, 1, 1, 0]])

    def test_sample_to_sample_equals_the_explicit_computation(self):
        torch.manual_seed(1)
        z, bank = torch.randn(3, C, 6, dtype=torch.double), torch.randn(3, 6, dtype=torch.double)
        bank_classes = torch.tensor([0, 2, 3])
        loss = SampleToSampleContrastiveLoss(weight=1.0)
        out = {"projected": z, "memory_projected": bank, "memory_classes": bank_classes}
        got = loss(out, self.targets).item()
        assert got == pytest.approx(s2s_by_hand(z, self.targets, bank, bank_classes), rel=1e-6)
        assert SampleToSampleContrastiveLoss(weight=100.0)(out, self.targets).item() == pytest.approx(100 * got)
        empty = {"projected": z, "memory_projected": bank[:0], "memory_classes": bank_classes[:0]}
        assert loss(empty, self.targets).item() == pytest.approx(s2s_by_hand(z, self.targets, bank[:0], []), rel=1e-6)

    def test_prototype_to_sample_equals_the_explicit_computation(self):
        torch.manual_seed(2)
        z, prototypes = torch.randn(3, C, 6, dtype=torch.double), torch.randn(C, 6, dtype=torch.double)
        got = PrototypeToSampleContrastiveLoss(weight=1.0)(
            {"projected": z, "prototypes_projected": prototypes}, self.targets
        )
        assert got.item() == pytest.approx(p2s_by_hand(z, self.targets, prototypes), rel=1e-6)

    def test_no_present_label_gives_a_zero_loss_with_a_graph(self):
        z = torch.randn(2, C, 6, requires_grad=True)
        none = torch.zeros(2, C, dtype=torch.long)
        out = {
            "projected": z,
            "memory_projected": z[0, :0],
            "memory_classes": none[0, :0],
            "prototypes_projected": z[0],
        }
        for loss in (SampleToSampleContrastiveLoss(), PrototypeToSampleContrastiveLoss()):
            value = loss(out, none)
            assert value.item() == 0 and value.requires_grad


class TestSADCL:
    def test_memory_bank_stores_only_confident_positives_per_class_in_order(self):
        model = build("sadcl", memory_size=2)
        head = model.head
        assert not head.memory_valid.any()  # random prototypes: the bank starts empty
        h = torch.randn(3, C, head.hidden)
        logits = torch.tensor([[5.0, 5.0, -5.0, 5.0], [5.0, 0.0, 5.0, 5.0], [5.0, 5.0, 5.0, 5.0]])
        targets = torch.tensor([[1, 0, 1, 1], [1, 1, 1, -1], [1, 1, 0, 1]])
        head.after_loss({"logits": logits, "label_features": h}, targets)
        # class 0: images 0, 1, 2 are confident positives -> FIFO of 2 keeps image 2 in slot 0, image 1 in slot 1
        assert torch.equal(head.memory[0, 0], h[2, 0]) and torch.equal(head.memory[0, 1], h[1, 0])
        # class 1: image 1 is positive but not confident (p = 0.5), image 0 confident but absent -> only image 2
        assert head.memory_valid[1].tolist() == [True, False] and torch.equal(head.memory[1, 0], h[2, 1])
        # class 2: image 0 positive but p < 0.8, image 1 stored; class 3: image 1 unknown -> images 0 and 2
        assert head.memory_valid[2].tolist() == [True, False] and torch.equal(head.memory[2, 0], h[1, 2])
        assert torch.equal(head.memory[3, 0], h[0, 3]) and torch.equal(head.memory[3, 1], h[2, 3])
        out = model.forward_train(torch.rand(2, 3, 64, 64))
        assert out["memory_projected"].shape == (6, 1024) and out["memory_classes"].tolist() == [0, 0, 1, 2, 3, 3]

    def test_inference_is_query2label(self, tmp_path):
        q2l = build("query2label").eval()
        save_model(q2l, tmp_path / "q2l", class_names=list("abcd"), image_size=64)
        model = build("sadcl").eval()
        report = initialise_from(model, tmp_path / "q2l")
        assert not report["skipped"] and all(k.startswith("head.") for k in report["kept"])
        x = torch.rand(2, 3, 64, 64)
        assert torch.equal(model(x), q2l(x))
        with pytest.raises(ValueError, match="none of its tensors"):
            initialise_from(torch.nn.Linear(2, 2), tmp_path / "q2l")

    def test_prototypes_command_from_a_checkpoint(self, tiny_dataset, tmp_path):
        L.seed_everything(0)
        dm = datamodule(tiny_dataset)
        task = MultiLabelTask(
            method="query2label",
            backbone=TINY_BACKBONE,
            model_args=SMALL,
            num_classes=dm.num_classes,
            class_names=dm.class_names,
            optimizer=lambda p: torch.optim.AdamW(p, lr=1e-4),
        )
        t = trainer(tmp_path, epochs=1, max_steps=1, enable_checkpointing=False, limit_val_batches=0)
        t.fit(task, dm)
        t.save_checkpoint(tmp_path / "q2l.ckpt")
        out = tmp_path / "prototypes.safetensors"
        args = [
            "prototypes",
            "--model",
            str(tmp_path / "q2l.ckpt"),
            "--split",
            str(tiny_dataset / "train.csv"),
        ]
        args += ["--classes", str(tiny_dataset / "classes.txt"), "--out", str(out), "--image-size", str(TINY_SIZE)]
        with pytest.warns(UserWarning, match="no positive predicted above"):  # one step of training: nothing confident
            assert cli_main(args) == 0
        prototypes = load_file(str(out))["prototypes"]
        assert prototypes.shape == (dm.num_classes, 96) and torch.isfinite(prototypes).all()
        sadcl = create_model("sadcl", num_classes=dm.num_classes, backbone=TINY_BACKBONE, prototypes=str(out), **SMALL)
        assert torch.equal(sadcl.head.prototypes.detach(), prototypes)
        assert sadcl.head.memory_valid.all() and torch.equal(sadcl.head.memory[:, 0], prototypes)

    def test_bad_prototypes_file(self, tmp_path):
        path = tmp_path / "p.safetensors"
        save_file({"prototypes": torch.zeros(C + 1, 96)}, str(path))
        with pytest.raises(ValueError, match="for 4 classes"):
            build("sadcl", prototypes=str(path))
        with pytest.raises(FileNotFoundError, match="labelgraph prototypes"):
            build("sadcl", prototypes=str(tmp_path / "missing.safetensors"))

    def test_training_step_adds_both_terms_and_fills_the_bank(self, tiny_dataset, tmp_path):
        dm = datamodule(tiny_dataset)
        task = MultiLabelTask(
            method="sadcl",
            backbone=TINY_BACKBONE,
            model_args={**SMALL, "memory_threshold": 0.0},
            num_classes=dm.num_classes,
            class_names=dm.class_names,
            optimizer=lambda p: torch.optim.AdamW(p, lr=1e-4),
        )
        assert [a.name for a in task.aux_losses] == ["s2s_loss", "p2s_loss"]
        t = trainer(tmp_path, epochs=1, max_steps=2, enable_checkpointing=False, limit_val_batches=0)
        t.fit(task, dm)
        assert {"train/s2s_loss", "train/p2s_loss"} <= set(t.callback_metrics)
        assert task.model.head.memory_valid.any()


def test_one_cycle_steps_per_batch_and_keeps_the_group_multipliers(tiny_dataset, tmp_path):
    dm = datamodule(tiny_dataset)
    task = MultiLabelTask(
        backbone=TINY_BACKBONE,
        num_classes=dm.num_classes,
        class_names=dm.class_names,
        optimizer=lambda p: torch.optim.AdamW(p, lr=1e-3),
        lr_scheduler=lambda o: OneCycleLR(o),
        backbone_lr_mult=0.1,
    )
    t = trainer(tmp_path, epochs=2, enable_checkpointing=False, limit_val_batches=0)
    t.fit(task, dm)
    config = t.lr_scheduler_configs[0]
    scheduler = config.scheduler
    assert config.interval == "step" and scheduler.total_steps == 6  # 48 images / 16 x 2 epochs
    assert [g["max_lr"] for g in scheduler.optimizer.param_groups] == pytest.approx([1e-4, 1e-3])
    assert scheduler.last_epoch == 6
    with pytest.raises(ValueError, match="total_steps"):
        OneCycleLR(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))


def test_the_head_built_directly_has_the_builders_feed_forward_width():
    from labelgraph.models.query2label import Query2LabelHead

    head = Query2LabelHead(in_channels=64, num_classes=3)  # hidden = 64: feed-forward 4 x 64, as query2label builds
    built = create_model("query2label", num_classes=3, backbone=TINY_BACKBONE).head  # test_resnet: 512 wide
    assert head.transformer.encoder[0].ffn.net[0].out_features == 256
    assert built.transformer.encoder[0].ffn.net[0].out_features == 4 * built.hidden
