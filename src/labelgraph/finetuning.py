"""Old import path of ``labelgraph.engine.finetuning`` (now :mod:`labelgraph.engine.callbacks` and
:mod:`labelgraph.engine.schedulers`), kept because users' YAML recipes copied from ours name
``labelgraph.finetuning.StagedFineTuning`` as a callback ``class_path``."""

from labelgraph.engine.callbacks import StagedFineTuning
from labelgraph.engine.schedulers import TwoStageCosineLR

__all__ = ["StagedFineTuning", "TwoStageCosineLR"]
