"""The training loop learns: on a task a model can solve, the loss falls and held-out accuracy rises."""

import torch
from _train_data import make_dataset

from ecgtrain.data import Standardize, make_batches
from ecgtrain.engine import predict_batches, seed_everything, train_one_epoch
from ecgtrain.models import build_model


def test_loss_falls_on_a_learnable_task(tmp_path):
    # refecg is the cheapest model on a CPU; the image path runs end to end in test_train_fit.py.
    model_name = "refecg"
    root = make_dataset(tmp_path / "ds", counts={"train": 24, "val": 16, "test": 2}, per_shard=8)
    seed_everything(0)
    device = torch.device("cpu")
    model = build_model(model_name, num_classes=2, n_leads=2, weights="none", input_length=1000)
    prep = Standardize(image=model_name != "refecg")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    train = make_batches(root, "train", model_name, batch_size=8, workers=0, train=True)
    val = make_batches(root, "val", model_name, batch_size=8, workers=0)
    losses = [train_one_epoch(model, prep, train, optimizer, device, amp=False, epoch=e, progress=False)["train_loss"]
              for e in range(4)]
    logits, labels, _ = predict_batches(model, prep, val, device, amp=False, progress=False)
    assert min(losses[-2:]) < 0.5 * losses[0], losses
    assert (logits.argmax(1) == labels).mean() >= 0.75
