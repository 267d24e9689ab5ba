"""E4 on real MNIST: PCA against an SVD done independently, the autoencoders' shapes, the
interpolation's ends, and a run's metrics and files."""

import numpy as np
import pytest
import torch

from dlrepro.experiments import autoencoder as declaration
from dlrepro.experiments.autoencoder import run as ae
from dlrepro.experiments.image_sets import images


@pytest.fixture(scope="module")
def digits(mnist_dir):
    pixels, _ = images("mnist", mnist_dir, train=False)
    return pixels[:2000], pixels[2000:2500]


def test_pca_is_the_best_rank_d_affine_reconstruction(digits):
    train, test = digits
    codec = ae.fit_pca(train, 8)
    flat = train.flatten(1).double()
    mean = flat.mean(0)
    _, _, vt = torch.linalg.svd(flat - mean, full_matrices=False)  # PCA computed another way
    basis = vt[:8].T
    expected = ((test.flatten(1).double() - mean) @ basis @ basis.T + mean).float().view_as(test)
    assert torch.allclose(codec.reconstruct(test), expected, atol=1e-4)
    assert (
        ae.mse(ae.fit_pca(train, 16), test)
        < ae.mse(codec, test)
        < ae.mse(ae.fit_pca(train, 4), test)
    )


@pytest.mark.parametrize("model", ["cnn", "linear"])
@pytest.mark.parametrize("d", [2, 32])
def test_autoencoders_map_digits_to_d_numbers_and_back(model, d):
    net = ae.Autoencoder(model, d)
    x = torch.rand(3, 1, 28, 28)
    assert net.encoder(x).shape == (3, d)
    assert net(x).shape == x.shape


def test_interpolation_ends_are_the_reconstructions(digits):
    train, test = digits
    codec = ae.fit_pca(train, 8)
    frames = codec.interpolate(test[:3], test[3:6], torch.linspace(0, 1, 5))
    assert frames.shape == (3, 5, 1, 28, 28)
    assert torch.allclose(frames[:, 0], codec.reconstruct(test[:3]), atol=1e-5)
    assert torch.allclose(frames[:, -1], codec.reconstruct(test[3:6]), atol=1e-5)


@pytest.mark.slow  # MNIST training
def test_a_linear_run_approaches_pca_and_keeps_its_figures(mnist_dir, tmp_path, context):
    """The slide's "two linear models give PCA", small: d = 4, 20,000 images, 3 epochs."""
    from dlrepro.experiments import mnist_classifier
    from dlrepro.experiments.mnist_classifier import run as classifier

    classifier.run(
        mnist_classifier.Params(
            model="cnn_handout", lr=0.1, epochs=1, train_size=1000, test_size=200, fgsm_eps=[0.0]
        ),
        context("mnist_classifier", data_dir=mnist_dir, name="classifier"),
    )
    ctx = context("autoencoder", data_dir=mnist_dir, inputs={"classifier": tmp_path / "classifier"})
    torch.manual_seed(0)
    ae.run(
        declaration.Params(
            model="linear",
            d=4,
            epochs=3,
            batch_size=32,
            train_size=20000,
            test_size=1000,
            pairs=100,
        ),
        ctx,
    )
    final = {m["metric"]: m["value"] for m in ctx.metrics if m["step"] is None}
    assert 0 <= final["excess_over_pca"] < 10  # PCA is optimal; gradient descent gets close
    assert final["test_sse"] == pytest.approx(784 * final["test_mse"])
    assert 0.1 < final["midpoint_confidence"] <= 1
    curve = [m["value"] for m in ctx.metrics if m["metric"] == "train_mse"]
    assert len(curve) == 3 * ae.CURVE_POINTS and curve[-1] < curve[0]
    frames = np.load(tmp_path / "run" / "interpolation.npz")["frames"]
    assert frames.shape == (declaration.PAIRS_SHOWN, ae.ALPHAS, 28, 28) and frames.dtype == np.uint8
    shown = np.load(tmp_path / "run" / "reconstructions.npz")
    assert shown["originals"].shape == shown["reconstructions"].shape == (ae.SHOWN, 28, 28)
