"""--weights: local backbone and whole-model files, bad files, and ImageNet with no network.

Nothing here reaches the network: TORCH_HOME points into tmp and the ImageNet URLs point at
127.0.0.1 (a closed port, or a local HTTP server serving a file written by the test).
"""

import functools
import hashlib
import http.server
import shutil
import socket
import threading

import pytest
import torch
from torchvision.models import ResNet34_Weights, ResNet50_Weights, resnet34, resnet50

from ecgtrain.errors import TrainError
from ecgtrain.models import build_model
from ecgtrain.models.weights import hub_cache_file


@pytest.fixture(scope="module")
def backbone_file(tmp_path_factory):
    """A torchvision ResNet50 state dict (random weights, 1000-class fc) saved to a file."""
    torch.manual_seed(1)
    state = resnet50(weights=None).state_dict()
    path = tmp_path_factory.mktemp("weights") / "resnet50-backbone.pth"
    torch.save(state, path)
    return path, state


@pytest.fixture(scope="module")
def imecgnet_file(tmp_path_factory):
    """A whole ImECGnet (2 leads, 3 classes) state dict saved to a file."""
    torch.manual_seed(2)
    state = build_model("imecgnet", 3, n_leads=2, weights="none").state_dict()
    path = tmp_path_factory.mktemp("weights") / "imecgnet-2-leads.pth"
    torch.save(state, path)
    return path, state


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """TORCH_HOME in tmp; both ImageNet URLs on a closed localhost port (connection refused)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for weights in (ResNet34_Weights.IMAGENET1K_V1, ResNet50_Weights.IMAGENET1K_V1):
        name = weights.url.rsplit("/", 1)[1]
        monkeypatch.setattr(weights.value, "url", f"http://127.0.0.1:{port}/{name}")
    return tmp_path / "torch"


@pytest.fixture
def http_dir(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/www; yields (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_backbone_file_starts_trunk_and_both_branches(backbone_file):
    path, state = backbone_file
    model = build_model("imecgnet", 3, n_leads=12, weights=path)
    assert torch.equal(model.trunk[0].weight, state["conv1.weight"])
    assert torch.equal(model.trunk[6].conv1.weight, state["layer3.0.conv1.weight"])
    for branch in (model.lead_branch, model.channel_branch):
        assert torch.equal(branch[0][0].conv1.weight, state["layer3.1.conv1.weight"])
        assert torch.equal(branch[1][2].bn3.running_var, state["layer4.2.bn3.running_var"])
    resnet = build_model("imresnet50", 3, weights=str(path))
    assert torch.equal(resnet.layer4[0].downsample[0].weight, state["layer4.0.downsample.0.weight"])
    assert resnet.fc.weight.shape == (3, 2048)  # the 1000-class fc of the file is not used


def test_whole_model_file_and_checkpoint_round_trip(tmp_path, imecgnet_file):
    path, saved = imecgnet_file
    loaded = build_model("imecgnet", 3, n_leads=2, weights=path).state_dict()
    assert loaded.keys() == saved.keys()
    for name, tensor in saved.items():
        assert torch.equal(loaded[name], tensor), name
    # An ecgtrain checkpoint: the model's state dict under "model", beside the optimizer's.
    ref = build_model("refecg", 4)
    optimizer = torch.optim.SGD(ref.parameters(), lr=1e-3, momentum=0.9)
    ckpt = tmp_path / "epoch-001.pt"
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.1)
    torch.save({"model": ref.state_dict(), "optimizer": optimizer.state_dict(),
                "lr_scheduler": scheduler.state_dict(), "epoch": 1,
                "args": {"model": "refecg", "lr": 1e-3, "weights": None}}, ckpt)
    again = build_model("refecg", 4, weights=ckpt)
    assert torch.equal(again.classifier[-1].weight, ref.classifier[-1].weight)


def test_mismatched_and_unreadable_files_name_the_file(tmp_path, backbone_file, imecgnet_file):
    path = imecgnet_file[0]
    with pytest.raises(TrainError, match=rf"{path.name} does not fit imecgnet \(3 classes, 12 leads\): .*shape mismatches"):
        build_model("imecgnet", 3, n_leads=12, weights=path)
    small = tmp_path / "resnet34.pth"
    torch.save(resnet34(weights=None).state_dict(), small)
    with pytest.raises(TrainError, match=rf"{small.name} does not fit a torchvision resnet50 backbone: missing"):
        build_model("imresnet50", 3, weights=small)
    with pytest.raises(TrainError, match=rf"{backbone_file[0].name} does not fit refecg"):
        build_model("refecg", 3, weights=backbone_file[0])
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(TrainError, match=rf"cannot read weights file .*{junk.name}"):
        build_model("imresnet34", 3, weights=junk)
    not_state = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], not_state)
    with pytest.raises(TrainError, match="holds no state dict"):
        build_model("imresnet34", 3, weights=not_state)
    with pytest.raises(TrainError, match=r"missing\.pth not found; pass --weights imagenet\|none\|PATH"):
        build_model("imresnet34", 3, weights=tmp_path / "missing.pth")


def test_imagenet_unreachable_is_a_clear_error(offline_hub):
    with pytest.raises(TrainError) as info:
        build_model("imecgnet", 3, n_leads=12)  # image models default to imagenet
    message = str(info.value)
    assert "\n" not in message
    assert "cannot get ImageNet weights for imecgnet" in message
    assert "--weights none" in message and "--weights PATH" in message
    cache = offline_hub / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    assert str(cache) in message
    assert not cache.exists()


def test_imagenet_http_error_is_a_clear_error(tmp_path, monkeypatch, http_dir):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _, base = http_dir  # serves nothing: 404
    monkeypatch.setattr(ResNet34_Weights.IMAGENET1K_V1.value, "url", f"{base}/resnet34-b627a593.pth")
    with pytest.raises(TrainError, match=r"cannot get ImageNet weights for imresnet34 .*404.*--weights none"):
        build_model("imresnet34", 3, weights="imagenet")


def test_imagenet_from_the_hub_cache_needs_no_network(offline_hub, backbone_file):
    path, state = backbone_file
    cache = hub_cache_file("resnet50")
    assert cache == offline_hub / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    cache.parent.mkdir(parents=True)
    shutil.copy(path, cache)  # torch.hub checks the hash only when it downloads
    model = build_model("imecgnet", 3, n_leads=2, weights="imagenet")
    assert torch.equal(model.lead_branch[1][0].conv2.weight, state["layer4.0.conv2.weight"])
    assert torch.equal(model.channel_branch[1][0].conv2.weight, state["layer4.0.conv2.weight"])


def test_imagenet_download_through_torchvision(tmp_path, monkeypatch, http_dir):
    """The whole `imagenet` path (download, hash check, cache) against a local server."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    root, base = http_dir
    torch.manual_seed(3)
    state = resnet34(weights=None).state_dict()
    staged = tmp_path / "staged.pth"
    torch.save(state, staged)
    digest = hashlib.sha256(staged.read_bytes()).hexdigest()[:8]
    name = f"resnet34-{digest}.pth"  # torchvision's naming: the hash prefix it checks
    shutil.move(staged, root / name)
    monkeypatch.setattr(ResNet34_Weights.IMAGENET1K_V1.value, "url", f"{base}/{name}")
    model = build_model("imresnet34", 3, weights="imagenet")
    assert torch.equal(model.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])
    assert (tmp_path / "torch" / "hub" / "checkpoints" / name).is_file()
