"""The parameters every experiment on a 28 × 28 image set (MNIST, Fashion-MNIST) shares, declared
once; torch-free, like every declaration."""

from pydantic import Field

from dlrepro.data import DatasetName
from dlrepro.experiment import Params

TRAIN_IMAGES, TEST_IMAGES = 60_000, 10_000


class ImageParams(Params):
    dataset: DatasetName = Field("mnist", description="the 28 × 28 set read: mnist, or "
                                 "fashion_mnist (clothing)")
    train_size: int = Field(TRAIN_IMAGES, ge=100, le=TRAIN_IMAGES,
                            description="the first N training images")


class TestedImageParams(ImageParams):
    test_size: int = Field(TEST_IMAGES, ge=100, le=TEST_IMAGES,
                           description="the first N test images")


def datasets(params: ImageParams) -> set[str]:
    """The contract's ``datasets``: the one set the run reads."""
    return {params.dataset}
