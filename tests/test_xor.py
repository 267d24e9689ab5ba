"""E1's maths against independent computations."""

import numpy as np
import pytest
import torch

from conftest import logged
from dlrepro.experiments.xor import Params
from dlrepro.experiments.xor import run as xor


def params(**kw):
    return Params(**{"model": "perceptron", "features": "phi", "coding": "pm1", "epochs": 10, **kw})


def test_perceptron_reproduces_the_handout():
    x, target = xor.xor_points("pm1", "phi")
    w, b, errors, converged_at = xor.perceptron(x, target, params())
    assert w.tolist() == [0.0, 0.0, -4.0] and b == 0.0
    assert converged_at == 2 and errors[-1] == 0


@pytest.mark.parametrize("coding", ["pm1", "01"])
def test_no_linear_rule_separates_raw_xor(coding):
    """Brute force over many lines: the best gets 3 of 4, never 4 (numpy, not the experiment's
    code)."""
    x, target = (t.numpy() for t in xor.xor_points(coding, "raw"))
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(20000, 2)), rng.normal(size=20000)
    predicted = np.where(x @ w.T + b > 0, 1.0, -1.0)
    accuracy = (predicted == target[:, None]).mean(axis=0)
    assert accuracy.max() == 0.75


@pytest.mark.parametrize("coding", ["pm1", "01"])
@pytest.mark.parametrize("model", ["perceptron", "logistic"])
def test_phi_is_separated_and_raw_is_not(model, coding):
    for features, separable in (("phi", True), ("raw", False)):
        x, target = xor.xor_points(coding, features)
        p = params(model=model, coding=coding, features=features, epochs=200)
        torch.manual_seed(0)
        w, b, errors, converged_at = (xor.perceptron if model == "perceptron" else xor.logistic)(
            x, target, p
        )
        assert (errors[-1] == 0) is separable
        assert (converged_at is not None) is separable
        assert xor.misclassified(w, b, x, target) == errors[-1]


def test_xor_labels_are_xor():
    for coding in ("pm1", "01"):
        x, target = xor.xor_points(coding, "raw")
        for (u, v), t in zip(x.tolist(), target.tolist()):
            assert (t > 0) == (u != v)


def test_worked_neuron(context):
    ctx = context("xor")
    xor.run(Params(model="worked_neuron"), ctx)
    expected_z = sum(a * b for a, b in zip(xor.NEURON_X, xor.NEURON_W)) + xor.NEURON_B
    assert (
        logged(ctx)
        == {"neuron_z": expected_z, "neuron_relu": max(expected_z, 0)}
        == {"neuron_z": 4, "neuron_relu": 4}
    )


def test_params_reject_missing_data_for_trained_models():
    with pytest.raises(ValueError):
        Params(model="perceptron")
    with pytest.raises(ValueError):
        Params(model="worked_neuron", features="raw", coding="pm1")
