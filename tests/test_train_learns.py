"""The training loop trains: `train_one_epoch` over the real loader drives a tiny model's loss down.

The model is tiny, has no BatchNorm or dropout and runs in float64 on one thread, so the result does
not depend on the CPU model or thread count; the margin (loss below half its start, where 40 seeds
reach 0.002-0.03 of it) leaves room for any rounding difference. Whether each real model can learn
is tests/test_models_overfit.py; the slow test at the end checks a whole `ecgtrain fit` on enough
test windows that chance cannot pass it.
"""

import json

import pytest
import torch
from _train_data import make_dataset
from click.testing import CliRunner
from torch import nn

from ecgtrain.cli import main
from ecgtrain.data import Standardize, make_batches
from ecgtrain.engine import train_one_epoch
from ecgtrain.models import get_model, model_names

SIGNAL_MODEL = next(name for name in model_names() if get_model(name).input == "signal")  # selects the lead-sum loader


class TinySignalNet(nn.Module):
    """Lead sums (B, 1, L) -> average pool 10 -> conv 8 x k7 -> ReLU -> mean over time -> linear -> logits."""

    def __init__(self):
        super().__init__()
        self.pool = nn.AvgPool1d(10)
        self.conv = nn.Conv1d(1, 8, 7)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.fc.weight.dtype)  # the loader's Standardize yields float32
        return self.fc(torch.relu(self.conv(self.pool(x))).mean(dim=2))


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_loop_drives_the_training_loss_down(tmp_path, one_thread, seed):
    root = make_dataset(tmp_path / "ds", counts={"train": 32, "val": 2, "test": 2}, per_shard=8, seed=seed)
    torch.manual_seed(seed)
    model = TinySignalNet().double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    batches = make_batches(root, "train", SIGNAL_MODEL, batch_size=8, workers=0, train=True, seed=seed)
    losses = [train_one_epoch(model, Standardize(image=False), batches, optimizer, torch.device("cpu"),
                              amp=False, epoch=epoch, progress=False)["train_loss"] for epoch in range(8)]
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.slow
def test_fit_reaches_an_accuracy_chance_cannot(tmp_path):
    """`ecgtrain fit` end to end on a learnable task with 200 test windows (100 per class).

    Guessing (p = 0.5) reaches 180 of 200 with probability P(X >= 180) = 1.2e-32 (binomial), so
    passing means the pipeline learned. The settings leave a wide margin: ImResNet34 from random
    weights at 48 x 64 reached 100 % test accuracy with seeds 0, 1 and 2 after 5 epochs (80 SGD
    steps); validation accuracy was already 100 % after 2 or 3 epochs.
    """
    root = make_dataset(tmp_path / "ds", counts={"train": 256, "val": 32, "test": 200}, per_shard=32)
    run = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "fit", str(root), "--model", "imresnet34", "--weights", "none", "--out", str(run), "--epochs", "5",
        "--batch-size", "16", "--lr", "0.01", "--lr-step", "100", "--workers", "0", "--device", "cpu",
        "--no-progress", "--seed", "0",
    ], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "report.json").read_text())["metrics"]
    assert metrics["n_windows"] == 200 and metrics["accuracy"] >= 0.9, metrics["accuracy"]
