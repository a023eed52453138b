"""`--weights imagenet|none|PATH`: where a model's starting weights come from.

- `imagenet`: torchvision's ImageNet weights (`IMAGENET1K_V1`) through its weights API; the file is
  downloaded once into the torch hub cache (`$TORCH_HOME/hub/checkpoints/`). When it cannot be had,
  this stops with an `TrainError` naming `--weights none`, `--weights PATH` and the cache file; it never
  falls back to random weights.
- `none`: PyTorch's / the model's own initialisation.
- PATH: a state dict file, either a torchvision ResNet backbone (its `fc` is ignored; the ECG layers
  start fresh) or a whole model saved by ecgtrain (a bare state dict or a checkpoint dict with a
  `model` entry). Both are loaded strictly; a file that fits neither is an `TrainError` naming it.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet, ResNet34_Weights, ResNet50_Weights, resnet34, resnet50

from ecgtrain.errors import TrainError

IMAGENET = {"resnet34": ResNet34_Weights.IMAGENET1K_V1, "resnet50": ResNet50_Weights.IMAGENET1K_V1}
_RESNETS = {"resnet34": resnet34, "resnet50": resnet50}
CHOICES = "--weights imagenet|none|PATH"


def parse_weights(weights: str | os.PathLike) -> str | Path:
    """'imagenet' or 'none' as given; anything else is a path to an existing file."""
    if isinstance(weights, str) and weights in ("imagenet", "none"):
        return weights
    path = Path(weights)
    if not path.is_file():
        raise TrainError(f"weights file {path} not found; pass {CHOICES}")
    return path


def hub_cache_file(arch: str) -> Path:
    """Where torchvision looks for (and downloads) the ImageNet file of `arch`."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(IMAGENET[arch].url)


def imagenet_state_dict(arch: str, model_name: str) -> dict[str, torch.Tensor]:
    """The ImageNet state dict of `arch` ('resnet34' | 'resnet50'), from the hub cache or the network."""
    weights = IMAGENET[arch]
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise TrainError(
            f"cannot get ImageNet weights for {model_name} from {weights.url} ({reason}); "
            f"pass --weights none to start from random weights, --weights PATH for a local state dict, "
            f"or put the downloaded file at {hub_cache_file(arch)}"
        ) from exc


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a state dict file (or of the `model` entry of an ecgtrain checkpoint)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for a file that is not a state dict
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise TrainError(
            f"cannot read weights file {path} ({reason}); pass a file written by "
            f"torch.save(model.state_dict(), PATH) or an ecgtrain checkpoint"
        ) from exc
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not state or not all(torch.is_tensor(v) for v in state.values()):
        raise TrainError(
            f"weights file {path} holds no state dict (a mapping of names to tensors); pass a file "
            f"written by torch.save(model.state_dict(), PATH) or an ecgtrain checkpoint"
        )
    return state


def _shapes(state: dict[str, torch.Tensor], skip_fc: bool = False) -> dict[str, tuple]:
    """Name -> shape, without BatchNorm's `num_batches_tracked` counters (old files lack them)."""
    return {
        k: tuple(v.shape) for k, v in state.items()
        if not k.endswith("num_batches_tracked") and not (skip_fc and k.startswith("fc."))
    }


def _compare(expected: dict[str, tuple], found: dict[str, tuple]) -> str:
    """A short description of how `found` differs from `expected`; empty when they agree."""

    def some(names: list[str]) -> str:
        return ", ".join(names[:3]) + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")

    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
    parts = []
    if missing:
        parts.append(f"missing {some(missing)}")
    if unexpected:
        parts.append(f"unexpected {some(unexpected)}")
    if reshaped:
        k = reshaped[0]
        parts.append(f"{len(reshaped)} shape mismatches, e.g. {k}: {found[k]} in the file, {expected[k]} here")
    return "; ".join(parts)


def difference(model: nn.Module, state: dict[str, torch.Tensor], skip_fc: bool = False) -> str:
    """How `state` differs from `model`'s parameters and buffers (names, shapes); '' when it fits."""
    return _compare(_shapes(model.state_dict(), skip_fc), _shapes(state, skip_fc))


def mismatch(path: str | Path, what: str, found: str) -> TrainError:
    """The error for a weights file that does not fit the model being built."""
    return TrainError(
        f"weights file {path} does not fit {what}: {found}; pass the file saved for this "
        f"model, number of leads and classes, or {CHOICES}"
    )


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path, what: str,
                skip_fc: bool = False) -> None:
    """Load `state` into `model` (all of it, or all but `fc.*`), or stop naming the file and the mismatch."""
    found = difference(model, state, skip_fc)
    if found:
        raise mismatch(path, what, found)
    if skip_fc:
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        model.load_state_dict(state, strict=False)  # `difference` checked every other key and shape
    else:
        model.load_state_dict(state, strict=True)


def resnet_backbone(arch: str, init_backbone=None) -> ResNet:
    """A torchvision ResNet (`arch`: resnet34 | resnet50), its weights loaded by `init_backbone(resnet, arch)`."""
    resnet = _RESNETS[arch](weights=None)
    if init_backbone is not None:
        init_backbone(resnet, arch)
    return resnet


def _shared_keys(model: nn.Module, state: dict[str, torch.Tensor]) -> int:
    return len(state.keys() & model.state_dict().keys())


def build_with_weights(build, source: str | Path, model_name: str, what: str) -> nn.Module:
    """`build(init_backbone)` (a registered builder, its other arguments bound) started from `source`.

    'none': the model's own init; 'imagenet': ImageNet loaded into its ResNet backbone; a file: a
    whole model saved by ecgtrain (loaded strictly) or else a torchvision backbone (all but `fc`).
    A file that fits neither is a TrainError naming the difference to the one it resembles more.
    """
    if source == "none":
        return build(None)
    if source == "imagenet":
        return build(lambda resnet, arch: resnet.load_state_dict(imagenet_state_dict(arch, model_name)))
    state = read_state_dict(source)
    model = build(None)
    if not difference(model, state):  # a whole model saved by ecgtrain
        load_strict(model, state, source, what)
        return model
    used = []

    def from_file(resnet: nn.Module, arch: str) -> None:
        used.append(arch)
        if difference(resnet, state, skip_fc=True) and _shared_keys(model, state) > _shared_keys(resnet, state):
            raise mismatch(source, what, difference(model, state))
        load_strict(resnet, state, source, f"a torchvision {arch} backbone", skip_fc=True)

    backboned = build(from_file)
    if not used:  # the model has no ResNet backbone: the file had to be a whole model
        raise mismatch(source, what, difference(model, state))
    return backboned
