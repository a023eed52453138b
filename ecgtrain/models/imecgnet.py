"""ImECGnet: a ResNet50 trunk, a lead branch and a channel branch (MGN-style part heads).

Shapes for a 314 x 384 image (docs/models.md has the full table):
  trunk   conv1 .. layer3[0]                         (B, 1024, 20, 24)
  lead    copy of layer3[1:] + layer4, stride 1      (B, 2048, 20, 24)
          max over n width-wise bins + global max    (B, n + 1, 2048)
  channel copy of layer3[1:] + layer4, stride 2      (B, 2048, 10, 12)
          global max, 4 depth slices of 512          (B, 4, 512)
  per part: 1x1 conv -> 256, BatchNorm, ReLU; FC -> classes
  (n + 5) part scores, concatenated -> one FC -> classes (the logits).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import ResNet

from ecgtrain.errors import TrainError
from ecgtrain.models.registry import register_model
from ecgtrain.models.weights import resnet_backbone

REDUCED = 256  # phase B width, as MGN
CHANNEL_PARTS = 4


class PartHead(nn.Module):
    """Phases B and C for P parts at once: per part a 1x1 conv + BatchNorm + ReLU, then an FC.

    Each part has its own weights; the P convolutions (on 1 x 1 pooled maps, i.e. matrix products)
    and the P FCs run as one batched product each, and the P BatchNorms are one BatchNorm1d over
    P x 256 features (each feature keeps its own statistics, exactly as P separate layers).
    Input (B, P, in_dim) -> reduced (B, P, 256) and scores (B, P, classes).
    """

    def __init__(self, parts: int, in_dim: int, num_classes: int):
        super().__init__()
        self.parts = parts
        self.reduce = nn.Parameter(torch.empty(parts, in_dim, REDUCED))
        self.bn = nn.BatchNorm1d(parts * REDUCED)
        self.fc_weight = nn.Parameter(torch.empty(parts, REDUCED, num_classes))
        self.fc_bias = nn.Parameter(torch.zeros(parts, num_classes))
        # MGN's reduction init: kaiming normal (fan_in) conv, BatchNorm weight ~ N(1, 0.02), bias 0.
        nn.init.normal_(self.reduce, std=math.sqrt(2.0 / in_dim))
        nn.init.normal_(self.bn.weight, mean=1.0, std=0.02)
        nn.init.zeros_(self.bn.bias)
        # MGN's classifier init: kaiming normal (fan_out = classes), bias 0.
        nn.init.normal_(self.fc_weight, std=math.sqrt(2.0 / num_classes))

    def forward(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        reduced = torch.einsum("bpi,pio->bpo", pooled, self.reduce)
        reduced = F.relu(self.bn(reduced.flatten(1))).reshape(-1, self.parts, REDUCED)
        scores = torch.einsum("bpi,pio->bpo", reduced, self.fc_weight) + self.fc_bias
        return reduced, scores


def _stride_one(layer4: nn.Sequential) -> nn.Sequential:
    """layer4 with its first block at stride 1 (same weights; the map keeps layer3's size)."""
    layer4[0].conv2.stride = (1, 1)  # type: ignore[method-assign, assignment]
    layer4[0].downsample[0].stride = (1, 1)  # type: ignore[index, method-assign]
    return layer4


class ImECGnet(nn.Module):
    """The paper's two-branch network, built from a torchvision ResNet50 (weights already loaded)."""

    def __init__(self, resnet: ResNet, n_leads: int, num_classes: int):
        super().__init__()
        self.n_leads = n_leads
        self.num_classes = num_classes
        self.trunk = nn.Sequential(
            resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool,
            resnet.layer1, resnet.layer2, resnet.layer3[0],
        )
        conv4_rest = nn.Sequential(*resnet.layer3[1:])
        self.lead_branch = nn.Sequential(
            copy.deepcopy(conv4_rest), _stride_one(copy.deepcopy(resnet.layer4))
        )
        self.channel_branch = nn.Sequential(copy.deepcopy(conv4_rest), copy.deepcopy(resnet.layer4))
        self.lead_head = PartHead(n_leads + 1, 2048, num_classes)
        self.channel_head = PartHead(CHANNEL_PARTS, 2048 // CHANNEL_PARTS, num_classes)
        self.fusion = nn.Linear((n_leads + 1 + CHANNEL_PARTS) * num_classes, num_classes)

    @property
    def parts(self) -> int:
        """Number of part scores fed to the fusion FC: n + 5."""
        return self.n_leads + 1 + CHANNEL_PARTS

    def stages(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every intermediate tensor by name (docs/models.md); `logits` is what `forward` returns."""
        trunk = self.trunk(x)
        lead_map = self.lead_branch(trunk)
        channel_map = self.channel_branch(trunk)
        # Phase A. Lead parts: max over n width-wise bins (adaptive, so any n and width work);
        # the bins cover every column, so the global volume's max is the max of the part maxima.
        lead_parts = F.adaptive_max_pool2d(lead_map, (1, self.n_leads)).flatten(2).transpose(1, 2)
        lead_global = lead_parts.amax(dim=1, keepdim=True)
        lead_pooled = torch.cat([lead_global, lead_parts], dim=1)  # (B, n + 1, 2048)
        # Channel parts: max pooling is per channel, so pool the map once and cut the depth in 4.
        channel_pooled = channel_map.amax(dim=(2, 3)).reshape(-1, CHANNEL_PARTS, 2048 // CHANNEL_PARTS)
        lead_reduced, lead_scores = self.lead_head(lead_pooled)  # phases B and C
        channel_reduced, channel_scores = self.channel_head(channel_pooled)
        part_scores = torch.cat([lead_scores, channel_scores], dim=1)  # (B, n + 5, classes)
        return {
            "trunk": trunk,
            "lead_map": lead_map,
            "channel_map": channel_map,
            "lead_pooled": lead_pooled,
            "channel_pooled": channel_pooled,
            "lead_reduced": lead_reduced,
            "channel_reduced": channel_reduced,
            "part_scores": part_scores,
            "logits": self.fusion(part_scores.flatten(1)),
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) standardized images -> (B, classes) logits."""
        return self.stages(x)["logits"]

    def part_contributions(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """How much each part pushed each class's logit: (B, n + 5, classes) and the fusion bias (classes,).

        The fusion layer is linear in the part scores, so logit[c] = bias[c] + sum over parts p of
        contribution[p, c], contribution[p, c] = sum over k of W[c, p * classes + k] * score[p, k].
        Parts in order: global, lead 1 .. n (width-wise bins), channel 1 .. 4 (docs/models.md).
        """
        scores = self.stages(x)["part_scores"]  # (B, P, C)
        weight = self.fusion.weight.reshape(self.num_classes, self.parts, self.num_classes)  # (c, p, k)
        return torch.einsum("bpk,cpk->bpc", scores, weight), self.fusion.bias


@register_model("imecgnet", input="image", display="ImECGnet", default_weights="imagenet", cam_layer="lead_branch")
def build_imecgnet(num_classes: int, n_leads: int | None = None, init_backbone=None, **_) -> nn.Module:
    """ImECGnet for `n_leads` leads; the ResNet50's weights are loaded before the branches are copied."""
    if n_leads is None or n_leads < 1:
        raise TrainError(f"imecgnet needs the number of leads (from dataset.json), got {n_leads}")
    return ImECGnet(resnet_backbone("resnet50", init_backbone), n_leads, num_classes)
