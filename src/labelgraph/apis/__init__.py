"""Using a trained model: export it, load it, tag images, search by image, run it through ONNX.

``Predictor`` / ``load`` tag images with an exported model folder; ``save_model`` / ``export_checkpoint`` write one;
``load_model`` (from :mod:`labelgraph.models`, where training reads it too) rebuilds the network.
"""

from labelgraph.apis.export import export_checkpoint, save_model, update_config
from labelgraph.apis.predict import Predictor, load
from labelgraph.models import load_model

__all__ = ["Predictor", "export_checkpoint", "load", "load_model", "save_model", "update_config"]
