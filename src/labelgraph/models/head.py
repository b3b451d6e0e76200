"""``MultiLabelHead``: the declared interface between a method's head and the rest of the package.

A head turns the backbone's feature maps into per-class logits (:meth:`MultiLabelHead.forward`). Everything else a
head may offer -- auxiliary training outputs, its own class maps, per-class vectors, label-level features, a hook
after the loss, learning-rate factors, what it took from the label graph -- is declared here once, with its
signature, its default and what it returns. The engine, the explanations, the prototypes, the figures and the server
call these methods (or ask :meth:`MultiLabelHead.provides`) instead of probing attributes, and a head that overrides
one with another signature fails when its class is defined, with a message naming both.

``docs/adding_a_method.md`` lists :data:`ABILITIES`; a test keeps the page and this list equal.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch
import torch.nn as nn

#: what a head may add to ``forward``, in the order the adding-a-method page lists them
ABILITIES = (
    "forward_train",
    "class_maps",
    "class_vectors",
    "label_embeddings",
    "label_features",
    "class_prototypes",
    "set_label_embeddings",
    "forward_known",
    "after_loss",
    "lr_mults",
    "graph_priors",
    "learnable_graph",
)
#: the abilities that are methods a head may lack (all but the training pair and the attributes): ``provides`` says
#: whether it has them
OPTIONAL_METHODS = ABILITIES[1:-4]


class MultiLabelHead(nn.Module):
    """The head of a :class:`~labelgraph.models.MultiLabelClassifier`: feature maps in, logits out.

    A subclass implements :meth:`forward` and overrides whichever abilities its paper has; the defaults say "not
    offered" (optional methods raise ``NotImplementedError``; :meth:`provides` is False) or do nothing.

    Attributes:
        lr_mults: ``{"submodule": factor}``: parameter groups of the head with their own learning-rate factor (A-GCN's
            4x on the graph projections); everything else in the head trains at factor 1.
        graph_priors: names of the fixed tensors the head took from the label graph (buffers: saved with the weights,
            never trained -- an adjacency, label embeddings).
        learnable_graph: names of the submodules or parameters it initialises from the label graph and learns on
            purpose (ADD-GCN's static graph).
    """

    lr_mults: ClassVar[dict[str, float]] = {}
    graph_priors: ClassVar[tuple[str, ...]] = ()
    learnable_graph: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ABILITIES:
            if name not in cls.__dict__:
                continue
            mine, declared = cls.__dict__[name], getattr(MultiLabelHead, name)
            if callable(declared) and not callable(mine):
                raise TypeError(f"{cls.__name__}.{name} must be a method, as MultiLabelHead declares it")
            if callable(declared) and parameters(mine) != parameters(declared):
                raise TypeError(
                    f"{cls.__name__}.{name}{inspect.signature(mine)} does not match the declared "
                    f"MultiLabelHead.{name}{inspect.signature(declared)} (labelgraph.models.head)"
                )
            if not callable(declared) and not isinstance(mine, type(declared)):
                raise TypeError(
                    f"{cls.__name__}.{name} must be a {type(declared).__name__}, as MultiLabelHead declares"
                )

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """The logits: feature maps [(B, C_i, H_i, W_i), ...] -> (B, num_classes)."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(features)")

    def forward_train(self, features: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """What the losses read in training: ``"logits"`` (B, C) and whatever the recipe's auxiliary losses need
        (A-GCN's ``adjacency``, SADCL's projected label features). Default: the logits alone."""
        return {"logits": self(features)}

    def class_maps(self, features: list[torch.Tensor]) -> torch.Tensor:
        """The head's own spatial evidence per class, (B, C, h, w) at feature resolution (ADD-GCN's activation maps,
        SSGRL's attention); ``labelgraph explain`` and the server draw them instead of Grad-CAM."""
        raise NotImplementedError(f"{type(self).__name__} has no class maps of its own")

    def class_vectors(self) -> torch.Tensor:
        """(C, d): the vector that scores each class -- a linear classifier's rows, the classifiers a GCN generates,
        a decoder's per-class columns (``labelgraph viz --vectors classifiers``)."""
        raise NotImplementedError(f"{type(self).__name__} has no per-class vectors")

    def label_embeddings(self) -> torch.Tensor:
        """(C, e): the label embeddings the head starts from (word vectors or image-based class means)."""
        raise NotImplementedError(f"{type(self).__name__} starts from no label embeddings")

    def label_features(self, features: list[torch.Tensor]) -> torch.Tensor:
        """(B, C, d): one feature per image and class before the classifier (a label-query decoder's output; class
        prototypes are means of these)."""
        raise NotImplementedError(f"{type(self).__name__} has no label-level features")

    def class_prototypes(self) -> torch.Tensor:
        """(C, d): the class prototypes the head holds (SADCL)."""
        raise NotImplementedError(f"{type(self).__name__} holds no class prototypes")

    def set_label_embeddings(self, embeddings: torch.Tensor) -> None:
        """Score the classes of new label embeddings (C', e) from now on (zero-shot)."""
        raise NotImplementedError(f"{type(self).__name__} cannot score classes it was not trained on")

    def forward_known(self, features: list[torch.Tensor], known: torch.Tensor) -> torch.Tensor:
        """The logits given the labels already known: ``known`` (B, C) holds 1 (present), 0 (absent) or -1 (unknown)
        per entry, and the head conditions on it (C-Tran's state embeddings) -> (B, C). Methods without it get their
        plain scores with the known entries fixed (:meth:`MultiLabelClassifier.forward_known`); heads that have it
        are trained with label-mask training when their recipe says so (``Recipe.label_mask_training``)."""
        raise NotImplementedError(f"{type(self).__name__} cannot condition on known labels")

    def after_loss(self, outputs: dict[str, torch.Tensor], targets: torch.Tensor) -> None:
        """Called once per training batch after the loss with ``forward_train``'s outputs and the (B, C) targets
        (SADCL's memory bank takes the batch's confident positives). Default: nothing."""

    def provides(self, ability: str) -> bool:
        """Whether this head offers an optional method of :data:`OPTIONAL_METHODS` (overrides it)."""
        if ability not in OPTIONAL_METHODS:
            raise ValueError(f"{ability!r} is not an optional ability; these are: {', '.join(OPTIONAL_METHODS)}")
        return head_provides(type(self), ability)


def head_provides(head_class: type[MultiLabelHead], ability: str) -> bool:
    """Whether ``head_class`` overrides the optional method ``ability``."""
    return getattr(head_class, ability) is not getattr(MultiLabelHead, ability)


def parameters(function: Any) -> list[tuple[str, Any]]:
    """A method's parameter names and kinds, for comparing an override with its declaration."""
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]
