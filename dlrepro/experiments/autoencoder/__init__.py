"""E4: PCA against Fleuret's convolutional autoencoder at small code sizes d, on MNIST; and a linear
autoencoder trained by gradient descent, which should find PCA's error (002, «Auto-encodeurs»).

Each run is one model at one d. Errors are reported in pixel units, pixels in [0, 1]. The
interpolation proxy is the E6 classifier of this suite's ``needs.classifier``.
"""

from typing import Literal

from pydantic import Field

from dlrepro.experiments import image_sets
from dlrepro.schema import Metric

PIXELS = 28 * 28
PAIRS_SHOWN = 6  # the slides: 6 interpolations
TRAINED = frozenset({"linear", "cnn"})


class Params(image_sets.TestedImageParams):
    """PCA is fitted exactly, on every training image: the training parameters are the
    networks'."""

    MODE = "model"
    USED_BY = {name: TRAINED for name in ("epochs", "batch_size", "lr", "train_size")}

    model: Literal["pca", "linear", "cnn"]
    d: int = Field(ge=1, le=PIXELS, description="code size")
    epochs: int = Field(25, ge=1, description="for the trained models")
    batch_size: int = Field(100, ge=1)
    lr: float = Field(1e-3, gt=0, description="Adam's")
    pairs: int = Field(1000, ge=PAIRS_SHOWN, description="test pairs whose midpoints the "
                       "classifier judges")


datasets = image_sets.datasets

SEED_NOISE = {"rel_tolerance": 0.1}
METRICS = {
    "test_mse": Metric(better="lower",
                       description="reconstruction error per pixel on the test set, pixels in [0, "
                                   "1]",
                       **SEED_NOISE),
    "test_sse": Metric(better="lower",
                       description="squared error summed per test image (784 × test_mse: "
                       "Hinton & Salakhutdinov's unit)", **SEED_NOISE),
    "train_mse": Metric(better="lower", description="per pixel, over the batches as they went by; "
                        "step = training images seen", **SEED_NOISE),
    "excess_over_pca": Metric(better="lower",
                              description="% by which the test error exceeds PCA's at the same d",
                              tolerance=5),
    "readable_accuracy": Metric(better="higher",
                                description="% of the reconstructed test digits the E6 classifier "
                                "reads as their label: the slide's 'unreadable' vs 'near perfect', "
                                "measured",
                                tolerance=2),
    "original_accuracy": Metric(better="higher",
                                description="the same on the original test digits: the "
                                "reader's own ceiling", tolerance=0.2),
    "midpoint_confidence": Metric(better="higher",
                                  description="E6 classifier's mean max-softmax on the α = 0.5 "
                                  "latent midpoints of test pairs", tolerance=0.05),
    "endpoint_confidence": Metric(better="higher",
                                  description="the same on the reconstructions of the test images",
                                  tolerance=0.05),
    "epoch_time_s": Metric(better="lower", timing=True),
    "train_time_s": Metric(better="lower", timing=True),
}
