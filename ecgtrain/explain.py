"""`ecgtrain explain`: what a trained model looked at, per window, and (ImECGnet) which lead part decided.

- ImECGnet: the fusion layer is linear in the part scores, so each part's contribution to a class's
  logit is exact (`ImECGnet.part_contributions`); drawn as a bar per lead part under the image.
- Every image model: Grad-CAM (captum's LayerGradCam) on the registry's `cam_layer`, upsampled to the
  image, with the lead boundaries of the card's render geometry marked.
- Ref-ECG: saliency (captum's Saliency: |d logit / d input|) over the window's samples.
With a dataset, ImECGnet also gets a summary over a whole split: the mean absolute contribution of
each part to each class's logit, over the windows of that class. docs/models.md explains the outputs
and their limits.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast

import numpy as np
import torch
from tqdm import tqdm

from ecgrender import lead_columns, record_inputs
from shards import layout
from shards.card import read_card

from .data import card_info, make_batches
from .errors import TrainError
from .inference import LoadedRun
from .models import ModelSpec
from .report import new_figure, save_png, sigmoid, softmax

CHANNEL_PARTS = 4


class PartModel(Protocol):
    """A model whose logits are a sum of part contributions (ImECGnet): what the part bars and summary need."""

    def part_contributions(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass
class Windows:
    """Inputs to explain: keys, model inputs (uint8 (N, H, W) images or float32 (N, L) lead sums), true labels."""

    keys: list[str]
    x: np.ndarray
    labels: list[str | None] = field(default_factory=list)


def part_names(leads: list[str]) -> list[str]:
    """ImECGnet's parts in `part_contributions` order: global, each lead, each channel slice."""
    return ["global", *leads, *(f"channel {i + 1}" for i in range(CHANNEL_PARTS))]


def _label_names(y, classes: list[str], multi_label: bool) -> str:
    if multi_label:
        return ";".join(c for c, v in zip(classes, np.asarray(y)) if v) or "-"
    return classes[int(y)]


def record_windows(loaded: LoadedRun, record_path: Path, max_windows: int) -> Windows:
    """Up to `max_windows` windows of a WFDB record, made as the run's dataset card says."""
    inputs = record_inputs(record_path, loaded.card_dict, max_windows, images=loaded.spec.input == "image")
    return Windows([f"{Path(record_path).name}@{s}" for s in inputs.starts], inputs.x, [None] * len(inputs.starts))


def check_dataset(loaded: LoadedRun, dataset: Path) -> dict:
    """`dataset`'s card; TrainError unless it has the run's classes and label type, window length and (image
    models) leads, renderer and render settings, so that the run's lead boundaries fit its images."""
    card = read_card(dataset)
    info = card_info(card)
    if info.classes != loaded.card.classes or info.multi_label != loaded.card.multi_label:
        raise TrainError(f"dataset {dataset} has classes {info.classes}, the run was trained on {loaded.card.classes}: "
                         "explain windows of a dataset with the same classes")
    run_card = loaded.card_dict
    pairs = {"window length": (card["window"]["length"], run_card["window"]["length"])}
    if loaded.spec.input == "image":
        pairs |= {name: (card[name], run_card[name]) for name in ("n_leads", "renderer", "render")}
    for name, (ours, theirs) in pairs.items():
        if ours != theirs:
            raise TrainError(f"dataset {dataset} has {name} {ours}, the run's dataset {theirs}: explain windows made "
                             "the way the run's were")
    return card


def _done(found: dict, wanted: set[str] | None, limit: int) -> bool:
    return len(found) >= limit if wanted is None else wanted <= found.keys()


def dataset_windows(loaded: LoadedRun, dataset: Path, card: dict, keys: list[str] | None, split: str,
                    limit: int) -> Windows:
    """The windows `keys` (searched in every split that has windows), or the first `limit` windows of `split`."""
    wanted = None if keys is None else set(keys)
    found: dict[str, tuple[np.ndarray, str]] = {}
    held = [s for s in layout.SPLITS if sum(card["counts"].get(s, {}).values())]
    for s in (held if keys is not None else [split] if split in held else []):
        if _done(found, wanted, limit):
            break
        for batch in make_batches(dataset, s, loaded.spec.name, 16, workers=0):
            for i, key in enumerate(batch.keys):
                if (wanted is None and len(found) < limit) or (wanted is not None and key in wanted):
                    found[key] = (batch.x[i].numpy(), _label_names(batch.y[i], loaded.card.classes,
                                                                     loaded.card.multi_label))
            if _done(found, wanted, limit):
                break
    order = keys if keys is not None else list(found)
    missing = [k for k in order if k not in found]
    if missing:
        raise TrainError(f"key {missing[0]} is not in dataset {dataset} (splits {', '.join(layout.SPLITS)}): "
                         "take keys from its manifest.csv")
    if not order:
        raise TrainError(f"split {split} of {dataset} is empty: choose another --split")
    x = np.stack([found[k][0] for k in order])
    return Windows(order, x[:, 0] if x.ndim == 3 and loaded.spec.input == "signal" else x, [found[k][1] for k in order])


def _model_input(loaded: LoadedRun, x: np.ndarray) -> torch.Tensor:
    """The model's standardized input for raw windows `x`."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    if loaded.spec.input == "signal":
        t = t[:, None, :]
    return loaded.standardize()(t.to(loaded.device)).float()


def _probabilities(loaded: LoadedRun, logits: np.ndarray) -> np.ndarray:
    return sigmoid(logits) if loaded.card.multi_label else softmax(logits)


def attributions(model: torch.nn.Module, spec: ModelSpec, x: torch.Tensor, target: int) -> np.ndarray:
    """Grad-CAM on `spec.cam_layer` (image models: (H, W), >= 0, upsampled bilinearly) or saliency (signal models:
    (L,)) of one standardized input `x` ((3, H, W) or (1, L)) for class `target`."""
    from captum.attr import LayerAttribution, LayerGradCam, Saliency

    x = x[None].clone().requires_grad_(True)
    if spec.input == "signal":
        return Saliency(model).attribute(x, target=target, abs=True)[0, 0].detach().cpu().numpy()
    cam = LayerGradCam(model, model.get_submodule(spec.cam_layer))
    attr = cam.attribute(x, target=target, relu_attributions=True)
    return LayerAttribution.interpolate(attr, tuple(x.shape[-2:]), interpolate_mode="bilinear")[0, 0].detach().cpu().numpy()


def _safe(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@-]", "_", key)


def _draw_image(ax, image: np.ndarray, columns: list[float], leads: list[str], cam: np.ndarray | None = None) -> None:
    ax.imshow(image, cmap="gray", vmin=0, vmax=255, aspect="auto")
    if cam is not None:
        ax.imshow(cam / cam.max() if cam.max() > 0 else cam, cmap="jet", alpha=0.45, vmin=0, vmax=1, aspect="auto")
    for col in columns:
        ax.axvline(col - 0.5, color="red", linewidth=0.8, linestyle="--")
    for name, lo, hi in zip(leads, columns, columns[1:]):
        ax.text((lo + hi) / 2, 2, name, color="red", ha="center", va="top", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_image_explanation(path: Path, image: np.ndarray, cam: np.ndarray, columns: list[float], leads: list[str],
                           title: str, contributions: np.ndarray | None = None, rest: str = "",
                           explained: str = "") -> None:
    """KEY.png of an image model: the image, the Grad-CAM overlay with lead boundaries, and (ImECGnet) the lead
    parts' contributions as bars under their bins (the model's n equal-width bins of the image)."""
    rows = 3 if contributions is not None else 2
    fig, axes = new_figure(7.5, 2.4 * rows, rows=rows)
    _draw_image(axes[0], image, columns, leads)
    axes[0].set_title(title, fontsize=9)
    _draw_image(axes[1], image, columns, leads, cam)
    axes[1].set_title("Grad-CAM (red dashes: lead boundaries)", fontsize=9)
    if contributions is not None:
        ax = axes[2]
        width = image.shape[1]
        bins = np.linspace(0, width, len(leads) + 1)
        centres = (bins[:-1] + bins[1:]) / 2
        colours = ["tab:green" if v >= 0 else "tab:red" for v in contributions]
        ax.bar(centres - 0.5, contributions, width=0.8 * width / len(leads), color=colours)
        ax.set_xlim(-0.5, width - 0.5)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xticks(centres - 0.5, leads)
        ax.set_ylabel("logit contribution")
        ax.set_title(f"each lead part's contribution to the logit of {explained}\n{rest}", fontsize=8)
    save_png(fig, path)


def plot_signal_explanation(path: Path, signal: np.ndarray, saliency: np.ndarray, title: str) -> None:
    """KEY.png of a signal model: the lead sum and its saliency over the samples."""
    fig, axes = new_figure(7.5, 4.0, rows=2)
    axes[0].plot(signal, linewidth=0.8)
    axes[0].set_title(title, fontsize=9)
    axes[0].set_ylabel("lead sum")
    axes[1].fill_between(np.arange(len(saliency)), saliency, color="tab:orange")
    for ax in axes:
        ax.set_xlim(0, len(saliency) - 1)
    axes[1].set_xlabel("sample")
    axes[1].set_ylabel("|d logit / d input|")
    save_png(fig, path)


def explain_windows(loaded: LoadedRun, windows: Windows, out: Path, target: str | None) -> list[dict]:
    """One KEY.png per window and its explanation (prediction, and ImECGnet's part contributions)."""
    classes, leads = loaded.card.classes, list(loaded.card_dict["leads"])
    columns = lead_columns(loaded.card_dict) if loaded.spec.input == "image" else []
    has_parts = hasattr(loaded.model, "part_contributions")
    results = []
    for i, key in enumerate(tqdm(windows.keys, desc="explain", unit="window", leave=False)):
        x = _model_input(loaded, windows.x[i:i + 1])
        with torch.no_grad():
            logits = loaded.model(x).float().cpu().numpy()
        probs = _probabilities(loaded, logits)[0]
        predicted = int(probs.argmax())
        t = classes.index(target) if target is not None else predicted
        entry = {"key": key, "label": windows.labels[i] if windows.labels else None, "predicted": classes[predicted],
                 "explained_class": classes[t], "probabilities": dict(zip(classes, map(float, probs))),
                 "figure": f"{_safe(key)}.png"}
        attr = attributions(loaded.model, loaded.spec, x[0], t)
        title = (f"{key}: true {entry['label'] or '?'}, predicted {classes[predicted]} ({probs[predicted]:.2f}); "
                 f"explaining {classes[t]}")
        if loaded.spec.input == "signal":
            plot_signal_explanation(out / entry["figure"], windows.x[i], attr, title)
            entry["saliency_peak_sample"] = int(attr.argmax())
        else:
            contributions = None
            rest = ""
            if has_parts:
                with torch.no_grad():
                    contrib, bias = cast(PartModel, loaded.model).part_contributions(x)
                parts = contrib[0, :, t].float().cpu().numpy()
                names = part_names(leads)
                entry["parts"] = dict(zip(names, map(float, parts)))
                entry["bias"] = float(bias[t].detach())
                entry["logit"] = float(logits[0, t])
                contributions = parts[1:1 + len(leads)]
                rest = (f"not drawn: global {parts[0]:+.3g}, channels "
                        + ", ".join(f"{v:+.3g}" for v in parts[1 + len(leads):])
                        + f", bias {entry['bias']:+.3g}; logit {entry['logit']:+.3g}")
            plot_image_explanation(out / entry["figure"], windows.x[i], attr, columns, leads, title, contributions, rest,
                                   classes[t])
        results.append(entry)
    return results


def part_summary(loaded: LoadedRun, dataset: Path, split: str, batch_size: int, workers: int,
                 progress: bool) -> dict[str, dict[str, float]]:
    """ImECGnet over a split: class -> part -> mean |contribution to that class's logit| over the class's windows."""
    classes, names = loaded.card.classes, part_names(list(loaded.card_dict["leads"]))
    total = np.zeros((len(classes), len(names)))
    count = np.zeros(len(classes))
    prep = loaded.standardize()
    batches = make_batches(dataset, split, loaded.spec.name, batch_size, workers)
    with torch.no_grad():
        for batch in tqdm(batches, desc=f"summary ({split})", unit="batch", leave=False, disable=not progress):
            contrib, _ = cast(PartModel, loaded.model).part_contributions(prep(batch.x.to(loaded.device)).float())
            magnitude = contrib.abs().cpu().numpy()  # (B, P, C)
            member = np.asarray(batch.y) if loaded.card.multi_label else np.eye(len(classes))[np.asarray(batch.y)]
            total += np.einsum("bc,bpc->cp", member, magnitude)
            count += member.sum(0)
    return {c: dict(zip(names, map(float, total[i] / count[i]))) for i, c in enumerate(classes) if count[i]}


def plot_summary(summary: dict[str, dict[str, float]], path: Path, title: str) -> None:
    """summary.png: classes x parts, mean |contribution|."""
    classes = list(summary)
    names = list(summary[classes[0]])
    values = np.array([[summary[c][p] for p in names] for c in classes])
    fig, ax = new_figure(1.0 + 0.6 * len(names), 1.2 + 0.45 * len(classes))
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    for (r, c), v in np.ndenumerate(values):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < values.max() / 2 else "black")
    fig.colorbar(image, ax=ax, label="mean |logit contribution|")
    ax.set_title(title, fontsize=9)
    save_png(fig, path)


def _summary_csv(summary: dict[str, dict[str, float]]) -> str:
    names = list(next(iter(summary.values())))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["class", *names])
    for c, values in summary.items():
        writer.writerow([c, *(f"{values[p]:.6g}" for p in names)])
    return buffer.getvalue()


def run_explain(loaded: LoadedRun, out: Path, record: Path | None = None, dataset: Path | None = None,
                keys: list[str] | None = None, split: str = "test", target: str | None = None, max_windows: int = 4,
                batch_size: int = 16, workers: int = 0, progress: bool = True,
                echo: Callable[[str], None] = print) -> Path:
    """Explain windows of a record or a dataset into OUT (KEY.png, explanations.json; with a dataset and ImECGnet,
    summary.csv/png); returns explanations.json."""
    if keys is not None and dataset is None:
        raise TrainError("--keys name windows of --dataset: give --dataset")
    if (record is None) == (dataset is None):
        raise TrainError("give either a RECORD or --dataset DATASET (with --keys, or the first --max-windows windows "
                         "of --split)")
    if target is not None and target not in loaded.card.classes:
        raise TrainError(f"--target {target!r} is not a class of the run ({', '.join(loaded.card.classes)})")
    if max_windows < 1:
        raise TrainError(f"--max-windows must be at least 1, got {max_windows}")
    if dataset is not None:
        card = check_dataset(loaded, dataset)
        windows = dataset_windows(loaded, dataset, card, keys, split, max_windows)
    else:
        assert record is not None
        windows = record_windows(loaded, record, max_windows)
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"run_model": loaded.spec.name, "method": "saliency" if loaded.spec.input == "signal" else
                    f"Grad-CAM on {loaded.spec.cam_layer}", "windows": explain_windows(loaded, windows, out, target)}
    if dataset is not None and hasattr(loaded.model, "part_contributions") and sum(card["counts"][split].values()):
        summary = part_summary(loaded, dataset, split, batch_size, workers, progress)
        if summary:
            result["summary"] = {"split": split, "mean_abs_contribution": summary}
            layout.write_atomic(out / "summary.csv", _summary_csv(summary))
            plot_summary(summary, out / "summary.png",
                         f"{loaded.spec.display}: mean |part contribution| to each class's logit ({split} windows)")
            echo(f"part summary over {split}: {out / 'summary.csv'}")
    path = out / "explanations.json"
    layout.write_atomic(path, json.dumps(result, indent=2) + "\n")
    return path
