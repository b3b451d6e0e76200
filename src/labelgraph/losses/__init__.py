"""Losses: BCE with unknown-label masking, ASL, auxiliary (method-specific) terms, and the incomplete-label losses."""

from labelgraph.losses.asl import ASL_PRESETS, AsymmetricLoss
from labelgraph.losses.auxiliary import AuxiliaryLoss
from labelgraph.losses.bce import MaskedBCEWithLogitsLoss
from labelgraph.losses.contrastive import PrototypeToSampleContrastiveLoss, SampleToSampleContrastiveLoss
from labelgraph.losses.graph_sparsity import GraphSparsityLoss
from labelgraph.losses.hill_splc import HillLoss, SPLCLoss
from labelgraph.losses.incomplete_labels import (
    AssumeNegativeLoss,
    ExpectedPositiveLoss,
    IgnoreUnknownLoss,
    IncompleteLabelLoss,
    PartialBCELoss,
)
from labelgraph.losses.incomplete_registry import INCOMPLETE_LABEL_LOSSES, incomplete_label_loss
from labelgraph.losses.large_loss import LargeLossLoss
from labelgraph.losses.role import RoleLoss
from labelgraph.losses.scene_entropy import SceneBalanceLoss, SceneEntropyLoss

__all__ = [
    "ASL_PRESETS",
    "INCOMPLETE_LABEL_LOSSES",
    "AssumeNegativeLoss",
    "AsymmetricLoss",
    "AuxiliaryLoss",
    "ExpectedPositiveLoss",
    "GraphSparsityLoss",
    "SceneBalanceLoss",
    "SceneEntropyLoss",
    "HillLoss",
    "IgnoreUnknownLoss",
    "IncompleteLabelLoss",
    "LargeLossLoss",
    "MaskedBCEWithLogitsLoss",
    "PartialBCELoss",
    "PrototypeToSampleContrastiveLoss",
    "RoleLoss",
    "SPLCLoss",
    "SampleToSampleContrastiveLoss",
    "incomplete_label_loss",
]
