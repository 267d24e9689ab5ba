"""E10: the layers read where the slide numbers them, the separation measure on points whose
answer is known, and a run on real MNIST digits through a handout CNN (untrained: seconds)."""

import numpy as np
import pytest
import torch

from conftest import logged
from dlrepro.experiments import layer_maps as declaration
from dlrepro.experiments.layer_maps import run as layer_maps
from dlrepro.experiments.mnist_classifier import trained
from dlrepro.experiments.nets import mnist_cnn


def test_the_slides_layers_are_the_convolutions_the_hidden_layer_and_the_output():
    net = mnist_cnn()
    found = layer_maps.encodings(net, torch.rand(3, 1, 28, 28), declaration.SLIDE_LAYERS)
    widths = {layer: points.shape[1] for layer, points in found.items()}
    assert widths == {0: 28 * 28, 1: 32 * 24 * 24, 4: 64 * 4 * 4, 7: 200, 9: 10}
    assert [type(net[i]).__name__ for i in declaration.SLIDE_LAYERS] == [
        "ReLU", "ReLU", "Linear", "Linear"]


def test_knn_accuracy_is_100_on_separated_classes_and_chance_on_noise():
    labels = torch.arange(400) // 100
    assert layer_maps.knn_accuracy(labels[:, None].float() * 100 + torch.rand(400, 1),
                                   labels) == 100.0
    torch.manual_seed(0)
    assert 10 < layer_maps.knn_accuracy(torch.randn(400, 5), labels) < 40


@pytest.mark.parametrize("network", ["trained", "untrained"])
def test_a_run_maps_every_layer_and_measures_it(network, mnist_dir, tmp_path, context):
    torch.manual_seed(0)
    (tmp_path / "classifier").mkdir()
    trained.save(tmp_path / "classifier" / "model.pt", "cnn_handout", 1, mnist_cnn(), 0.13, 0.31)
    ctx = context("layer_maps", data_dir=mnist_dir,
                  inputs={"classifier": tmp_path / "classifier"})
    torch.manual_seed(0)
    layer_maps.run(declaration.Params(network=network, points=200, panels=[4, 9]), ctx)
    found = logged(ctx)
    for metric in ("map_knn_accuracy", "space_knn_accuracy"):
        assert all(0 <= found[metric, step] <= 100 for step in (0, 4, 9))
    assert found["map_knn_accuracy", 0] > 40  # the pixels of 100 digits are far from chance
    assert found["separation_gain"] == pytest.approx(
        found["map_knn_accuracy", 9] - found["map_knn_accuracy", 0])
    maps = np.load(tmp_path / "run" / "maps.npz")
    assert sorted(maps.files) == ["labels", "step_0", "step_4", "step_9"]
    assert maps["step_9"].shape == (200, 2) and maps["labels"].shape == (200,)
