"""The training loop trains: `train_one_epoch` over the real loader drives a tiny model's loss down.

The model is tiny, has no BatchNorm or dropout and runs in float64 on one thread, so the result does
not depend on the CPU model or thread count; the margin (loss below half its start, where 40 seeds
reach 0.002-0.03 of it) leaves room for any rounding difference. Whether each real model can learn
is tests/test_models_overfit.py.
"""

import pytest
import torch
from _train_data import make_dataset
from torch import nn

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
