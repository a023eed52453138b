"""ImResNet34 / ImResNet50: torchvision ResNets with a new classifier for the ECG classes."""

from __future__ import annotations

from torch import nn
from torchvision.models import ResNet


def im_resnet(resnet: ResNet, num_classes: int) -> ResNet:
    """The given ResNet (weights already loaded) with `fc` replaced by a fresh (2048|512 -> classes) layer.

    The new layer keeps PyTorch's default Linear init, as torchvision's own ResNet classifier does.
    """
    resnet.fc = nn.Linear(resnet.fc.in_features, num_classes)
    return resnet
