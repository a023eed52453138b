"""`fit --precise-bn`: BatchNorm running statistics re-estimated on the train split; training itself unchanged."""

import pytest
import torch
from _train_data import make_dataset

from ecgtrain.data import Batch, make_batches
from ecgtrain.engine import FitConfig, fit
from ecgtrain.inference import load_run
from ecgtrain.precise_bn import batchnorm_layers, recalibrate_batchnorm


def batches(n: int = 6, size: int = 8, seed: int = 0) -> list[Batch]:
    g = torch.Generator().manual_seed(seed)
    return [Batch(3.0 + 0.05 * torch.randn(size, 2, 16, generator=g), torch.zeros(size, dtype=torch.long), [])
            for _ in range(n)]


def test_running_statistics_become_the_data_statistics():
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm1d(2, momentum=0.01)
    model = torch.nn.Sequential(torch.nn.Dropout(0.5), bn, torch.nn.Flatten(), torch.nn.Linear(32, 2))
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "tracked" not in k}
    data = batches()
    assert recalibrate_batchnorm(model, lambda x: x, data + [Batch(torch.ones(1, 2, 16), torch.zeros(1), [])],
                                 torch.device("cpu"), False) == len(data)  # the 1-sample batch is skipped
    x = torch.cat([b.x for b in data])
    torch.testing.assert_close(bn.running_mean, x.mean((0, 2)), atol=1e-5, rtol=0)
    assert bn.running_var.mean() == pytest.approx(0.05**2, rel=0.2)  # not the 0.99-weighted start of 1
    assert bn.momentum == 0.01 and not model.training
    for k, v in model.state_dict().items():
        if k in weights:
            torch.testing.assert_close(v, weights[k], atol=0, rtol=0)


def test_model_without_batchnorm_is_left_alone():
    model = torch.nn.Linear(4, 2)
    assert batchnorm_layers(model) == []
    assert recalibrate_batchnorm(model, lambda x: x, [], torch.device("cpu"), False) == 0


def test_fit_with_precise_bn_trains_the_same_weights(tmp_path):
    dataset = make_dataset(tmp_path / "ds", counts={"train": 24, "val": 8, "test": 8})
    runs = {}
    for precise in (False, True):
        out = tmp_path / f"run-{precise}"
        fit(FitConfig(dataset=str(dataset), model="refecg", out=str(out), epochs=2, batch_size=8, workers=0,
                      device="cpu", progress=False, report=False, precise_bn=precise))
        runs[precise] = load_run(out, torch.device("cpu"))
    plain, precise = (runs[k].model.state_dict() for k in (False, True))
    for k in plain:
        if "running" in k or "tracked" in k:
            continue
        torch.testing.assert_close(plain[k], precise[k], atol=1e-6, rtol=1e-5)  # BN buffers never steer training
    assert not torch.allclose(plain["features.2.running_var"], precise["features.2.running_var"])
    # the precise run's buffers are the plain run's weights recalibrated after the fact
    recalibrate_batchnorm(runs[False].model, runs[False].standardize(),
                          make_batches(dataset, "train", "refecg", 8, workers=0), torch.device("cpu"), False)
    for k in precise:
        if "running" in k:
            torch.testing.assert_close(runs[False].model.state_dict()[k], precise[k], atol=1e-5, rtol=1e-4)
