"""MNIST from a real directory, and the errors when it is missing or corrupt."""

import shutil

import pytest
import torch

from dlrepro.data import ENV_VAR, DataError, data_dir, mnist


def test_loads_real_mnist(mnist_dir):
    images, labels = mnist(mnist_dir, train=False)
    assert images.shape == (10_000, 1, 28, 28) and images.dtype == torch.float32
    assert 0 <= images.min() and images.max() == 1
    assert labels.shape == (10_000,) and set(labels.unique().tolist()) == set(range(10))
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first test labels


def test_missing_directory_names_both_ways(tmp_path):
    with pytest.raises(DataError) as err:
        mnist(tmp_path, train=True)
    assert "--data-dir" in str(err.value) and ENV_VAR in str(err.value) and "download" in str(err.value)


def test_corrupt_file_is_a_clear_error(mnist_dir, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (mnist_dir / "MNIST" / "raw").iterdir():
        shutil.copy(f, raw / f.name)
    images = raw / "t10k-images-idx3-ubyte"
    images.chmod(0o644)
    images.write_bytes(images.read_bytes()[:100_000])
    with pytest.raises(DataError, match="t10k|test set"):
        mnist(tmp_path, train=False)


def test_flag_beats_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, "/from/env")
    assert data_dir(tmp_path) == tmp_path.resolve()
    assert str(data_dir(None)) == "/from/env"
    monkeypatch.delenv(ENV_VAR)
    assert data_dir(None) is None
