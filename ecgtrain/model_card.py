"""RUN/model_card.json and RUN/MODEL_CARD.md: what a trained run is, so that it can travel between labs.

Written with the test report of a run on its own dataset: the model and how it was trained, the data it
was trained on (the dataset card's checksum, source database with licence and citation, classes, lead
order, window, render settings), the test metrics with their intervals, and what the model can and
cannot be used for. Plain JSON and Markdown: a run directory from elsewhere is data, never code.
"""

from __future__ import annotations

import json
from pathlib import Path

from shards import layout

CARD_JSON = "model_card.json"
CARD_MD = "MODEL_CARD.md"
_TRAINING = ("epochs", "batch_size", "lr", "lr_step", "lr_gamma", "momentum", "weight_decay", "balance", "precise_bn",
             "seed", "amp", "torch", "device", "world_size")
_HEADLINE = {"single-label": ("accuracy", "balanced_accuracy", "macro_f1"),
             "multi-label": ("auroc_macro", "auprc_macro", "fmax")}


def model_card(args: dict, card: dict, report: dict, display: str, input_kind: str) -> dict:
    """The model card of a run: `args` (its args.json), `card` (its copy of the dataset card), `report` (its test
    report.json content), the model's display name and input kind ("image" or "signal")."""
    source = card["source"]
    label_type = card.get("label_type", "single-label")
    metrics = report["metrics"]
    render = card["render"]
    shape = (f"grey image {render.get('out_h')} x {render.get('out_w')} px (the {card['n_leads']} leads side by side, "
             f"renderer {card['renderer']}), copied to 3 channels and ImageNet-standardized"
             if input_kind == "image" else f"the sum of the {card['n_leads']} leads, {card['window']['length']} samples")
    return {
        "model": args["model"],
        "display": display,
        "initial_weights": args.get("weights"),
        "training": {k: args[k] for k in _TRAINING if k in args},
        "data": {
            "card_sha256": args.get("card_sha256"),
            "database": source["database"], "version": source["version"],
            **{k: source[k] for k in ("url", "doi", "licence", "citation", "task", "fs") if k in source},
            "label_type": label_type, "classes": card["classes"], "leads": card["leads"],
            "window": card["window"], "renderer": card["renderer"], "render": render, "split_by": card["split_by"],
            "counts": card["counts"],
        },
        "input": shape,
        "output": ("independent sigmoid probabilities, one per class" if label_type == "multi-label"
                   else "softmax probabilities over the classes (prediction: the most probable)"),
        "test_metrics": {k: metrics[k] for k in metrics if k.split("_ci95")[0] in _HEADLINE[label_type]}
                        | {k: metrics[k] for k in ("n_windows", "ci_unit", "ci_groups", "ci_resamples", "non_finite_windows")
                           if k in metrics},
        "limitations": [
            f"Trained and tested on {source['database']} {source['version']} only, split by {card['split_by']}; "
            "other databases, devices, sampling rates or lead sets are outside what was measured.",
            "Inputs must be made the way the dataset card says (`ecgtrain predict` does): same leads in the same "
            "order, same sampling rate and window length, same renderer and render settings.",
            "A research model: not validated for clinical use.",
        ],
    }


def _markdown(mc: dict) -> str:
    data, metrics = mc["data"], mc["test_metrics"]
    rows = [f"| {name} | {metrics[name]:.4f} | {metrics[name + '_ci95'][0]:.4f} - {metrics[name + '_ci95'][1]:.4f} |"
            for name in _HEADLINE[data["label_type"]] if metrics.get(name) is not None]
    lines = [
        f"# Model card: {mc['display']} ({mc['model']}) on {data['database']} {data['version']}",
        "",
        f"- trained from: {mc['initial_weights']} weights; "
        + ", ".join(f"{k} {v}" for k, v in mc["training"].items()),
        f"- data: dataset.json sha256 `{data['card_sha256']}`, {data['label_type']}, classes "
        f"{', '.join(data['classes'])}; split by {data['split_by']}",
        f"- source licence: {data.get('licence', 'not recorded')}"
        + "".join(f", {data[k]}" for k in ("url", "doi") if k in data),
        f"- input: {mc['input']}; leads in this order: {', '.join(data['leads'])}; window "
        f"{data['window'].get('length')} samples at {data['window'].get('fs')} Hz",
        f"- output: {mc['output']}",
        "",
        f"Test metrics ({metrics.get('n_windows')} windows; 95 % cluster-bootstrap intervals over "
        f"{metrics.get('ci_groups')} {metrics.get('ci_unit')}s):",
        "",
        "| metric | value | 95 % interval |",
        "| --- | --- | --- |",
        *rows,
        "",
        "Limitations:",
        *(f"- {text}" for text in mc["limitations"]),
    ]
    if data.get("citation"):
        lines += ["", "Cite the source database:", "", "```bibtex", data["citation"], "```"]
    return "\n".join(lines) + "\n"


def write_model_card(run: Path, args: dict, card: dict, report: dict, display: str, input_kind: str) -> None:
    """Write RUN/model_card.json and RUN/MODEL_CARD.md (atomically) from the run's settings, data and test report."""
    mc = model_card(args, card, report, display, input_kind)
    layout.write_atomic(run / CARD_JSON, json.dumps(mc, indent=2) + "\n")
    layout.write_atomic(run / CARD_MD, _markdown(mc))
