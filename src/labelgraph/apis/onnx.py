"""ONNX: the exported graph of a model folder (``labelgraph export`` writes it) and ONNX Runtime behind ``predict``,
``serve``, ``evaluate`` and ``calibrate``.

The graph (``model.onnx`` beside the weights) takes images in [0, 1] (normalisation is inside, as in PyTorch) with a
dynamic batch size at the model's image size, and returns logits scaled as ``labelgraph calibrate`` fitted them
(``logit / temperature + bias``: initializers ``temperature`` and ``bias``), so that their sigmoid is the probability
``labelgraph predict`` gives. ``calibrate`` rewrites those two initializers when it refits them. The file's metadata
records the SHA-256 of the ``model.safetensors`` it was exported from and the scaling it holds: a file exported from
other weights is never run in their place, and the runtime can undo a scaling that the config has since changed.

Runtimes (``--runtime``): ``torch`` (eager PyTorch), ``onnx`` (ONNX Runtime on the CPU; an error when the folder has
no current ``model.onnx`` or the ``onnx`` extra is missing), ``auto`` (the default: ONNX Runtime where ``onnx`` would
work and the device is the CPU, else PyTorch). Needs the ``onnx`` extra (onnx, onnxscript, onnxruntime).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from labelgraph.errors import InvalidInputError
from labelgraph.files import atomic_path
from labelgraph.models.model_config import ONNX_FILE, WEIGHTS_FILE

DIGEST_KEY = "labelgraph.weights_sha256"
SCALING_KEY = "labelgraph.scaling"
EXPORTER_KEY = "labelgraph.exporter"
RUNTIMES = ("auto", "onnx", "torch")
MAX_DIFFERENCE = 1e-3  # largest |logit difference| to PyTorch an exported graph may show on random images


class OnnxMismatchError(InvalidInputError):
    """An exported graph whose logits differ from PyTorch's."""


class ScaledLogits(torch.nn.Module):
    """``model``'s logits scaled as calibration fitted them: ``logit / temperature + bias`` (one value each, or one per
    class): what the exported graph computes."""

    def __init__(self, model: torch.nn.Module, temperature: float | list[float], bias: float | list[float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("temperature", torch.as_tensor(temperature, dtype=torch.float32).reshape(1, -1))
        self.register_buffer("bias", torch.as_tensor(bias, dtype=torch.float32).reshape(1, -1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images) / self.temperature + self.bias  # (B, C) with (1, C or 1)


def weights_digest(folder: str | Path) -> str:
    """SHA-256 of an exported folder's ``model.safetensors`` (what its ``model.onnx`` must have been exported from)."""
    digest = hashlib.sha256()
    with open(Path(folder) / WEIGHTS_FILE, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def scaling_record(temperature: float | list[float], bias: float | list[float]) -> str:
    return json.dumps({"temperature": temperature, "bias": bias})


@contextmanager
def quiet_exporter():
    """What the exporters say that a user cannot act on: the TorchScript exporter's deprecation notice and tracer
    warnings (the graph is checked against PyTorch at two batch sizes instead), the optimiser's notes on ops it does
    not fold."""
    logger = logging.getLogger("onnxscript.optimizer._constant_folding")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            yield
    finally:
        logger.setLevel(level)


#: torch's exporters, in the order tried: the TorchScript-based one (0.5 s for an EfficientNet-Lite0 ML-GCN where the
#: torch.export-based one takes 8 s; deprecated by torch, so when it goes, or fails on a model, the other takes over)
EXPORTERS = ("torchscript", "dynamo")


def export_onnx(
    model: torch.nn.Module,
    image_size: int,
    out: str | Path,
    temperature: float | list[float] = 1.0,
    bias: float | list[float] = 0.0,
    weights_sha256: str | None = None,
    exporter: str = EXPORTERS[0],
) -> Path:
    """Write ``out`` (``images`` (B, 3, S, S) in [0, 1] -> ``logits`` (B, C) = ``logit / temperature + bias``) with
    torch's ``exporter`` (:data:`EXPORTERS`), atomically, the scaling and ``weights_sha256`` (the weights file it
    stands for, :func:`weights_digest`) in its metadata. The exporter's error, whatever its type, is raised."""
    import onnx

    module = ScaledLogits(model.eval(), temperature, bias).eval()
    example = torch.rand(2, 3, image_size, image_size)
    with atomic_path(out) as tmp:
        with quiet_exporter():
            trace_to_onnx(module, example, tmp, exporter)
        graph = onnx.load(str(tmp))
        props = {SCALING_KEY: scaling_record(temperature, bias), EXPORTER_KEY: exporter}
        props |= {DIGEST_KEY: weights_sha256} if weights_sha256 else {}
        onnx.helper.set_model_props(graph, props)
        onnx.save(graph, str(tmp))
    return Path(out)


def trace_to_onnx(module: torch.nn.Module, example: torch.Tensor, path: Path, exporter: str) -> None:
    """``module`` on ``example`` as an ONNX graph at ``path``, its batch dimension dynamic."""
    names = {"input_names": ["images"], "output_names": ["logits"], "verbose": False}
    if exporter == "torchscript":
        axes = {"images": {0: "batch"}, "logits": {0: "batch"}}
        torch.onnx.export(module, (example,), str(path), dynamic_axes=axes, dynamo=False, opset_version=18, **names)
    elif exporter == "dynamo":
        batch = {"images": {0: torch.export.Dim("batch", min=1, max=1024)}}
        torch.onnx.export(module, (example,), None, dynamic_shapes=batch, dynamo=True, **names).save(str(path))
    else:
        raise ValueError(f"unknown exporter {exporter!r}; available: {', '.join(EXPORTERS)}")


def rescale_onnx(path: str | Path, temperature: float | list[float], bias: float | list[float]) -> Path:
    """Set the scaling of an exported graph (its ``temperature`` and ``bias`` initializers and the metadata that
    records them), atomically: what ``calibrate`` does after refitting them."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    values = {"temperature": temperature, "bias": bias}
    for i, init in enumerate(model.graph.initializer):
        if init.name in values:
            array = np.asarray(values[init.name], dtype=np.float32).reshape(1, -1)
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(array, init.name))
    props = {p.key: p.value for p in model.metadata_props}
    props[SCALING_KEY] = scaling_record(temperature, bias)
    onnx.helper.set_model_props(model, props)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
    return Path(path)


class OnnxModel(torch.nn.Module):
    """A folder's ``model.onnx`` under ONNX Runtime, called as the PyTorch model is: (B, 3, S, S) uint8, or float in
    [0, 1] -> (B, C) the network's logits (the file's scaling undone; :meth:`scaled` keeps it)."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        # idle threads sleep rather than spin: between two runs this process decodes the next images, and spinning
        # threads would take the cores it needs (at batch 1, the difference between slower and faster than PyTorch)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.weights_sha256: str | None = meta.get(DIGEST_KEY)
        scaling = json.loads(meta.get(SCALING_KEY, scaling_record(1.0, 0.0)))
        self.temperature = np.asarray(scaling["temperature"], dtype=np.float32).reshape(1, -1)  # (1, C or 1)
        self.bias = np.asarray(scaling["bias"], dtype=np.float32).reshape(1, -1)

    def scaled(self, images: torch.Tensor) -> np.ndarray:
        """(B, 3, S, S) -> (B, C) ``logit / temperature + bias`` with the file's scaling (``scaled_as``)."""
        x = images.float().div(255) if images.dtype == torch.uint8 else images.float()
        return self.session.run(None, {"images": x.contiguous().numpy()})[0]

    def scaled_as(self, temperature: np.ndarray, bias: np.ndarray) -> bool:
        """Whether the file scales as ``temperature`` and ``bias`` ((C,) each) do."""
        size = max(len(temperature), self.temperature.shape[1], self.bias.shape[1])
        ours = (np.broadcast_to(v, (1, size)) for v in (self.temperature, self.bias))
        theirs = (np.broadcast_to(np.asarray(v, dtype=np.float32), (1, size)) for v in (temperature, bias))
        return all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy((self.scaled(images) - self.bias) * self.temperature)  # (B, C)


def onnx_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def onnx_problem(folder: Path) -> str | None:
    """Why ``folder``'s ``model.onnx`` cannot stand for its weights (None: it can)."""
    path = folder / ONNX_FILE
    if not path.is_file():
        return f"{folder} has no {ONNX_FILE} (write one with `labelgraph export {folder} --onnx`)"
    if not onnx_available():
        return "ONNX Runtime is not installed (pip install 'labelgraph[onnx]')"
    return None


def choose_runtime(
    folder: str | Path | None, model: torch.nn.Module, runtime: str = "auto", device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, str]:
    """The module that computes ``model``'s logits under ``runtime`` (:data:`RUNTIMES`), and its name (``torch`` or
    ``onnxruntime``). ``folder``: the exported folder ``model`` was loaded from (None: a checkpoint, PyTorch only)."""
    if runtime not in RUNTIMES:
        raise InvalidInputError(f"unknown runtime {runtime!r}; available: {', '.join(RUNTIMES)}")
    if runtime == "torch" or (runtime == "auto" and (folder is None or torch.device(device).type != "cpu")):
        return model, "torch"
    if folder is None or torch.device(device).type != "cpu":
        where = "a checkpoint" if folder is None else f"device {device}"
        raise InvalidInputError(f"--runtime onnx runs an exported folder's {ONNX_FILE} on the CPU, not {where}")
    folder = Path(folder)
    problem = onnx_problem(folder)
    if problem is None:
        session = OnnxModel(folder / ONNX_FILE)
        if session.weights_sha256 != weights_digest(folder):
            problem = f"{folder / ONNX_FILE} was exported from other weights (export it again with --onnx)"
        else:
            return session, "onnxruntime"
    if runtime == "onnx":
        raise InvalidInputError(f"--runtime onnx: {problem}")
    if (folder / ONNX_FILE).is_file() and onnx_available():
        logging.getLogger(__name__).warning("running PyTorch: %s", problem)
    return model, "torch"


def export_folder_onnx(folder: str | Path, check_images: int = 4) -> tuple[Path, float]:
    """Write an exported folder's ``model.onnx`` from its weights and config (scaling, input size) and check it on
    random images, one and ``check_images`` at a time: the path and the largest |logit difference| to PyTorch. An
    exporter that fails, or whose graph differs by more than :data:`MAX_DIFFERENCE`, hands over to the next of
    :data:`EXPORTERS`; when none succeeds, no graph is left and the last failure is raised
    (:class:`OnnxMismatchError` for a graph that disagrees)."""
    from labelgraph.apis.model_card import write_model_card
    from labelgraph.models import load_model

    folder = Path(folder)
    model, config = load_model(folder)
    size, scaling = config.image_size, (config.temperature, config.logit_bias)
    path, digest = folder / ONNX_FILE, weights_digest(folder)
    for exporter in EXPORTERS:
        try:
            export_onnx(model, size, path, *scaling, weights_sha256=digest, exporter=exporter)
        except Exception as err:  # the exporters' errors have no common type
            failure: Exception = err
            continue
        diff = check_onnx(model, path, [torch.rand(n, 3, size, size) for n in (1, check_images)], *scaling)
        if diff <= MAX_DIFFERENCE:
            write_model_card(folder, config=config)  # it says which runtime predict and serve use
            return path, diff
        failure = OnnxMismatchError(f"{path}: the ONNX graph's logits differ from PyTorch's by {diff:.2e}; removed")
    path.unlink(missing_ok=True)
    raise failure


def check_onnx(
    model: torch.nn.Module,
    onnx_path: str | Path,
    batches: list[torch.Tensor],
    temperature: float | list[float] = 1.0,
    bias: float | list[float] = 0.0,
) -> float:
    """Run the ONNX file with ONNX Runtime (one session) on each of ``batches`` and return the largest |logit
    difference| to PyTorch (the model's logits scaled the same way)."""
    session = OnnxModel(onnx_path)
    scaled = ScaledLogits(model.eval(), temperature, bias).eval()
    with torch.no_grad():
        return max(float(np.abs(session.scaled(x) - scaled(x).numpy()).max()) for x in batches)
