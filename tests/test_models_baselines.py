"""ImResNet34/50 and Ref-ECG: shapes, layer sizes, and the errors build_model gives."""

import pytest
import torch
from torch import nn

from ecgtrain.errors import TrainError
from ecgtrain.models import build_model, get_model, model_names
from ecgtrain.models.refecg import feature_length


@pytest.mark.parametrize("name,features", [("imresnet34", 512), ("imresnet50", 2048)])
def test_imresnet_shapes(name, features):
    model = build_model(name, 5, weights="none").eval()
    assert (model.fc.in_features, model.fc.out_features) == (features, 5)
    with torch.no_grad():
        assert model(torch.randn(2, 3, 314, 384)).shape == (2, 5)


def test_refecg_layers_and_shapes_for_1000_samples():
    model = build_model("refecg", 6)
    assert feature_length(1000) == 30  # 1000 -> 248 -> 124 -> 61 -> 30 steps
    convs = [m for m in model.features if isinstance(m, nn.Conv1d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
        (96, 11, 4), (256, 5, 1), (384, 3, 1), (384, 3, 1), (256, 3, 1)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in model.features) == 2
    assert sum(isinstance(m, nn.MaxPool1d) for m in model.features) == 3
    dense = [m for m in model.classifier if isinstance(m, nn.Linear)]
    assert [(d.in_features, d.out_features) for d in dense] == [(256 * 30, 4096), (4096, 4096), (4096, 6)]
    assert [m.p for m in model.classifier if isinstance(m, nn.Dropout)] == [0.5, 0.5]
    model.train()
    out = model(torch.randn(4, 1, 1000))
    assert out.shape == (4, 6)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_refecg_other_lengths_and_bad_input():
    assert build_model("refecg", 3, input_length=2500).eval()(torch.randn(2, 1, 2500)).shape == (2, 3)
    model = build_model("refecg", 3)
    with pytest.raises(TrainError, match=r"\(batch, 1, 1000\)"):
        model(torch.randn(2, 1000))
    with pytest.raises(TrainError, match="at least 63 samples"):
        build_model("refecg", 3, input_length=50)


@pytest.mark.parametrize("name", model_names())
def test_every_registered_model_builds_and_classifies(name):
    spec = get_model(name)
    assert spec.name == name and spec.input in ("image", "signal") and spec.display
    assert spec.default_weights in ("imagenet", "none")
    model = build_model(name, 3, n_leads=2, weights="none", input_length=1000).eval()
    x = torch.randn(2, 3, 64, 96) if spec.input == "image" else torch.randn(2, 1, 1000)
    with torch.no_grad():
        assert model(x).shape == (2, 3)


def test_signal_models_refuse_imagenet_weights():
    for name in model_names():
        if get_model(name).default_weights == "none":
            with pytest.raises(TrainError, match=f"{name} has no ImageNet weights; pass --weights none"):
                build_model(name, 3, weights="imagenet")


def test_unknown_model_names_the_choices():
    with pytest.raises(TrainError, match="unknown model 'alexnet'; choose one of " + ", ".join(model_names())):
        get_model("alexnet")


@pytest.mark.parametrize("kwargs,message", [
    (dict(name="alexnet", num_classes=3), "unknown model 'alexnet'"),
    (dict(name="imresnet34", num_classes=1, weights="none"), "at least 2 classes"),
    (dict(name="imecgnet", num_classes=3, weights="none"), "needs the number of leads"),
])
def test_build_errors(kwargs, message):
    with pytest.raises(TrainError, match=message):
        build_model(**kwargs)
