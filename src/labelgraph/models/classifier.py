"""``MultiLabelClassifier``: the one contract every method follows (backbone + head)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from labelgraph.errors import InvalidInputError
from labelgraph.models._registry import methods_providing
from labelgraph.models.backbone import Backbone
from labelgraph.models.head import MultiLabelHead

#: the logit a known label is fixed at (sigmoid: 1 - 1e-13): large enough to read as certain, finite for the metrics
KNOWN_LOGIT = 30.0


def fix_known(logits: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """``logits`` (B, C) with the entries ``known`` says (1 / 0) set to +/- :data:`KNOWN_LOGIT`, -1 left as they are."""
    known = known.to(logits.device)
    fixed = torch.where(known == 1, KNOWN_LOGIT, -KNOWN_LOGIT).to(logits.dtype)
    return torch.where(known >= 0, fixed, logits)


class MultiLabelClassifier(nn.Module):
    """A backbone that produces feature maps and a head that turns them into per-class logits.

    ``forward`` is what evaluation and inference use; ``forward_train`` returns the dict the losses consume
    (at least ``"logits"``; methods add auxiliary outputs such as a second score branch or contrastive features).
    What a head offers besides its logits (auxiliary outputs, class maps, learning-rate factors, graph priors, ...)
    is declared by :class:`~labelgraph.models.head.MultiLabelHead`, which every head subclasses.

    Inputs are uint8 images (what the data pipeline delivers) or float images in [0, 1]: the model applies its
    backbone's mean/std itself (buffers ``input_mean``, ``input_std``), so the data pipeline and ``predict`` can
    never use the wrong normalisation (TResNet expects none, ImageNet ResNets expect ImageNet statistics -- a
    classic source of silently wrong scores).

    ``forward`` and ``forward_train`` also accept the backbone's feature maps instead of images (a list of
    (B, C_i, H_i, W_i) tensors, as a feature cache stores them): the head then runs on them directly.

    Shapes:
        images (B, 3, H, W) uint8, or float in [0, 1], at any H, W -> logits (B, num_classes).
    """

    config: dict[str, Any]  # set by registry.create_model: {"method": ..., "kwargs": {...}}
    #: the square input side and the eval transform (``resize`` / ``center_crop``) that bring an image to it: the
    #: method's recipe's, set by ``create_model``; training on a data module replaces them with the data module's
    image_size: int | None
    eval_transform: str

    def __init__(self, backbone: Backbone, head: MultiLabelHead, num_classes: int) -> None:
        super().__init__()
        if not isinstance(head, MultiLabelHead):
            raise TypeError(f"{type(head).__name__} is not a labelgraph.models.MultiLabelHead (subclass it)")
        self.backbone = backbone
        self.head = head
        self.num_classes = num_classes
        self.config = {}
        self.resolved_kwargs: dict[str, Any] = {}  # "auto" builder options resolved (recorded by create_model)
        self.image_size, self.eval_transform = None, "resize"
        self.register_buffer("input_mean", torch.tensor(backbone.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("input_std", torch.tensor(backbone.std, dtype=torch.float32).view(1, 3, 1, 1))

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 in [0, 255] or float in [0, 1] (B, 3, H, W) -> the backbone's normalised float input.

        uint8 is what the data pipeline delivers: the division by 255 joins the normalisation, one multiply-add.
        """
        if images.dtype == torch.uint8:
            scale = 1 / (255 * self.input_std)  # (1, 3, 1, 1)
            return torch.addcmul(-self.input_mean / self.input_std, images.float(), scale)
        return (images - self.input_mean) / self.input_std

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Normalise and run the backbone: (B, 3, H, W) uint8 or float in [0, 1] -> list of feature maps."""
        return self.backbone(self.normalise(images))

    def _features_of(self, inputs: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
        """Images go through the backbone; a list of feature maps (from a feature cache) is used as it is."""
        return list(inputs) if isinstance(inputs, (list, tuple)) else self.features(inputs)

    def forward(self, images: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        return self.head(self._features_of(images))

    def forward_train(self, images: torch.Tensor | list[torch.Tensor]) -> dict[str, torch.Tensor]:
        out = self.head.forward_train(self._features_of(images))
        if "logits" not in out:
            raise KeyError(f"{type(self.head).__name__}.forward_train must return a 'logits' entry")
        return out

    def forward_known(self, images: torch.Tensor | list[torch.Tensor], known: torch.Tensor) -> torch.Tensor:
        """Logits given the labels already known, ``known`` (B, C): 1 present, 0 absent, -1 unknown. A head that
        conditions on them (``forward_known``: C-Tran) does; any other returns its logits with the known entries
        fixed (+/- :data:`KNOWN_LOGIT`: probability 1 or 0), the rest unchanged.

        Shapes:
            images (B, 3, H, W) or feature maps, known (B, C) -> (B, C).
        """
        if known.shape != (known.shape[0], self.num_classes):
            raise InvalidInputError(f"known labels of shape {tuple(known.shape)}, expected (B, {self.num_classes})")
        features = self._features_of(images)
        if self.head.provides("forward_known"):
            return self.head.forward_known(features, known)
        return fix_known(self.head(features), known)

    def class_maps(self, images: torch.Tensor) -> torch.Tensor:
        """The head's own spatial evidence per class: (B, 3, H, W) in [0, 1] -> (B, C, h, w) at feature resolution.

        Activation maps for ADD-GCN / DB-DGCN, semantic-decoupling attention for SSGRL, cross-attention for
        ML-Decoder. Heads without maps raise (use gradient-based explanations for them).
        """
        if not self.head.provides("class_maps"):
            raise NotImplementedError(
                f"{self.config.get('method', type(self.head).__name__)} has no class maps of its own; "
                f"methods with maps: {', '.join(methods_providing('class_maps'))}"
            )
        return self.head.class_maps(self.features(images))

    def score_new_classes(self, embeddings: torch.Tensor) -> MultiLabelClassifier:
        """Zero-shot: score the classes of new label embeddings (C', e) from now on (C' outputs), through a head
        that offers ``set_label_embeddings``; returns the model."""
        if not self.head.provides("set_label_embeddings"):
            raise InvalidInputError(
                f"{self.config.get('method', type(self.head).__name__)} cannot score new classes; methods that can: "
                f"{', '.join(methods_providing('set_label_embeddings'))} (ml_decoder with queries='embeddings')"
            )
        self.head.set_label_embeddings(embeddings)
        self.num_classes = embeddings.shape[0]
        return self

    @property
    def preprocessing(self) -> dict[str, Any]:
        """How an image becomes this model's input (as timm's ``pretrained_cfg``; stored in exported models): the
        square side and eval transform it was built or trained for, and the normalisation its backbone's weights
        expect."""
        return {
            "image_size": self.image_size,
            "eval_transform": self.eval_transform,
            "mean": [round(v, 6) for v in self.input_mean.flatten().tolist()],
            "std": [round(v, 6) for v in self.input_std.flatten().tolist()],
        }

    def parameter_groups(self, backbone_lr_mult: float = 1.0) -> list[dict[str, Any]]:
        """Optimizer parameter groups, each with an ``lr_mult`` relative to the base learning rate.

        Only trainable parameters are returned (frozen ones and buffers, such as fixed graph priors, are not).
        """
        groups: list[dict[str, Any]] = [
            {
                "name": "backbone",
                "params": [p for p in self.backbone.parameters() if p.requires_grad],
                "lr_mult": backbone_lr_mult,
            }
        ]
        head_mults = dict(self.head.lr_mults)
        buckets: dict[str, list[nn.Parameter]] = {prefix: [] for prefix in head_mults}
        rest: list[nn.Parameter] = []
        for name, param in self.head.named_parameters():
            if not param.requires_grad:
                continue
            prefix = next((p for p in head_mults if name == p or name.startswith(p + ".")), None)
            (buckets[prefix] if prefix is not None else rest).append(param)
        groups.append({"name": "head", "params": rest, "lr_mult": 1.0})
        groups += [{"name": f"head.{p}", "params": ps, "lr_mult": head_mults[p]} for p, ps in buckets.items()]
        return [g for g in groups if g["params"]]
