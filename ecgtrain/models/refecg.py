"""Ref-ECG: the AlexNet-style 1D CNN of Hasan & Bhattacharjee (2019) on the lead sum.

Layer order as the public repository's default model (`config.architect = 'AlexNet'`,
`model_Alexnet_single_channel` in `EMD_Models.py`, Keras):
  conv 96 k11 s4 (valid) -> ReLU -> BN -> max pool 2 s2
  conv 256 k5 (pad 2)    -> ReLU -> BN -> max pool 3 s2
  conv 384 k3 (pad 1)    -> ReLU
  conv 384 k3 (pad 1)    -> ReLU
  conv 256 k3 (pad 1)    -> ReLU -> max pool 3 s2
  flatten -> dense 4096 -> ReLU -> dropout 0.5 -> dense 4096 -> ReLU -> dropout 0.5 -> dense classes
Keras' defaults are kept where they differ from PyTorch's: Glorot-uniform weights with zero biases,
BatchNorm eps 1e-3 and running-average momentum 0.01 (Keras momentum 0.99).
For L = 1000: 248 -> 124 -> 124 -> 61 -> 61 -> 30 steps, 256 x 30 = 7,680 features.
"""

from __future__ import annotations

import torch
from torch import nn

from ecgtrain.errors import TrainError
from ecgtrain.models.registry import register_model


def _bn(channels: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(channels, eps=1e-3, momentum=0.01)


def feature_length(input_length: int) -> int:
    """Time steps left after the convolution/pooling stack for an input of `input_length` samples."""
    steps = (input_length - 11) // 4 + 1  # conv 96 k11 s4, no padding
    steps = steps // 2  # max pool 2 s2
    steps = (steps - 3) // 2 + 1  # max pool 3 s2 (the k5 and k3 convs are padded to keep length)
    return (steps - 3) // 2 + 1  # max pool 3 s2


class RefECG(nn.Module):
    """(B, 1, L) lead sums -> (B, classes) logits."""

    def __init__(self, num_classes: int, input_length: int = 1000):
        super().__init__()
        if input_length < 63 or feature_length(input_length) < 1:
            raise TrainError(
                f"Ref-ECG needs windows of at least 63 samples, got {input_length}; "
                "build the dataset with a longer window"
            )
        self.input_length = input_length
        self.features = nn.Sequential(
            nn.Conv1d(1, 96, 11, stride=4), nn.ReLU(inplace=True), _bn(96), nn.MaxPool1d(2, 2),
            nn.Conv1d(96, 256, 5, padding=2), nn.ReLU(inplace=True), _bn(256), nn.MaxPool1d(3, 2),
            nn.Conv1d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv1d(384, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv1d(384, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool1d(3, 2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(256 * feature_length(input_length), 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, num_classes),
        )
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                assert module.bias is not None  # every conv and linear layer above has a bias
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != 1 or x.shape[2] != self.input_length:
            raise TrainError(
                f"Ref-ECG expects lead sums shaped (batch, 1, {self.input_length}), got {tuple(x.shape)}; "
                "feed refecg.h5 windows of the length the model was built for"
            )
        return self.classifier(self.features(x))


@register_model("refecg", input="signal", display="Ref-ECG", default_weights="none")
def build_refecg(num_classes: int, input_length: int = 1000, **_) -> nn.Module:
    """Ref-ECG for windows of `input_length` samples (it has no ResNet backbone)."""
    return RefECG(num_classes, input_length)
