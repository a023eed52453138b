"""The four models of the paper (`--model`) and their starting weights (`--weights`).

Image models take (B, 3, 314, 384) standardized images; `refecg` takes (B, 1, L) lead sums.
Every model's `forward` returns the final logits (B, classes). docs/models.md describes each.
"""

from __future__ import annotations

import os

from torch import nn
from torchvision.models import resnet34, resnet50

from ecgtrain.errors import TrainError
from ecgtrain.models.imecgnet import ImECGnet
from ecgtrain.models.refecg import RefECG
from ecgtrain.models.resnets import im_resnet
from ecgtrain.models.weights import (
    difference,
    imagenet_state_dict,
    load_strict,
    mismatch,
    parse_weights,
    read_state_dict,
)

MODELS = ("imecgnet", "imresnet34", "imresnet50", "refecg")
IMAGE_MODELS = ("imecgnet", "imresnet34", "imresnet50")
BACKBONE = {"imecgnet": "resnet50", "imresnet34": "resnet34", "imresnet50": "resnet50"}
_RESNETS = {"resnet34": resnet34, "resnet50": resnet50}

__all__ = ["MODELS", "IMAGE_MODELS", "build_model", "default_weights", "ImECGnet", "RefECG"]


def default_weights(name: str) -> str:
    """The paper's setting: 'imagenet' for the image models, 'none' for Ref-ECG."""
    return "imagenet" if name in IMAGE_MODELS else "none"


def build_model(name: str, num_classes: int, n_leads: int | None = None,
                weights: str | os.PathLike | None = None, input_length: int = 1000) -> nn.Module:
    """Model `name` for `num_classes` classes, starting from `weights` ('imagenet' | 'none' | a file).

    `n_leads` (the number of leads in the images) is required by `imecgnet`; `input_length` (the
    window in samples) is used by `refecg`. `weights=None` means `default_weights(name)`.
    ImageNet weights are loaded into the ResNet before ImECGnet copies its branches, so both
    branches start from ImageNet's layer3/layer4.
    """
    if name not in MODELS:
        raise TrainError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    if num_classes < 2:
        raise TrainError(f"a classifier needs at least 2 classes, got {num_classes}; check the dataset's classes")
    if name == "imecgnet" and (n_leads is None or n_leads < 1):
        raise TrainError(f"imecgnet needs the number of leads (from dataset.json), got {n_leads}")
    source = parse_weights(default_weights(name) if weights is None else weights)

    if name == "refecg":
        if source == "imagenet":
            raise TrainError("refecg has no ImageNet weights; pass --weights none or --weights PATH")
        model = RefECG(num_classes, input_length)
        if source != "none":
            load_strict(model, read_state_dict(source), source, f"refecg ({num_classes} classes, L={input_length})")
        return model

    arch = BACKBONE[name]
    what = f"{name} ({num_classes} classes" + (f", {n_leads} leads)" if name == "imecgnet" else ")")

    def assemble(resnet: nn.Module) -> nn.Module:
        return ImECGnet(resnet, n_leads, num_classes) if name == "imecgnet" else im_resnet(resnet, num_classes)

    resnet = _RESNETS[arch](weights=None)
    if source == "imagenet":
        resnet.load_state_dict(imagenet_state_dict(arch, name))
        return assemble(resnet)
    if source == "none":
        return assemble(resnet)
    state = read_state_dict(source)
    model = assemble(resnet)
    if not difference(model, state):  # a whole model saved by ecgtrain
        load_strict(model, state, source, what)
        return model
    backbone = _RESNETS[arch](weights=None)
    backbone_what = f"a torchvision {arch} backbone"
    if not difference(backbone, state, skip_fc=True):  # loaded before ImECGnet copies its branches
        load_strict(backbone, state, source, backbone_what, skip_fc=True)
        return assemble(backbone)
    # Fits neither: name the difference to the one the file resembles more.
    if len(state.keys() & model.state_dict().keys()) > len(state.keys() & backbone.state_dict().keys()):
        raise mismatch(source, what, difference(model, state))
    raise mismatch(source, backbone_what, difference(backbone, state, skip_fc=True))
