"""Losses: BCE masking, ASL against its formula and its reductions to BCE."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from labelgraph.losses import ASL_PRESETS, AsymmetricLoss, MaskedBCEWithLogitsLoss


def test_bce_equals_torch_without_unknowns():
    logits, targets = torch.randn(6, 5), torch.randint(0, 2, (6, 5))
    expected = nn.BCEWithLogitsLoss()(logits, targets.float())
    assert MaskedBCEWithLogitsLoss()(logits, targets) == pytest.approx(expected.item(), rel=1e-6)
    assert nn.MultiLabelSoftMarginLoss()(logits, targets.float()).item() == pytest.approx(expected.item(), rel=1e-6)


def test_bce_ignores_unknown_entries():
    logits = torch.randn(4, 3, requires_grad=True)
    targets = torch.tensor([[1, -1, 0], [0, 1, -1], [1, 1, 0], [-1, 0, 0]])
    loss = MaskedBCEWithLogitsLoss()(logits, targets)
    loss.backward()
    assert (logits.grad[targets == -1] == 0).all()
    known = targets >= 0
    expected = nn.functional.binary_cross_entropy_with_logits(logits[known], targets[known].float())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    negative = MaskedBCEWithLogitsLoss(unknown="negative")(logits, targets)
    assert negative.item() == pytest.approx(
        nn.functional.binary_cross_entropy_with_logits(logits, (targets == 1).float()).item(), rel=1e-6
    )


def test_asl_reduces_to_bce_sum_without_focusing_or_clip():
    logits, targets = torch.randn(8, 6), torch.randint(0, 2, (8, 6))
    asl = AsymmetricLoss(gamma_neg=0, gamma_pos=0, clip=0, eps=1e-12)(logits, targets)
    bce = nn.functional.binary_cross_entropy_with_logits(logits, targets.float(), reduction="sum")
    assert asl.item() == pytest.approx(bce.item(), rel=1e-5)


def test_asl_single_entries_by_hand():
    # positive, logit 0: p = .5, gamma_pos = 1 -> -(1 - .5)^1 log .5
    pos = AsymmetricLoss(gamma_neg=4, gamma_pos=1, clip=0.05)(torch.zeros(1, 1), torch.ones(1, 1, dtype=torch.long))
    assert pos.item() == pytest.approx(-0.5 * math.log(0.5), rel=1e-6)
    # negative, logit 0: p_m = .5 - .05 = .45 -> -(.45)^4 log(1 - .45)
    neg = AsymmetricLoss(gamma_neg=4, gamma_pos=1, clip=0.05)(torch.zeros(1, 1), torch.zeros(1, 1, dtype=torch.long))
    assert neg.item() == pytest.approx(-(0.45**4) * math.log(0.55), rel=1e-6)
    # an easy negative below the margin costs nothing
    easy = AsymmetricLoss(clip=0.05)(torch.tensor([[-4.0]]), torch.zeros(1, 1, dtype=torch.long))  # p = .018
    assert easy.item() == pytest.approx(0.0, abs=1e-7)


def test_asl_presets_and_query2label_scaling():
    logits, targets = torch.randn(4, 5), torch.randint(0, 2, (4, 5))
    q2l = AsymmetricLoss.from_preset("query2label")(logits, targets)
    raw = AsymmetricLoss(gamma_neg=2, gamma_pos=0, clip=0, reduction="sum")(logits, targets)
    assert q2l.item() == pytest.approx(raw.item() / 20 * 1000, rel=1e-5)  # -sum / (B C) * 1000
    asl = AsymmetricLoss.from_preset("asl")
    assert (asl.gamma_neg, asl.gamma_pos, asl.clip, asl.eps, asl.reduction) == (4.0, 0.0, 0.05, 1e-8, "sum")
    q2l_loss = AsymmetricLoss.from_preset("query2label")
    assert (q2l_loss.gamma_neg, q2l_loss.eps, q2l_loss.scale) == (2.0, 1e-5, 1000.0)  # Query2Label's eps is 1e-5
    sadcl = AsymmetricLoss.from_preset("sadcl")
    assert (sadcl.gamma_neg, sadcl.gamma_pos, sadcl.clip, sadcl.eps, sadcl.reduction, sadcl.scale) == (
        4.0, 0.0, 0.0, 1e-5, "mean", 1000.0,
    )  # fmt: skip
    assert set(ASL_PRESETS) == {"asl", "query2label", "sadcl"}
    with pytest.raises(ValueError, match="preset"):
        AsymmetricLoss.from_preset("nope")


def test_asl_ignores_unknown_and_has_finite_gradients():
    logits = (torch.randn(4, 3) * 20).requires_grad_()
    targets = torch.tensor([[1, -1, 0], [0, 1, -1], [1, 1, 0], [-1, 0, 0]])
    loss = AsymmetricLoss()(logits, targets)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert (logits.grad[targets == -1] == 0).all()


def test_each_method_carries_its_own_losses():
    from labelgraph.engine.recipes import build_aux_losses, build_criterion
    from labelgraph.losses import PrototypeToSampleContrastiveLoss, SampleToSampleContrastiveLoss
    from labelgraph.models import get_recipe

    assert isinstance(build_criterion(get_recipe("ml_gcn")), MaskedBCEWithLogitsLoss)
    q2l, sadcl = build_criterion(get_recipe("query2label")), build_criterion(get_recipe("sadcl"))
    assert isinstance(q2l, AsymmetricLoss) and (q2l.gamma_neg, q2l.scale) == (2.0, 1000.0)
    assert isinstance(sadcl, AsymmetricLoss) and (sadcl.gamma_neg, sadcl.scale) == (4.0, 1000.0)
    aux = build_aux_losses(get_recipe("sadcl"))
    assert [(type(a), a.weight) for a in aux] == [(SampleToSampleContrastiveLoss, 100.0),
                                                  (PrototypeToSampleContrastiveLoss, 50.0)]  # fmt: skip
    assert build_aux_losses(get_recipe("baseline")) == []


def test_sadcl_weights_with_another_criterion_scale_are_warned_about():
    import warnings

    from labelgraph.engine.recipes import build_aux_losses, build_criterion, check_loss_scale
    from labelgraph.models import get_recipe

    sadcl = get_recipe("sadcl")
    aux = build_aux_losses(sadcl)
    with pytest.warns(UserWarning, match=r"calibrated against AsymmetricLoss\(.*reduction mean, scale 1000\)"):
        check_loss_scale("sadcl", sadcl, MaskedBCEWithLogitsLoss(), aux)
    with pytest.warns(UserWarning, match="dominate"):
        check_loss_scale("sadcl", sadcl, AsymmetricLoss.from_preset("asl"), aux)  # ASL too, but summed: another scale
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_loss_scale("sadcl", sadcl, build_criterion(sadcl), aux)
        check_loss_scale("sadcl", sadcl, AsymmetricLoss.from_preset("query2label"), aux)  # same scale, other gamma
        check_loss_scale("sadcl", sadcl, MaskedBCEWithLogitsLoss(), [])  # no contrastive terms: nothing to warn about
        a_gcn = get_recipe("a_gcn")
        check_loss_scale("a_gcn", a_gcn, MaskedBCEWithLogitsLoss(), build_aux_losses(a_gcn))
