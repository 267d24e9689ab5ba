"""E6/E7 on real MNIST: the architectures' parameter counts, the resident loop against a
DataLoader loop (same maths), FGSM against autograd done by hand, and the figures."""

import pytest
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from dlrepro.experiments.mnist_classifier import Params
from dlrepro.experiments.mnist_classifier import run as mc
from dlrepro.experiments.mnist_classifier import trained


@pytest.mark.parametrize(
    "model, count",
    [
        ("cnn_handout", 105_506),
        ("mlp", 11_274),
        ("cnn_crm", 105_506 - 256 * 200 - 200 - 200 * 10 + 256 * 256 + 256 + 256 * 10),
    ],
)
def test_parameter_counts(model, count):
    assert sum(p.numel() for p in trained.build(model).parameters()) == count


def test_resident_loop_matches_a_dataloader_loop(mnist_dir, context):
    params = Params(model="cnn_handout", lr=0.1, epochs=1, train_size=500, test_size=100)
    torch.manual_seed(0)
    ctx = context("mnist_classifier", data_dir=mnist_dir)
    mc.train(params, ctx)
    resident = next(m["value"] for m in ctx.metrics if m["metric"] == "loss_sum")

    train_x, train_y, *_, mean, std = mc.load_data(params, mnist_dir, torch.device("cpu"))
    torch.manual_seed(0)
    model = trained.build("cnn_handout")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    total = 0.0
    for x, y in DataLoader(
        TensorDataset((train_x - mean) / std, train_y), batch_size=100, shuffle=False
    ):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
    assert resident == pytest.approx(total, rel=1e-5)


def test_normalisation_uses_the_training_sets_global_statistics(mnist_dir):
    params = Params(model="mlp", lr=0.1, train_size=1000, test_size=100)
    train_x, _, test_x, _, mean, std = mc.load_data(params, mnist_dir, torch.device("cpu"))
    assert train_x.shape[1:] == test_x.shape[1:] == (1, 26, 26)  # the MLP's cropped digits
    assert mean == pytest.approx(train_x.mean().item()) and std == pytest.approx(
        train_x.std().item()
    )
    assert 0.1 < mean < 0.2  # MNIST's mean pixel is about 0.13


def test_gradient_signs_are_fgsm_by_hand():
    torch.manual_seed(0)
    model = trained.build("mlp")
    x, y = torch.rand(5, 1, 26, 26), torch.tensor([0, 1, 2, 3, 4])
    signs = mc.gradient_signs(model, x, y, 0.1, 0.3, batch=2)
    assert all(p.grad is None for p in model.parameters())  # the attack computes no weight gradient
    by_hand = x.clone().requires_grad_(True)
    F.cross_entropy(model((by_hand - 0.1) / 0.3), y).backward()
    assert torch.equal(signs, by_hand.grad.sign())


def test_a_run_logs_its_curves_keeps_the_model_and_draws_the_figures(mnist_dir, tmp_path, context):
    params = Params(
        model="mlp", lr=0.1, epochs=2, train_size=2000, test_size=500, fgsm_eps=[0.0, 0.1]
    )
    ctx = context("mnist_classifier", data_dir=mnist_dir)
    mc.run(params, ctx)
    logged = {(m["metric"], m["step"]) for m in ctx.metrics}
    assert {
        ("loss_sum", 1),
        ("loss_sum", 2),
        ("test_error", 2),
        ("test_error", None),
        ("parameters", None),
        ("fgsm_accuracy", 0),
        ("fgsm_accuracy", 100),
    } <= logged
    saved = torch.load(tmp_path / "run" / "model.pt")
    model = trained.build(saved["model"])
    model.load_state_dict(saved["state_dict"])  # what E4 and E5 will reuse
