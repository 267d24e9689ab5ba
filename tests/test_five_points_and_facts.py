"""E8 and E9 against independent computations."""

import numpy as np
import torch

from conftest import logged
from dlrepro.experiments.five_points import Params as FiveParams
from dlrepro.experiments.five_points import run as fp
from dlrepro.experiments.small_facts import Params as FactParams
from dlrepro.experiments.small_facts import run as sf


def test_polynomial_fits_match_numpy():
    x, y = np.array(fp.X), np.array(fp.Y)
    for degree in (0, 1, 2, 3, 4):
        ours = fp.poly_eval(
            fp.poly_fit(torch.tensor(x), torch.tensor(y), degree), torch.tensor(x)
        ).numpy()
        np.testing.assert_allclose(ours, np.polyval(np.polyfit(x, y, degree), x), rtol=1e-8)


def test_degree_20_is_the_minimum_norm_interpolant():
    x, y = np.array(fp.X), np.array(fp.Y)
    design = (x[:, None] / fp.SCALE) ** np.arange(21)
    expected = np.linalg.pinv(design) @ y
    ours = fp.poly_fit(torch.tensor(x), torch.tensor(y), 20).numpy()
    np.testing.assert_allclose(design @ ours, y, rtol=1e-8)
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-8)


def test_leave_one_out_by_hand(context):
    x, y = np.array(fp.X), np.array(fp.Y)
    errors = [
        (np.polyval(np.polyfit(np.delete(x, i), np.delete(y, i), 2), x[i]) - y[i]) ** 2
        for i in range(5)
    ]
    ctx = context("five_points")
    fp.run(FiveParams(task="poly", degree=2), ctx)
    assert abs(logged(ctx)["loo_mse"] - np.mean(errors)) < 1e-8


def test_parameter_counts_by_formula(context):
    ctx = context("small_facts")
    sf.run(FactParams(fact="parameter_counts"), ctx)
    assert logged(ctx)["mlp_001_params"] == 676 * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10 == 11274
    conv = 1 * 32 * 25 + 32 + 32 * 64 * 25 + 64
    assert logged(ctx)["cnn_handout_params"] == conv + 256 * 200 + 200 + 200 * 10 + 10 == 105506
    assert logged(ctx)["image_linear_map_params"] == (256 * 256 * 3) ** 2


def test_convolution_is_a_finite_difference(context):
    ctx = context("small_facts")
    sf.run(FactParams(fact="conv_derivative"), ctx)
    signal = np.array([0, 0, 0, 0, 1, 2, 3, 4, 4, 4, 4])
    expected = [0, 0, 0, 1, 1, 1, 1, 0, 0, 0]
    assert list(np.diff(signal)) == expected
    assert [logged(ctx)["derivative", i] for i in range(len(expected))] == expected


def test_vanishing_gradient_norms_are_per_layer(context):
    torch.manual_seed(0)
    ctx = context("small_facts")
    sf.run(FactParams(fact="vanishing", depth=5, width=8, batch=4), ctx)
    norms = [logged(ctx)[("grad_norm", layer)] for layer in range(1, 6)]
    assert logged(ctx)["first_to_last_grad_ratio"] == norms[0] / norms[-1]
