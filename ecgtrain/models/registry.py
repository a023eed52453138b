"""The one list of models: each model's module registers its builder with `@register_model`.

A builder is called with keywords only and returns the model with its initial weights:

    build(num_classes: int, n_leads: int | None, input_length: int, init_backbone) -> nn.Module

`init_backbone` is None (the model's own initialisation) or a callable `init_backbone(resnet, arch)`
that a model built on a torchvision ResNet calls once, on the fresh ResNet and before copying any of
its stages, to load ImageNet or a backbone file into it (`arch`: "resnet34" | "resnet50"). A model
without a ResNet backbone never calls it. `build_model` (models/__init__.py) does the weights
handling for every model; everything else asks `get_model(name)` what a model needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ecgtrain.errors import TrainError

INPUTS = ("image", "signal")
DEFAULT_WEIGHTS = ("imagenet", "none")


@dataclass(frozen=True)
class ModelSpec:
    """What the rest of ecgtrain needs to know about one model."""

    name: str  # the --model value, e.g. "imecgnet"
    input: str  # "image" (uint8 shards, standardized on the device) | "signal" (refecg.h5 lead sums)
    display: str  # the name in tables and reports, e.g. "ImECGnet"
    default_weights: str  # "imagenet" (a torchvision ResNet backbone) | "none"
    build: Callable[..., nn.Module]
    cam_layer: str = ""  # image models: the submodule whose output `ecgtrain explain` maps with Grad-CAM


_SPECS: dict[str, ModelSpec] = {}


def register_model(name: str, *, input: str, display: str, default_weights: str, cam_layer: str = ""):
    """Decorator on a model's builder: adds `ModelSpec(name, ...)` to the registry, returns the builder.
    `cam_layer` (image models): the name of the submodule (`model.get_submodule`) Grad-CAM explains."""
    if input not in INPUTS:
        raise ValueError(f"model {name!r}: input must be one of {INPUTS}, got {input!r}")
    if default_weights not in DEFAULT_WEIGHTS:
        raise ValueError(f"model {name!r}: default_weights must be one of {DEFAULT_WEIGHTS}, got {default_weights!r}")

    def decorate(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _SPECS:
            raise ValueError(f"model {name!r} is registered twice ({_SPECS[name].build.__module__}, {build.__module__})")
        _SPECS[name] = ModelSpec(name, input, display, default_weights, build, cam_layer)
        return build

    return decorate


def model_names() -> tuple[str, ...]:
    """Every registered model name, in registration order (the order of the paper's Table I)."""
    return tuple(_SPECS)


def get_model(name: str) -> ModelSpec:
    """The spec of model `name`; a TrainError naming the choices when there is none."""
    try:
        return _SPECS[name]
    except KeyError:
        raise TrainError(f"unknown model {name!r}; choose one of {', '.join(_SPECS)}") from None
