"""The paper's models (`--model`) and their starting weights (`--weights`).

Every module of this package other than registry.py and weights.py is a model module that
registers its builder (`registry.register_model`); importing the package imports them all, sorted
by module name (imecgnet, imresnets, refecg: the order of the paper's Table I). Adding a model is
adding its module. Image models take (B, 3, H, W) standardized images, signal models (B, 1, L) lead
sums; every model's `forward` returns the final logits (B, classes). docs/models.md describes each.
"""

from __future__ import annotations

import importlib
import os
import pkgutil

from torch import nn

from ecgtrain.errors import TrainError
from ecgtrain.models.registry import ModelSpec, get_model, model_names, register_model
from ecgtrain.models.weights import build_with_weights, parse_weights

_SUPPORT = ("registry", "weights")  # the modules here that are not models
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module not in _SUPPORT:
        importlib.import_module(f"{__name__}.{_module}")

__all__ = ["ModelSpec", "build_model", "get_model", "model_names", "register_model"]


def _describe(spec: ModelSpec, num_classes: int, n_leads: int | None, input_length: int) -> str:
    """The model being built, for weights errors: 'imecgnet (3 classes, 12 leads)'."""
    extra = f", {n_leads} leads" if spec.input == "image" and n_leads else ""
    extra = f", L={input_length}" if spec.input == "signal" else extra
    return f"{spec.name} ({num_classes} classes{extra})"


def build_model(name: str, num_classes: int, n_leads: int | None = None,
                weights: str | os.PathLike | None = None, input_length: int = 1000) -> nn.Module:
    """Model `name` for `num_classes` classes, starting from `weights` ('imagenet' | 'none' | a file).

    `n_leads` (the number of leads in the images) is used by models that need it (imecgnet);
    `input_length` (the window in samples) by signal models. `weights=None` means the model's
    `default_weights`. ImageNet or a backbone file is loaded into the ResNet before a model copies
    its stages (ImECGnet's two branches both start from the loaded layer3/layer4).
    """
    spec = get_model(name)
    if num_classes < 2:
        raise TrainError(f"a classifier needs at least 2 classes, got {num_classes}; check the dataset's classes")
    source = parse_weights(spec.default_weights if weights is None else weights)
    if source == "imagenet" and spec.default_weights != "imagenet":
        raise TrainError(f"{name} has no ImageNet weights; pass --weights none or --weights PATH")

    def build(init_backbone) -> nn.Module:
        return spec.build(num_classes=num_classes, n_leads=n_leads, input_length=input_length,
                          init_backbone=init_backbone)

    return build_with_weights(build, source, name, _describe(spec, num_classes, n_leads, input_length))
