"""`ecgtrain fit --balance none|loss|sampler`: the paper's batches unchanged, a class-weighted loss, and a
class-balanced sampler with exact, deterministic epochs for image shards and Ref-ECG rows alike."""

import json
import math
from collections import Counter

import pytest
import torch
from _train_data import CLASSES, make_dataset
from click.testing import CliRunner

from ecgtrain.cli import main
from ecgtrain.data import BalancedCounts, ImageBatches, RefEcgBatches
from ecgtrain.engine import FitConfig, build_loaders, class_weights, make_criterion
from ecgtrain.rundir import read_checkpoint
from shards.layout import MANIFEST
from shards.manifest import read_manifest


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory):
    # 40 train windows, every 10th of class 1 (36 slow : 4 fast), in 7 shards of 6 (the last one short).
    return make_dataset(tmp_path_factory.mktemp("balance") / "ds", counts={"train": 40, "val": 4, "test": 4},
                        per_shard=6, minority_every=10)


def read_keys(root, split: str) -> list[str]:
    return [w.key for w in read_manifest(root / MANIFEST) if w.split == split]


def label_of(key: str) -> int:
    return CLASSES.index(key.split("-")[1])


def epoch_keys(batches, epochs: int) -> list[list[str]]:
    return [[k for b in batches for k in b.keys] for _ in range(epochs)]


# --balance none: the order the loader gave before --balance existed (seed 7, batch 4; window numbers).
PAPER_ORDER = {
    "images, 0 workers": [[16, 3, 10, 19, 9, 14, 13, 1, 2, 12, 6, 7, 15, 8, 11, 5, 17, 0, 18, 4],
                          [15, 14, 5, 19, 8, 3, 12, 0, 13, 10, 1, 18, 16, 17, 11, 2, 7, 9, 4, 6]],
    "images, 2 workers": [[12, 1, 16, 3, 10, 18, 11, 19, 15, 5, 4, 0, 9, 6, 7, 8, 13, 2, 17, 14],
                          [4, 5, 13, 3, 7, 6, 10, 18, 2, 0, 14, 16, 8, 9, 11, 19, 12, 15, 17, 1]],
    "refecg": [[5, 4, 3, 10, 0, 19, 11, 16, 1, 2, 18, 13, 15, 14, 17, 9, 8, 6, 7, 12],
               [12, 9, 16, 0, 11, 7, 6, 18, 3, 19, 13, 10, 1, 5, 8, 2, 14, 17, 15, 4]],
}


def test_balance_none_keeps_the_papers_batches(tmp_path):
    root = make_dataset(tmp_path / "ds", counts={"train": 20, "val": 2, "test": 2}, per_shard=6)
    loaders = {"images, 0 workers": ImageBatches(root, "train", batch_size=4, workers=0, train=True, seed=7),
               "images, 2 workers": ImageBatches(root, "train", batch_size=4, workers=2, train=True, seed=7),
               "refecg": RefEcgBatches(root, "train", batch_size=4, train=True, seed=7)}
    for name, batches in loaders.items():
        seen = [[int(k.rsplit("_", 1)[1]) for k in keys] for keys in epoch_keys(batches, 2)]
        assert seen == PAPER_ORDER[name], name


def test_class_weights_and_weighted_loss_by_hand():
    with pytest.warns(UserWarning, match="c have no training window"):
        weights = class_weights(["a", "b", "c"], {"a": 6, "b": 2, "c": 0})
    assert weights == [8 / (3 * 6), 8 / (3 * 2), 0.0]
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 3.0], [0.0, 0.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 2])

    def nll(row, label):  # -log softmax, by hand
        return math.log(sum(math.exp(v) for v in logits[row].tolist())) - logits[row, label].item()

    w = [weights[y] for y in labels.tolist()]
    expected = sum(wi * nll(i, y) for i, (wi, y) in enumerate(zip(w, labels.tolist()))) / sum(w)
    loss = make_criterion(weights, torch.device("cpu"))(logits, labels)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    plain = make_criterion(None, torch.device("cpu"))(logits, labels)
    assert plain.item() == pytest.approx(sum(nll(i, y) for i, y in enumerate(labels.tolist())) / 4, rel=1e-6)
    assert loss.item() != pytest.approx(plain.item())


@pytest.mark.parametrize("workers", [0, 2])
def test_sampler_epochs_are_exact_balanced_and_the_same_for_any_worker_count(imbalanced, workers):
    batches = ImageBatches(imbalanced, "train", batch_size=4, workers=workers, train=True, seed=3, balanced=True)
    expected = BalancedCounts.from_manifest(imbalanced, seed=3)
    epochs = epoch_keys(batches, 3)
    for epoch, keys in enumerate(epochs):
        assert len(keys) == 40 and len(batches) == 10  # exactly N samples, len() exact
        # the epoch's counts, whatever the number of workers (0 and 2 give the same multiset)
        assert Counter(keys) == Counter({k: n for k, n in expected.counts(epoch).items() if n})
    assert Counter(epochs[0]) != Counter(epochs[1])  # new counts every epoch
    fast = sum(label_of(k) for keys in epochs for k in keys) / 120
    assert 0.35 < fast < 0.65, fast  # near 1:1 over three epochs (10 % of the windows)
    assert max(Counter(epochs[0]).values()) > 1  # rare windows repeat


def test_sampler_is_deterministic_resumable_and_seeded(imbalanced):
    def run(seed, start_epoch=0, epochs=2):
        return epoch_keys(ImageBatches(imbalanced, "train", batch_size=4, workers=0, train=True, seed=seed,
                                       start_epoch=start_epoch, balanced=True), epochs)

    first = run(3)
    assert first == run(3)  # same seed: same batches
    assert run(3, start_epoch=1, epochs=1) == first[1:]  # a resumed run continues with the same counts
    assert Counter(run(4, epochs=1)[0]) != Counter(first[0])


def test_refecg_sampler_uses_the_same_counts(imbalanced):
    images = ImageBatches(imbalanced, "train", batch_size=4, workers=0, train=True, seed=3, balanced=True)
    signals = RefEcgBatches(imbalanced, "train", batch_size=4, train=True, seed=3, balanced=True)
    image_epochs, signal_epochs = epoch_keys(images, 2), epoch_keys(signals, 2)
    for image_keys, signal_keys in zip(image_epochs, signal_epochs):
        assert len(signal_keys) == 40 and len(signals) == 10
        assert Counter(signal_keys) == Counter(image_keys)
    resumed = RefEcgBatches(imbalanced, "train", batch_size=4, train=True, seed=3, start_epoch=1, balanced=True)
    assert epoch_keys(resumed, 1) == signal_epochs[1:]
    for batch in RefEcgBatches(imbalanced, "train", batch_size=4, train=True, seed=3, balanced=True):
        assert batch.y.tolist() == [label_of(k) for k in batch.keys]  # repeated rows keep their labels


def fit(dataset, run, *extra):
    return CliRunner().invoke(main, ["fit", str(dataset), "--model", "refecg", "--out", str(run), "--epochs", "1",
                                     "--batch-size", "20", "--workers", "0", "--no-progress", "--no-report",
                                     *extra], catch_exceptions=False)


def test_cli_records_the_balance_and_its_weights(imbalanced, tmp_path):
    assert all(f"{mode}:" in CliRunner().invoke(main, ["fit", "--help"]).output for mode in ("none", "loss", "sampler"))
    result = fit(imbalanced, tmp_path / "loss", "--balance", "loss")
    assert result.exit_code == 0, result.output
    weights = [40 / (2 * 36), 40 / (2 * 4)]
    args = json.loads((tmp_path / "loss" / "args.json").read_text())
    assert args["balance"] == "loss" and args["class_weights"] == pytest.approx(weights)
    stored = read_checkpoint(tmp_path / "loss" / "checkpoint.pt")["args"]
    assert stored["balance"] == "loss" and stored["class_weights"] == pytest.approx(weights)
    assert isinstance(stored["class_weights"], list)
    refused = fit(imbalanced, tmp_path / "loss", "--balance", "sampler", "--epochs", "2", "--resume")
    assert refused.exit_code == 2 and "--balance loss" in refused.output


@pytest.mark.parametrize("model", ["refecg", "imresnet34"])
def test_fit_builds_the_balanced_sampler_only_when_asked(imbalanced, tmp_path, model):
    for balance in ("none", "loss", "sampler"):
        cfg = FitConfig(dataset=str(imbalanced), model=model, out=str(tmp_path / "run"), workers=0, balance=balance)
        train, val, calibration = build_loaders(cfg, 0, torch.device("cpu"))
        assert calibration is None  # only --precise-bn reads the train split a second time
        keys = epoch_keys(train, 1)[0]
        assert len(keys) == 40
        assert (len(set(keys)) < 40) == (balance == "sampler")  # only the sampler repeats windows
        assert sorted(k for b in val for k in b.keys) == sorted(read_keys(imbalanced, "val"))
