"""Losses: BCE with unknown-label masking, ASL, and the base of auxiliary (method-specific) terms."""

from labelgraph.losses.asl import ASL_PRESETS, AsymmetricLoss
from labelgraph.losses.auxiliary import AuxiliaryLoss
from labelgraph.losses.bce import MaskedBCEWithLogitsLoss

__all__ = ["ASL_PRESETS", "AsymmetricLoss", "AuxiliaryLoss", "MaskedBCEWithLogitsLoss"]
