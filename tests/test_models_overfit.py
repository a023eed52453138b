"""Each registered model can learn: from random weights it overfits one small fixed batch.

Train mode throughout (batch statistics in BatchNorm, dropout on), as in training: within MAX_STEPS
Adam steps the batch's loss falls below FRACTION of its first value and every sample is classified
correctly by that step's own forward pass. The images are 48 x 64 (every model accepts them) so
each model takes seconds on a CPU; the observed need is 2-4 steps.
"""

import pytest
import torch
from _train_data import WINDOW, fixed_batch

from ecgtrain.models import build_model, get_model, model_names

MAX_STEPS = 30
FRACTION = 0.1


@pytest.mark.parametrize("name", model_names())
def test_model_overfits_one_batch(name):
    torch.manual_seed(0)
    x, y = fixed_batch(get_model(name).input, n=4)
    model = build_model(name, num_classes=2, n_leads=2, weights="none", input_length=WINDOW).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    losses = []
    for _ in range(MAX_STEPS):
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        losses.append(loss.item())
        if losses[-1] < FRACTION * losses[0] and bool((logits.argmax(1) == y).all()):
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    assert losses[-1] < FRACTION * losses[0], f"{name}: losses {losses}"
    assert (logits.argmax(1) == y).all(), f"{name}: predicted {logits.argmax(1).tolist()} for {y.tolist()}"
