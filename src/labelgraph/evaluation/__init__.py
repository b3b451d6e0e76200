"""Evaluation: the field's metrics with explicit modes (pure functions and a streaming accumulator), the scores of a
split, threshold calibration, and robustness under image corruptions."""
