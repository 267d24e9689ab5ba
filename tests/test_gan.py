"""E5: the DCGAN's shapes and initialisation, and the Fréchet distance against scipy's sqrtm."""

import numpy as np
import pytest
import scipy.linalg
import torch

from dlrepro.experiments.gan import Params
from dlrepro.experiments.gan import run as gan


def reference_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The formula as the FID papers' code writes it, with scipy's matrix square root."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def test_frechet_distance_matches_the_scipy_formula():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2000, 20)) @ rng.normal(size=(20, 20))
    b = rng.normal(0.3, 1.5, size=(1500, 20)) @ rng.normal(size=(20, 20))
    assert gan.frechet_distance(torch.tensor(a), torch.tensor(b)) == pytest.approx(
        reference_frechet(a, b), rel=1e-6
    )


def test_frechet_distance_of_a_set_to_itself_and_to_its_shift():
    x = torch.randn(1000, 10, dtype=torch.float64)
    assert gan.frechet_distance(x, x) == pytest.approx(0, abs=1e-6)
    assert gan.frechet_distance(x, x + 2) == pytest.approx(
        10 * 2**2, rel=1e-6
    )  # ‖Δμ‖², same covariance


def test_dcgan_shapes_and_initialisation():
    torch.manual_seed(0)
    g, d = gan.generator(64), gan.discriminator(64)
    g.apply(gan.init_weights), d.apply(gan.init_weights)
    images = gan.sample(g, torch.randn(5, gan.NOISE))
    assert images.shape == (5, 1, 28, 28) and 0 <= images.min() and images.max() <= 1
    assert d(images * 2 - 1).shape == (5,)
    conv = torch.cat(
        [
            m.weight.flatten()
            for m in [*g.modules(), *d.modules()]
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
        ]
    )
    assert conv.std().item() == pytest.approx(0.02, rel=0.05)
    # DCGAN's rule: no BatchNorm on D's input nor G's output
    assert [type(m) for m in d[:2]] == [torch.nn.Conv2d, torch.nn.LeakyReLU]
    assert [type(m) for m in g[-2:]] == [torch.nn.ConvTranspose2d, torch.nn.Tanh]


def test_record_epochs_must_increase_from_one():
    with pytest.raises(ValueError, match="increasing epoch numbers"):
        Params(record_epochs=[2, 1])
