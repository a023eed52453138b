"""ImResNet50 / ImResNet34: torchvision ResNets with a new classifier for the ECG classes."""

from __future__ import annotations

from torch import nn
from torchvision.models import ResNet

from ecgtrain.models.registry import register_model
from ecgtrain.models.weights import resnet_backbone


def im_resnet(resnet: ResNet, num_classes: int) -> ResNet:
    """The given ResNet (weights already loaded) with `fc` replaced by a fresh (2048|512 -> classes) layer.

    The new layer keeps PyTorch's default Linear init, as torchvision's own ResNet classifier does.
    """
    resnet.fc = nn.Linear(resnet.fc.in_features, num_classes)
    return resnet


@register_model("imresnet50", input="image", display="ImResNet50", default_weights="imagenet", cam_layer="layer4")
def build_imresnet50(num_classes: int, init_backbone=None, **_) -> nn.Module:
    """ImResNet50: (B, 3, H, W) images -> (B, classes) logits."""
    return im_resnet(resnet_backbone("resnet50", init_backbone), num_classes)


@register_model("imresnet34", input="image", display="ImResNet34", default_weights="imagenet", cam_layer="layer4")
def build_imresnet34(num_classes: int, init_backbone=None, **_) -> nn.Module:
    """ImResNet34: (B, 3, H, W) images -> (B, classes) logits."""
    return im_resnet(resnet_backbone("resnet34", init_backbone), num_classes)
