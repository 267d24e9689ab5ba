"""MNIST and Fashion-MNIST from a real directory, checked once before any run: present, the
published sizes and MD5s."""

import gzip
import shutil
from pathlib import Path

import pytest
import torch

from dlrepro.errors import Refused
from dlrepro.experiments.image_sets import images, verify
from dlrepro.files import ENV_VAR, data_dir


@pytest.mark.parametrize(
    "name, first_labels", [("mnist", [7, 2, 1, 0, 4]), ("fashion_mnist", [9, 2, 1, 1, 6])]
)
def test_loads_real_mnist_and_fashion_mnist(mnist_dir, name, first_labels):
    verify({name}, mnist_dir)
    pixels, labels = images(name, mnist_dir, train=False)
    assert pixels.shape == (10_000, 1, 28, 28) and pixels.dtype == torch.float32
    assert 0 <= pixels.min() and pixels.max() == 1
    assert labels.shape == (10_000,) and set(labels.unique().tolist()) == set(range(10))
    assert (
        labels[:5].tolist() == first_labels
    )  # the well-known first test labels (ankle boot, pullover, …)
    train, _ = images(name, mnist_dir, train=True)
    assert train.shape == (60_000, 1, 28, 28)


def test_the_dataset_parameter_names_exactly_the_known_sets():
    from typing import get_args

    from dlrepro.experiments.image_sets import DATASETS, DatasetName

    assert set(get_args(DatasetName)) == set(DATASETS)


def test_a_corrupt_fashion_mnist_file_is_named_with_its_fix(mnist_dir, tmp_path):
    raw = _writable_copy(mnist_dir, tmp_path, "FashionMNIST")
    damage(raw / "t10k-labels-idx1-ubyte", "corrupt")
    verify({"mnist"}, mnist_dir)  # the other set is untouched
    with pytest.raises(
        Refused,
        match=r"FashionMNIST/raw/t10k-labels-idx1-ubyte: corrupt \(MD5 .*expected "
        r"15d484375f8d13e6eb1aabb0c3f46965\); put the published t10k-labels-idx1-ubyte there",
    ):
        verify({"fashion_mnist"}, tmp_path)


def _writable_copy(source, root, folder: str):
    """A writable copy of ``source/folder/raw`` under ``root``; its raw folder."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for f in (source / folder / "raw").glob("*-ubyte"):
        shutil.copy(f, raw / f.name)
        (raw / f.name).chmod(0o644)
    return raw


@pytest.fixture
def copy(mnist_dir, tmp_path):
    """A writable copy of the MNIST folder."""
    _writable_copy(mnist_dir, tmp_path, "MNIST")
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
    with pytest.raises(Refused) as err:
        verify({"mnist"}, copy)
    message = str(err.value)
    assert message.startswith(str(copy / "MNIST" / "raw" / "t10k-images-idx3-ubyte") + ": " + how)
    assert "--data-dir" in message and ENV_VAR in message


def test_missing_directory(tmp_path):
    with pytest.raises(Refused, match="does not exist"):
        verify({"mnist"}, tmp_path / "nowhere")


def test_flag_beats_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, "/from/env")
    assert data_dir(tmp_path) == tmp_path.resolve()
    assert str(data_dir(None)) == "/from/env"
    monkeypatch.delenv(ENV_VAR)
    assert data_dir(None) is None


@pytest.mark.parametrize("suite, code, said", [
    ("xor", 0, "warning: {}: the data directory (from --data-dir or $DLREPRO_DATA_DIR) does not "
               "exist; no selected run reads data, so nothing is read from it"),
    ("mnist_mlp", 2, "dlrepro: error: {}: the data directory (from --data-dir or "
                     "$DLREPRO_DATA_DIR) does not exist"),
])
def test_a_data_folder_that_does_not_exist_is_said_whether_or_not_a_run_reads_it(
        suite, code, said, tmp_path, capsys):
    from dlrepro.cli import main

    nowhere = tmp_path / "nowhere"
    results = tmp_path / "results"
    assert main(["run", suite, "--profile", "smoke", "--dry-run", "--data-dir", str(nowhere),
                 "--results", str(results)]) == code
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if str(nowhere) in line] == [said.format(nowhere)]
    assert code == 0 or err == [said.format(nowhere)]


def _gzipped(copy) -> Path:
    """The copy with MNIST as published: ``*-ubyte.gz`` only; its raw folder."""
    raw = copy / "MNIST" / "raw"
    for path in raw.glob("*-ubyte"):
        with path.open("rb") as source, gzip.open(path.with_name(path.name + ".gz"), "wb",
                                                   compresslevel=1) as target:
            shutil.copyfileobj(source, target)
        path.unlink()
    return raw


def test_mnist_shipped_gzipped_is_unpacked_checked_and_read(copy):
    raw = _gzipped(copy)
    verify({"mnist"}, copy)
    assert sorted(p.name for p in raw.glob("*-ubyte")) == sorted(
        p.name.removesuffix(".gz") for p in raw.glob("*.gz"))
    test_images, labels = images("mnist", copy, train=False)
    assert test_images.shape == (10_000, 1, 28, 28) and labels[:3].tolist() == [7, 2, 1]


@pytest.mark.parametrize(("how", "said"), [
    ("truncated", r"could not be unpacked \(Compressed file ended"),
    ("not gzip", r"could not be unpacked \(Not a gzipped file"),
    ("other content", r"t10k-labels-idx1-ubyte: truncated \(4 bytes, expected 10,008\)"),
])
def test_a_broken_gzip_is_one_line_and_leaves_no_file_behind(copy, how, said):
    packed = _gzipped(copy) / "t10k-labels-idx1-ubyte.gz"
    if how == "truncated":
        packed.write_bytes(packed.read_bytes()[:1000])
    elif how == "not gzip":
        packed.write_bytes(b"not a gzip file")
    else:
        packed.write_bytes(gzip.compress(b"0000"))
    with pytest.raises(Refused, match=said) as err:
        verify({"mnist"}, copy)
    assert "\n" not in str(err.value)
    if how != "other content":  # unpacked whole, it is there, and its check names it
        assert not packed.with_suffix("").exists()
        assert not list(packed.parent.glob(".*.tmp"))
