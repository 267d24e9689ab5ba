"""What every experiment on an image set shares: the sets' files, found and checked before any
run, and loaded as tensors (torch imported then); its parameters, declared once (torch-free, like
every declaration). Most read the 28 × 28 grey sets (MNIST, Fashion-MNIST: torchvision's layout
under ``--data-dir`` or ``$DLREPRO_DATA_DIR``, else downloaded into ``~/.cache/dlrepro/data``, a
published ``*-ubyte.gz`` unpacked beside itself): a missing or corrupt file (size, MD5) stops
everything at once with the way to fix it. CIFAR-10, which the classifiers and the t-SNE slide's
second figure read, is optional and never downloaded: where it is not, its runs are not run, saying
why; a broken batch of it is refused as a corrupt MNIST file is."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from dlrepro.errors import Refused
from dlrepro.experiment import Params
from dlrepro.files import ENV_VAR, atomic_write, folder_problem

if TYPE_CHECKING:
    import torch

DOWNLOAD_DIR = Path.home() / ".cache" / "dlrepro" / "data"


@dataclass(frozen=True)
class Dataset:
    folder: str  # torchvision's: <dir>/<folder>/raw (CIFAR-10's: CIFAR_FOLDER)
    md5s: tuple[str, ...]  # of the published files, in IDX's order
    title: str  # as figures name it


IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# Bytes of 60,000 and of 10,000 images of 28 × 28, and of their labels.
SIZES = (47_040_016, 60_008, 7_840_016, 10_008)
DATASETS = {
    "mnist": Dataset("MNIST", (
        "6bbc9ace898e44ae57da46a324031adb", "a25bea736e30d166cdddb491f175f624",
        "2646ac647ad5339dbf082846283269ea", "27ae3e4e09519cfbb04c329615203637"), "MNIST"),
    # Zalando's drop-in replacement: the same shapes, ten kinds of clothing instead of digits.
    "fashion_mnist": Dataset("FashionMNIST", (
        "f4a8712d7a061bf5bd6d2ca38dc4d50a", "9018921c3c673c538a1fc5bad174d6f9",
        "8181f5470baa50b63fa0f6fddb340f0a", "15d484375f8d13e6eb1aabb0c3f46965"), "Fashion-MNIST"),
    "cifar10": Dataset("CIFAR10", (), "CIFAR-10"),  # 32 × 32 colour images: ``absent`` checks it
}
# The ``dataset`` parameter of the experiments that read one (the tests check it against DATASETS):
# the 28 × 28 grey sets, which every image experiment reads; CIFAR-10, the classifiers and maps.
GreySet = Literal["mnist", "fashion_mnist"]
DatasetName = Literal[GreySet, "cifar10"]
# torchvision's CIFAR-10 layout: DIR/cifar-10-batches-py/, five training batches and a test batch
# (pickles); read without torchvision's MD5 check, so that tests can write small batches.
CIFAR10, CIFAR_FOLDER = "cifar10", "cifar-10-batches-py"
CIFAR_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


def verify(names: set[str], root: Path | None) -> None:
    """Refuse a named set's missing or corrupt file; without a data directory, download it first.
    CIFAR-10, optional, is ``absent``'s where it is not, checked here where it is."""
    problem = folder_problem(root)
    if problem:
        raise Refused(problem)
    if CIFAR10 in names and not absent(names, root):
        for train in (True, False):
            cifar10(root, train)
    for name in sorted(names - {CIFAR10}):
        dataset = DATASETS[name]
        raw = (root or DOWNLOAD_DIR) / dataset.folder / "raw"
        if root is None and not all((raw / file).is_file() for file in IDX):
            _download(dataset)
        for file, size, md5 in zip(IDX, SIZES, dataset.md5s):
            if not (raw / file).exists() and (raw / f"{file}.gz").is_file():
                _unpack(raw / f"{file}.gz")
            _check(raw / file, size, md5, root)


def absent(names: set[str], root: Path | None) -> dict[str, str]:
    """Why each optional set among ``names`` cannot be read (CIFAR-10; none: it can). Never
    downloaded: 170 MB for one figure is the user's to fetch."""
    root = root or DOWNLOAD_DIR
    if CIFAR10 not in names or (root / CIFAR_FOLDER).is_dir():  # a batch missing: ``verify``'s
        return {}
    return {CIFAR10: f"CIFAR-10 not found in {root} (torchvision's layout: {CIFAR_FOLDER}/"
                     f"{', '.join(CIFAR_FILES)}; torchvision.datasets.CIFAR10(DIR, "
                     "download=True) puts it there)"}


def cifar10(root: Path | None, train: bool):
    """CIFAR-10's training or test images as rows of 3 × 32 × 32 bytes, and their labels (numpy
    arrays), read as torchvision's CIFAR10 reads its pickled batches. Refused: a batch that is not
    one (checked before any run, as the grey sets' files are)."""
    import pickle

    import numpy as np

    rows, labels = [], []
    for file in CIFAR_FILES[:-1] if train else CIFAR_FILES[-1:]:  # five training batches, a test
        path = (root or DOWNLOAD_DIR) / CIFAR_FOLDER / file
        try:
            batch = pickle.loads(path.read_bytes(), encoding="latin1")
            if b"data" in batch:  # pickled by Python 3 with bytes keys (the published read as str)
                batch = {"data": batch[b"data"], "labels": batch[b"labels"]}
            rows.append(np.asarray(batch["data"]))
            labels.append(np.asarray(batch["labels"], dtype=np.int64))
            fits = (rows[-1].dtype == np.uint8 and rows[-1].shape == (len(labels[-1]), 3072)
                    and len(labels[-1]) and 0 <= labels[-1].min() and labels[-1].max() <= 9)
            problem = None if fits else "not rows of 3,072 bytes, each with a label from 0 to 9"
        except FileNotFoundError:
            problem = "missing"
        except OSError as err:
            problem = f"unreadable ({err.strerror})"
        except Exception as err:  # what a broken pickle raises varies: EOFError, KeyError, ...
            problem = f"not a pickled CIFAR-10 batch ({type(err).__name__}: {err})"
        if problem:
            raise Refused(f"{path}: {problem}; replace it with the published file "
                          f"(torchvision.datasets.CIFAR10(DIR, download=True)), or remove "
                          f"{CIFAR_FOLDER} to leave CIFAR-10's runs out")
    return np.concatenate(rows), np.concatenate(labels)


def _unpack(packed: Path) -> None:
    """``X.gz`` into ``X``, atomically: an interrupted unpacking leaves nothing taken for X."""
    def unpack(tmp: Path) -> None:
        with gzip.open(packed) as source, tmp.open("wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)

    try:
        atomic_write(packed.with_suffix(""), unpack)
    except (OSError, EOFError, zlib.error) as err:
        reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        fix = f"unpack it yourself (gunzip -k {packed.name}) or replace it with the published file"
        raise Refused(f"{packed}: could not be unpacked ({reason}); {fix}") from None


def _check(path: Path, size: int, md5: str, root: Path | None) -> None:
    if root:
        fix = (f"put the published {path.name} there (torchvision's layout: "
               f"DIR/{path.parent.parent.name}/raw/), or point --data-dir / ${ENV_VAR} at a folder "
               "that has it")
    else:
        fix = f"delete {path} and run again to download it afresh"
    if not path.is_file():
        raise Refused(f"{path}: missing; {fix}")
    actual = path.stat().st_size
    if actual != size:
        state = "empty" if actual == 0 else "truncated" if actual < size else "too long"
        raise Refused(f"{path}: {state} ({actual:,} bytes, expected {size:,}); {fix}")
    try:
        with path.open("rb") as file:
            digest = hashlib.file_digest(file, lambda: hashlib.md5(usedforsecurity=False))
    except OSError as err:
        raise Refused(f"{path}: unreadable ({err.strerror}); {fix}") from None
    if digest.hexdigest() != md5:
        raise Refused(f"{path}: corrupt (MD5 {digest.hexdigest()}, expected {md5}); {fix}")


def _download(dataset: Dataset) -> None:
    from torchvision import datasets

    loader = getattr(datasets, dataset.folder)
    try:
        for train in (True, False):
            loader(DOWNLOAD_DIR, train=train, download=True)
    except Exception as err:  # no network, a mirror down: say so once, before any run
        raise Refused(f"{dataset.folder} could not be downloaded into {DOWNLOAD_DIR} ({err}); "
                      f"point --data-dir or ${ENV_VAR} at a folder holding "
                      f"{dataset.folder}/raw/*-ubyte") from None


TRAIN_IMAGES, TEST_IMAGES = 60_000, 10_000
# A figure's names for the labels 0 … 9 where they are not digits.
CLASSES = {CIFAR10: ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                     "ship", "truck"]}


class ImageParams(Params):
    dataset: GreySet = Field("mnist", description="the 28 × 28 set read: mnist, or "
                             "fashion_mnist (clothing)")
    train_size: int = Field(TRAIN_IMAGES, ge=100, le=TRAIN_IMAGES,
                            description="the first N training images")


class TestedImageParams(ImageParams):
    test_size: int = Field(TEST_IMAGES, ge=100, le=TEST_IMAGES,
                           description="the first N test images")


def datasets(params: ImageParams) -> set[str]:
    """The contract's ``datasets``: the one set the run reads."""
    return {params.dataset}


def titles(names: Iterable[str]) -> str:
    """How figures name the sets a table's runs read: ``MNIST``, ``Fashion-MNIST``."""
    return " / ".join(DATASETS[name].title for name in sorted(set(names)))


def images(name: str, root: Path | None, train: bool,
           device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """A set as float images [N, C, H, W] in [0, 1] (1 × 28 × 28, CIFAR-10's 3 × 32 × 32) and
    int64 labels, on ``device``; the files were checked by ``verify`` or ``absent`` before."""
    import torch
    from torchvision import datasets

    if name == CIFAR10:
        rows, labels = cifar10(root, train)
        pixels = torch.from_numpy(rows).view(-1, 3, 32, 32)
        return pixels.to(device).float().div_(255), torch.from_numpy(labels).to(device)
    loader = getattr(datasets, DATASETS[name].folder)
    loaded = loader(root or DOWNLOAD_DIR, train=train, download=False)
    return loaded.data.to(device).unsqueeze(1).float().div_(255), loaded.targets.to(device)


def as_bytes(images: torch.Tensor):
    """Images [..., 1, 28, 28] in [0, 1] as [..., 28, 28] bytes (a numpy array): what a run keeps
    for its figures, the inverse of ``images``."""
    import torch

    return (images.clamp(0, 1) * 255).round().to(torch.uint8).squeeze(-3).cpu().numpy()
