"""Old import path of :mod:`labelgraph.engine.finetuning`, kept because users' YAML recipes copied from ours name
``labelgraph.finetuning.StagedFineTuning`` as a callback ``class_path``."""

from labelgraph.engine.finetuning import StagedFineTuning, TwoStageCosineLR

__all__ = ["StagedFineTuning", "TwoStageCosineLR"]
