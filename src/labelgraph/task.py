"""Old import path of :class:`labelgraph.engine.task.MultiLabelTask`, kept because checkpoints written by
``labelgraph fit`` before the move name it (LightningCLI records the model's class path in their hyper-parameters)."""

from labelgraph.engine.task import MultiLabelTask

__all__ = ["MultiLabelTask"]
