"""ImECGnet: part count, every intermediate shape for n = 2, 12, 15 at 314 x 384, gradients, size."""

import pytest
import torch
from torchvision.models import resnet50

from ecgtrain.models import build_model

CLASSES = 4
H, W = 314, 384


@pytest.fixture(scope="module", autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("n", [2, 12, 15])
def test_every_stage_shape_and_head_count(n):
    model = build_model("imecgnet", CLASSES, n_leads=n, weights="none").eval()
    x = torch.randn(2, 3, H, W)
    with torch.no_grad():
        stages = model.stages(x)
    shapes = {name: tuple(t.shape) for name, t in stages.items()}
    assert shapes == {
        "trunk": (2, 1024, 20, 24),  # conv1 .. layer3[0], stride 16
        "lead_map": (2, 2048, 20, 24),  # layer4 at stride 1
        "channel_map": (2, 2048, 10, 12),  # layer4 at stride 2
        "lead_pooled": (2, n + 1, 2048),  # global volume + n width-wise parts
        "channel_pooled": (2, 4, 512),  # 4 depth slices
        "lead_reduced": (2, n + 1, 256),
        "channel_reduced": (2, 4, 256),
        "part_scores": (2, n + 5, CLASSES),
        "logits": (2, CLASSES),
    }
    assert model.parts == n + 5
    assert model.fusion.in_features == (n + 5) * CLASSES and model.fusion.out_features == CLASSES
    # Phase A really is max pooling: the global volume is the max of the whole lead map,
    # part 1 the max over the first width bin, and the channel parts the 4 depth slices.
    lead_map, pooled = stages["lead_map"], stages["lead_pooled"]
    assert torch.equal(pooled[:, 0], lead_map.amax(dim=(2, 3)))
    first_bin = -(-lead_map.shape[3] // n)  # ceil(width / n), the first adaptive bin's width
    assert torch.equal(pooled[:, 1], lead_map[..., :first_bin].amax(dim=(2, 3)))
    channel = stages["channel_map"].amax(dim=(2, 3))
    assert torch.equal(stages["channel_pooled"].flatten(1), channel)


def test_branches_are_separate_copies_with_their_own_strides():
    model = build_model("imecgnet", CLASSES, n_leads=12, weights="none")
    lead = {p.data_ptr() for p in model.lead_branch.parameters()}
    channel = {p.data_ptr() for p in model.channel_branch.parameters()}
    trunk = {p.data_ptr() for p in model.trunk.parameters()}
    assert not lead & channel and not lead & trunk and not channel & trunk
    assert len(model.lead_branch[0]) == 5 and len(model.channel_branch[0]) == 5  # layer3[1:]
    assert model.lead_branch[1][0].conv2.stride == (1, 1)
    assert model.channel_branch[1][0].conv2.stride == (2, 2)


def test_training_step_reaches_every_parameter():
    model = build_model("imecgnet", CLASSES, n_leads=2, weights="none").train()
    logits = model(torch.randn(2, 3, 96, 128))  # small input: the graph is the same at any size
    assert logits.shape == (2, CLASSES)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3])).backward()
    no_grad = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []


def test_any_width_and_channels_last_give_the_same_logits():
    model = build_model("imecgnet", CLASSES, n_leads=15, weights="none").eval()
    x = torch.randn(2, 3, 96, 128)  # lead map 6 x 8: 15 bins over 8 columns still works
    with torch.no_grad():
        plain = model(x)
        assert torch.equal(plain, model.stages(x)["logits"])  # forward returns the final logits
        model_cl = model.to(memory_format=torch.channels_last)
        fast = model_cl(x.contiguous(memory_format=torch.channels_last))
    assert plain.shape == (2, CLASSES)
    torch.testing.assert_close(plain, fast, rtol=1e-4, atol=1e-4)


def test_parameter_count():
    n, classes = 12, 9
    model = build_model("imecgnet", classes, n_leads=n, weights="none")
    ref = resnet50(weights=None)

    def count(*modules):
        return sum(p.numel() for m in modules for p in m.parameters())

    trunk = count(ref.conv1, ref.bn1, ref.layer1, ref.layer2, ref.layer3[0])
    branch = count(ref.layer3[1:], ref.layer4)
    lead_head = (n + 1) * (2048 * 256 + 2 * 256 + 256 * classes + classes)
    channel_head = 4 * (512 * 256 + 2 * 256 + 256 * classes + classes)
    fusion = (n + 5) * classes * classes + classes
    total = count(model)
    assert total == trunk + 2 * branch + lead_head + channel_head + fusion
    assert 51_000_000 < total < 52_000_000  # 51,448,131 (docs/models.md)
