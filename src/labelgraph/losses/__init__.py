"""Losses: BCE with unknown-label masking, ASL, and auxiliary (method-specific) terms."""

from labelgraph.losses.asl import ASL_PRESETS, AsymmetricLoss
from labelgraph.losses.auxiliary import AuxiliaryLoss
from labelgraph.losses.bce import MaskedBCEWithLogitsLoss
from labelgraph.losses.contrastive import PrototypeToSampleContrastiveLoss, SampleToSampleContrastiveLoss
from labelgraph.losses.graph_sparsity import GraphSparsityLoss

__all__ = [
    "ASL_PRESETS",
    "AsymmetricLoss",
    "AuxiliaryLoss",
    "GraphSparsityLoss",
    "MaskedBCEWithLogitsLoss",
    "PrototypeToSampleContrastiveLoss",
    "SampleToSampleContrastiveLoss",
]
