"""MNIST from a real directory, checked once before any run: present, the published sizes and MD5s."""

import shutil

import pytest
import torch

from dlrepro.data import ENV_VAR, DataError, data_dir, mnist, verify


def test_loads_real_mnist(mnist_dir):
    verify({"mnist"}, mnist_dir)
    images, labels = mnist(mnist_dir, train=False)
    assert images.shape == (10_000, 1, 28, 28) and images.dtype == torch.float32
    assert 0 <= images.min() and images.max() == 1
    assert labels.shape == (10_000,) and set(labels.unique().tolist()) == set(range(10))
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first test labels


@pytest.fixture
def copy(mnist_dir, tmp_path):
    """A writable copy of the MNIST folder."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (mnist_dir / "MNIST" / "raw").glob("*-ubyte"):
        shutil.copy(f, raw / f.name)
        (raw / f.name).chmod(0o644)
    return tmp_path


def damage(path, how):
    data = path.read_bytes()
    if how == "missing":
        path.unlink()
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(data[:100_000])
    else:  # corrupt: the right size, one byte changed
        path.write_bytes(data[:5000] + bytes([data[5000] ^ 0xFF]) + data[5001:])


@pytest.mark.parametrize("how", ["missing", "empty", "truncated", "corrupt"])
def test_each_kind_of_bad_file_is_named_with_the_fix(copy, how):
    damage(copy / "MNIST" / "raw" / "t10k-images-idx3-ubyte", how)
    with pytest.raises(DataError) as err:
        verify({"mnist"}, copy)
    message = str(err.value)
    assert message.startswith(str(copy / "MNIST" / "raw" / "t10k-images-idx3-ubyte") + ": " + how)
    assert "--data-dir" in message and ENV_VAR in message


def test_missing_directory(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        verify({"mnist"}, tmp_path / "nowhere")


def test_flag_beats_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, "/from/env")
    assert data_dir(tmp_path) == tmp_path.resolve()
    assert str(data_dir(None)) == "/from/env"
    monkeypatch.delenv(ENV_VAR)
    assert data_dir(None) is None
