"""`ecgtrain explain`: ImECGnet's part contributions, Grad-CAM for every image model, Ref-ECG saliency."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _train_data import CLASSES, LEADS, WINDOW, make_dataset
from buildutil import refused
from click.testing import CliRunner

import ecgrender
from ecgrender.render import make_renderer
from ecgrender.render.geometry import PAPER
from ecgtrain.cli import main
from ecgtrain.explain import attributions
from ecgtrain.models import build_model, get_model, model_names

RUN = ["--epochs", "1", "--batch-size", "4", "--workers", "0", "--no-progress", "--device", "cpu", "--weights", "none"]


def ecgtrain(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small 2-class image dataset (48 x 64 images) and a 1-epoch ImECGnet run on it."""
    root = tmp_path_factory.mktemp("explain")
    dataset = make_dataset(root / "ds", counts={"train": 8, "val": 4, "test": 6}, per_shard=4)
    run = root / "imecgnet"
    result = ecgtrain("fit", dataset, "--model", "imecgnet", "--out", run, *RUN)
    assert result.exit_code == 0, result.output
    return dataset, run


def test_imecgnet_part_contributions_sum_to_the_logits():
    torch.manual_seed(0)
    model = build_model("imecgnet", num_classes=3, n_leads=2, weights="none").eval()
    x = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        contributions, bias = model.part_contributions(x)
        logits = model(x)
    assert contributions.shape == (2, 2 + 5, 3)
    assert torch.allclose(contributions.sum(1) + bias, logits, rtol=1e-4, atol=1e-4)
    # each term by hand: part p's scores times the fusion weights of columns p * C .. p * C + C - 1
    scores = model.stages(x)["part_scores"].detach()
    weight = model.fusion.weight.detach()
    for p in range(7):
        by_hand = scores[:, p, :] @ weight[:, 3 * p:3 * p + 3].T
        assert torch.allclose(contributions[:, p, :], by_hand, rtol=1e-4, atol=1e-5), p


@pytest.mark.parametrize("name", [n for n in model_names() if get_model(n).input == "image"])
def test_grad_cam_of_every_image_model_has_the_images_size(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=2, n_leads=2, weights="none").eval()
    cam = attributions(model, get_model(name), torch.randn(3, 48, 64), target=1)
    assert cam.shape == (48, 64) and (cam >= 0).all() and np.isfinite(cam).all()


def test_saliency_of_refecg_covers_every_sample():
    model = build_model("refecg", num_classes=2, input_length=WINDOW).eval()
    saliency = attributions(model, get_model("refecg"), torch.randn(1, WINDOW), target=0)
    assert saliency.shape == (WINDOW,) and (saliency >= 0).all() and saliency.max() > 0


def test_lead_boundaries_are_where_the_rendered_leads_meet():
    window = np.zeros((400, 3))
    window[:, 1] = 1.0  # lead 2 raised: the line jumps up where lead 1 meets lead 2, down where lead 2 meets 3
    image = make_renderer("fast", PAPER).render(window)
    card = {"render": PAPER.as_dict(), "n_leads": 3, "window": {"length": 400}}
    columns = ecgrender.lead_columns(card)
    dark = image < 128
    tall = np.flatnonzero(dark.sum(axis=0) > 0.5 * image.shape[0])  # the vertical jumps
    assert len(columns) == 4
    assert abs(tall[tall < image.shape[1] / 2].mean() - columns[1]) <= 1.5
    assert abs(tall[tall > image.shape[1] / 2].mean() - columns[2]) <= 1.5
    drawn = np.flatnonzero(dark.any(axis=0))
    assert abs(drawn[0] - columns[0]) <= 2 and abs(drawn[-1] + 1 - columns[-1]) <= 2


def test_explain_imecgnet_on_dataset_keys_with_a_part_summary(tiny, tmp_path):
    dataset, run = tiny
    keys = [line.split(",")[0] for line in (dataset / "manifest.csv").read_text().splitlines()[1:]]
    chosen = [keys[0], keys[-1]]  # a train and a test window
    out = tmp_path / "exp"
    result = ecgtrain("explain", run, "--dataset", dataset, "--keys", ",".join(chosen), "--out", out,
                      "--device", "cpu", "--no-progress")
    assert result.exit_code == 0, result.output
    explained = json.loads((out / "explanations.json").read_text())
    assert [w["key"] for w in explained["windows"]] == chosen
    for w in explained["windows"]:
        assert list(w["parts"]) == ["global", *LEADS, "channel 1", "channel 2", "channel 3", "channel 4"]
        total = sum(w["parts"].values()) + w["bias"]
        assert total == pytest.approx(w["logit"], rel=1e-3, abs=1e-3)
        assert w["explained_class"] == w["predicted"] and w["label"] in CLASSES
        assert (out / w["figure"]).read_bytes().startswith(b"\x89PNG")
    summary = (out / "summary.csv").read_text().splitlines()
    assert summary[0] == "class,global,MLII,V1,channel 1,channel 2,channel 3,channel 4"
    assert [line.split(",")[0] for line in summary[1:]] == CLASSES
    assert all(float(v) >= 0 for line in summary[1:] for v in line.split(",")[1:])
    assert (out / "summary.png").read_bytes().startswith(b"\x89PNG")


def test_keys_of_a_test_only_dataset_such_as_a_noisy_copy(tiny, tmp_path):
    _, run = tiny
    test_only = make_dataset(tmp_path / "test-only", counts={"train": 0, "val": 0, "test": 3}, per_shard=4)
    key = (test_only / "manifest.csv").read_text().splitlines()[-1].split(",")[0]
    out = tmp_path / "exp"
    result = ecgtrain("explain", run, "--dataset", test_only, "--keys", key, "--out", out, "--device", "cpu",
                      "--no-progress")
    assert result.exit_code == 0, result.output
    assert [w["key"] for w in json.loads((out / "explanations.json").read_text())["windows"]] == [key]
    assert (out / "summary.csv").is_file()


def test_explain_a_record_with_refecg_and_a_chosen_class(tiny, tmp_path):
    from synth import write_mitdb

    records = write_mitdb(tmp_path / "mitdb", {"100": [("N", 12)]})
    dataset = make_dataset(tmp_path / "ds", counts={"train": 8, "val": 4, "test": 4}, per_shard=4)
    run = tmp_path / "refecg"
    assert ecgtrain("fit", dataset, "--model", "refecg", "--out", run, *RUN[:-2]).exit_code == 0
    out = tmp_path / "exp"
    result = ecgtrain("explain", run, records / "100", "--max-windows", "2", "--target", "fast", "--out", out,
                      "--device", "cpu")
    assert result.exit_code == 0, result.output
    windows = json.loads((out / "explanations.json").read_text())["windows"]
    assert [w["key"] for w in windows] == ["100@0", "100@3000"]  # 4 windows in 12 s, evenly thinned to 2
    assert all(w["explained_class"] == "fast" and "parts" not in w for w in windows)
    assert (out / "100@0.png").is_file()


@pytest.mark.parametrize("args,expected", [
    (["--keys", "nope"], "give --dataset"),
    ([], "give either a RECORD or --dataset"),
    (["--dataset", "DS", "--keys", "nope_000000001"], "key nope_000000001 is not in dataset"),
    (["--dataset", "DS", "--target", "medium"], "--target 'medium' is not a class of the run"),
])
def test_bad_explain_input_is_a_one_line_error(tiny, tmp_path, args, expected):
    dataset, run = tiny
    args = [str(dataset) if a == "DS" else a for a in args]
    refused(ecgtrain("explain", run, *args, "--out", tmp_path / "e", "--device", "cpu"), expected)


def test_a_dataset_of_another_label_type_is_refused(tiny, tmp_path):
    _, run = tiny
    other = make_dataset(tmp_path / "other", counts={"train": 4, "val": 2, "test": 3}, per_shard=4, multi_label=True)
    refused(ecgtrain("explain", run, "--dataset", other, "--out", tmp_path / "e", "--device", "cpu"),
            "explain windows of a dataset with the same classes")


@pytest.mark.parametrize("field", ["render", "n_leads", "window length"])
def test_a_dataset_whose_images_differ_from_the_runs_is_refused(tiny, field):
    from ecgtrain.errors import TrainError
    from ecgtrain.explain import check_dataset
    from ecgtrain.inference import load_run

    dataset, run = tiny
    loaded = load_run(run, torch.device("cpu"))
    if field == "render":
        loaded.card_dict["render"] = loaded.card_dict["render"] | {"out_w": 128}
    elif field == "n_leads":
        loaded.card_dict["n_leads"] = 3
    else:
        loaded.card_dict["window"] = loaded.card_dict["window"] | {"length": 500}
    with pytest.raises(TrainError, match=f"has {field} .* explain windows made the way the run's were"):
        check_dataset(loaded, dataset)
