"""The model registry: ``register_model`` / ``create_model`` / ``list_models`` / ``get_recipe``.

``labelgraph.models`` imports this module first, then every method module, whose ``@register_model`` lines fill it.

Every method is one builder function registered under its name with its recipe (:class:`~labelgraph.models.Recipe`:
how its paper trains and evaluates it) and its head class (a :class:`~labelgraph.models.head.MultiLabelHead`: what
the head offers besides its logits)::

    @register_model("baseline", recipe=RECIPE, head=PoolLinearHead)
    def baseline(*, num_classes: int, label_graph: LabelGraph | None = None, backbone: str = "resnet101", ...) -> ...

Builders are keyword-only and their defaults are the paper's values. ``create_model`` records the method name
and the JSON-serialisable arguments on the returned model (``model.config``), and the label graph it was built from
(``model.label_graph``), so it can be exported and rebuilt, and the input its recipe evaluates with
(``model.image_size``, ``model.eval_transform``; all of it in ``model.preprocessing``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch.nn as nn

from labelgraph.errors import InvalidInputError
from labelgraph.models.head import MultiLabelHead, head_provides
from labelgraph.models.recipe import Recipe

Builder = Callable[..., nn.Module]
_MODELS: dict[str, Callable[..., nn.Module]] = {}
_RECIPES: dict[str, Recipe] = {}
_HEADS: dict[str, type[MultiLabelHead]] = {}


def register_model(
    name: str, *, recipe: Recipe, head: type[MultiLabelHead]
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a model builder under ``name`` with the recipe it trains with and the class of the head it builds
    (decorator)."""
    if not isinstance(recipe, Recipe):
        raise TypeError(f"register_model({name!r}): recipe must be a labelgraph.models.Recipe, not {type(recipe)}")
    if not (isinstance(head, type) and issubclass(head, MultiLabelHead)):
        raise TypeError(f"register_model({name!r}): head must be a subclass of labelgraph.models.MultiLabelHead")

    def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered (by {_MODELS[name].__module__})")
        _MODELS[name], _RECIPES[name], _HEADS[name] = fn, recipe, head
        return fn

    return decorator


def extends(*parents: Callable[..., Any], exclude: tuple[str, ...] = ()) -> Callable[[Builder], Builder]:
    """A variant's builder takes its parents' keyword arguments without re-listing them (decorator).

    The builder declares its own arguments and ``**options``, which it passes on; its signature -- what
    ``create_model`` checks arguments against, what ``labelgraph models`` and the recipe tests read -- becomes its own
    arguments followed by every argument of ``parents`` it does not declare itself (keyword-only, with the parent's
    default), minus ``exclude`` (a parent's positional inputs the variant supplies)::

        @register_model("iml_gcn", recipe=RECIPE, head=MLGCNHead)
        @extends(build_ml_gcn)
        def iml_gcn(*, num_classes, label_graph=None, backbone="tresnet_m", pretrained=False, **options): ...
    """

    def decorate(builder: Builder) -> Builder:
        own = inspect.signature(builder)
        params = [p for p in own.parameters.values() if p.kind != p.VAR_KEYWORD]
        names = {p.name for p in params} | set(exclude)
        for parent in parents:
            for p in inspect.signature(parent).parameters.values():
                if p.name not in names and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                    params.append(p.replace(kind=p.KEYWORD_ONLY))
                    names.add(p.name)
        builder.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]
        return builder

    return decorate


def methods_providing(ability: str) -> list[str]:
    """The registered methods whose head offers the optional ``ability`` (``"class_maps"``, ...), sorted."""
    return [name for name in sorted(_HEADS) if head_provides(_HEADS[name], ability)]


def list_models() -> list[str]:
    """Names of all registered methods, sorted."""
    return sorted(_MODELS)


def get_model_builder(name: str) -> Callable[..., nn.Module]:
    """The builder registered under ``name``."""
    if name not in _MODELS:
        raise InvalidInputError(f"unknown method {name!r}; available: {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


def get_recipe(name: str) -> Recipe:
    """The recipe registered with method ``name``."""
    get_model_builder(name)  # an unknown name fails with the list of methods
    return _RECIPES[name]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered method ``name``.

    Args:
        name: a registered method (see ``list_models()``).
        **kwargs: the builder's keyword arguments (``num_classes``, ``label_graph``, ``backbone``, ...).

    Returns:
        a :class:`~labelgraph.models.MultiLabelClassifier` whose ``config`` records how to rebuild it.
    """
    builder = get_model_builder(name)
    params = inspect.signature(builder).parameters
    unknown = [k for k in kwargs if k not in params and not any(p.kind == p.VAR_KEYWORD for p in params.values())]
    if unknown:
        raise TypeError(f"method {name!r} got unknown arguments {unknown}; it accepts: {', '.join(params)}")
    model = builder(**kwargs)
    if not isinstance(model.head, _HEADS[name]):
        raise TypeError(
            f"{name} is registered with head {_HEADS[name].__name__}, its builder made a {type(model.head).__name__}"
        )
    recorded = {k: v for k, v in kwargs.items() if k != "label_graph"}
    # a builder that resolves an "auto" option (freezing that depends on pretrained weights) records the value it
    # chose, so a rebuild without the weights file (export, load) gets the same network
    recorded.update(model.resolved_kwargs)
    model.config = {"method": name, "kwargs": recorded}
    model.image_size, model.eval_transform = _RECIPES[name].image_size, _RECIPES[name].eval_transform
    model.label_graph = kwargs.get("label_graph")
    return model
