"""Losses: BCE with unknown-label masking, ASL, and auxiliary (method-specific) terms."""

from labelgraph.losses.asl import ASL_PRESETS, AsymmetricLoss
from labelgraph.losses.auxiliary import AuxiliaryLoss
from labelgraph.losses.bce import MaskedBCEWithLogitsLoss
from labelgraph.losses.contrastive import PrototypeToSampleContrastiveLoss, SampleToSampleContrastiveLoss
from labelgraph.losses.graph_sparsity import GraphSparsityLoss
from labelgraph.losses.method_losses import (
    METHOD_AUX_LOSSES,
    METHOD_CRITERIA,
    check_loss_scale,
    criterion_scale,
    default_aux_losses,
    default_criterion,
)

__all__ = [
    "ASL_PRESETS",
    "METHOD_AUX_LOSSES",
    "METHOD_CRITERIA",
    "AsymmetricLoss",
    "AuxiliaryLoss",
    "GraphSparsityLoss",
    "MaskedBCEWithLogitsLoss",
    "PrototypeToSampleContrastiveLoss",
    "SampleToSampleContrastiveLoss",
    "check_loss_scale",
    "criterion_scale",
    "default_aux_losses",
    "default_criterion",
]
