"""Precise BatchNorm statistics (`fit --precise-bn`): after an epoch, every BatchNorm layer's running mean and
variance are replaced by averages over one pass of the training split, with the weights unchanged.

Why: running averages start at mean 0, variance 1 and forget that start at the layer's momentum per step.
Ref-ECG's Keras-style momentum 0.01 keeps 0.99^steps of it, which on a short run still outweighs a small
true variance (measured in docs/results.md: after 420 steps the first layer's running variance was 10x the
true one), so evaluation sees badly normalised activations. Training itself never reads these buffers:
recalibrating changes only evaluation, validation and the saved buffers (Wu & Johnson, "Rethinking 'Batch'
in BatchNorm", 2021, call this PreciseBN).
"""

from __future__ import annotations

import torch

from .data import dist_info
from .inference import autocast, unwrap


def batchnorm_layers(model: torch.nn.Module) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    return [m for m in unwrap(model).modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_batchnorm(model: torch.nn.Module, prep, batches, device: torch.device, amp: bool) -> int:
    """Set the running statistics of every BatchNorm layer of `model` to their mean over `batches` (all other
    layers in eval mode: no dropout); averaged over DDP ranks. Returns how many batches were used."""
    module = unwrap(model).eval()
    norms = batchnorm_layers(module)
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
        m.train()
    used = 0
    for batch in batches:
        if len(batch.y) < 2:
            continue  # one sample has no batch variance
        with autocast(device, amp):
            module(prep(batch.x.to(device, non_blocking=True)))
        used += 1
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
        m.eval()
    if dist_info()[1] > 1:
        for m in norms:
            for buf in (m.running_mean, m.running_var):
                if buf is not None:
                    torch.distributed.all_reduce(buf)
                    buf /= dist_info()[1]
    return used
