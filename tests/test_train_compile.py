"""`fit --compile`: a compiled training step computes what the eager one does, for every image model.

The models are compared in float64 on the CPU (TorchInductor's C++ backend), where the two differ
by rounding only (at most 7e-12 measured), so the tolerance can be tight. Two SGD steps with
momentum (ImResNet34: a third on a shorter batch, the end of an epoch, which gets a graph of its
own). Before each step the compiled model gets the eager model's weights and statistics, so each
step is compared on its own (from random weights, rounding differences would otherwise grow ~300x
per step); its loss, every gradient and every BatchNorm running statistic are checked.
"""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from _train_data import make_dataset
from click.testing import CliRunner

from ecgtrain.cli import main
from ecgtrain.engine import compile_model
from ecgtrain.models import build_model, get_model, model_names

IMAGE_MODELS = [name for name in model_names() if get_model(name).input == "image"]
# Batch sizes of the steps compared. A shorter batch (an epoch's end) compiles the whole model again, minutes on
# a CI machine's cold cache, so one model, the quickest to compile, takes that path for all of them.
BATCHES = {"imresnet34": (4, 4, 3)}
RTOL = 1e-8  # float64: measured worst differences 6e-14 to 7e-12, a thousandth of this


def _step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """One training step's loss, gradients and BatchNorm running statistics (after the step)."""
    model.train()
    model.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    return {"loss": loss.detach().reshape(1), **{f"grad {n}": p.grad.clone() for n, p in model.named_parameters()},
            **{f"buffer {n}": b.clone() for n, b in model.named_buffers() if b.is_floating_point()}}


def _errors(have: dict, want: dict) -> dict[str, float]:
    """Relative error of every tensor. A tensor is measured against the largest of its kind (loss, grad, buffer)
    when that is 1e6 times its own size: some gradients are zero up to rounding (the last BatchNorm
    bias of a branch feeds max pooling and then a training-mode BatchNorm, which cancels a shift over the batch),
    and two roundings of zero differ by 100 %."""
    scale: dict[str, float] = {}
    for key, value in want.items():
        kind = key.split()[0]
        scale[kind] = max(scale.get(kind, 0.0), float(value.norm()))
    return {key: float((have[key] - value).norm()) / max(float(value.norm()), 1e-6 * scale[key.split()[0]], 1e-300)
            for key, value in want.items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_compiled_training_steps_match_eager(name):
    torch.manual_seed(0)
    eager = build_model(name, num_classes=3, n_leads=2, weights="none", input_length=1000).double()
    compiled = compile_model(copy.deepcopy(eager))
    optimizer = torch.optim.SGD(eager.parameters(), lr=1e-3, momentum=0.9)  # the paper's
    generator = torch.Generator().manual_seed(1)
    for step, n in enumerate(BATCHES.get(name, (4, 4))):
        x, y = torch.randn(n, 3, 64, 80, generator=generator, dtype=torch.float64), torch.randint(0, 3, (n,), generator=generator)
        compiled.load_state_dict(eager.state_dict())  # each step from the same weights and statistics
        have, want = _step(compiled, x, y), _step(eager, x, y)
        optimizer.step()
        assert want.keys() == have.keys()
        errors = _errors(have, want)
        worst = max(errors, key=errors.__getitem__)
        assert errors[worst] < RTOL, f"step {step}: {worst} differs by {errors[worst]:.2e} (relative)"
    assert list(compiled.state_dict()) == list(eager.state_dict())  # compiled in place: checkpoints keep their keys


@pytest.mark.slow
def test_fit_compile_trains_and_resumes_without_it(tmp_path):
    """`ecgtrain fit --compile` end to end on a tiny dataset: args.json records it, the loss is finite, the
    checkpoint has the plain model's keys, and a resume without --compile continues it (not run-defining).
    Ref-ECG, whose graph compiles in seconds: the plumbing is the same for every model, and the image models'
    numbers are compared in float64 above (in float32 a tiny model's trajectories part by rounding)."""
    data = make_dataset(tmp_path / "ds", counts={"train": 24, "val": 8, "test": 8})
    run = tmp_path / "run"
    common = ["fit", str(data), "--model", "refecg", "--out", str(run), "--batch-size", "8",
              "--workers", "0", "--device", "cpu", "--precise-bn", "--no-progress"]
    result = CliRunner().invoke(main, [*common, "--epochs", "1", "--compile", "--no-report"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads((run / "args.json").read_text())["compile"] is True
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["args"]["compile"] is True and not any(key.startswith("_orig_mod") for key in ckpt["model"])
    result = CliRunner().invoke(main, [*common, "--epochs", "2", "--resume"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [0, 1] and all(math.isfinite(row["train_loss"]) for row in rows)
    assert (run / "report.md").is_file()


def test_fit_compile_without_a_compiler_is_one_clear_error(tmp_path, monkeypatch):
    """Where TorchInductor cannot build kernels, --compile stops before training with one line saying so."""
    data = make_dataset(tmp_path / "ds", counts={"train": 8, "val": 4, "test": 4})

    def no_compiler(fn, **_):
        def call(*args):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found in torch._inductor.config.cpp.cxx")
        return call

    monkeypatch.setattr(torch, "compile", no_compiler)  # what a machine without g++ gives, without removing g++
    result = CliRunner().invoke(main, ["fit", str(data), "--model", "imresnet34", "--out", str(tmp_path / "run"),
                                       "--weights", "none", "--workers", "0", "--device", "cpu", "--compile"])
    assert result.exit_code == 2, result.output
    assert "--compile: TorchInductor cannot compile for cpu (InvalidCxxCompiler: No working C++" in result.output
    assert not (tmp_path / "run").exists()
