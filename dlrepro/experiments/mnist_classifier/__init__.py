"""E6 and E7: MNIST classifiers — Fleuret's CNN (both versions of the slides) and 001's
11,274-parameter MLP — and their robustness to FGSM (001's panda → gibbon slide); and E10's
second network, a small ResNet on CIFAR-10.

Metrics: per epoch (step = epoch, from 1) ``loss_sum``, ``train_error`` (on the batches as they
went by), ``test_error`` (%), ``epoch_time_s``, ``samples_per_s``; final ``parameters``,
``test_error``, ``train_time_s``; ``fgsm_accuracy`` (%) with step = ε in thousandths.
"""

from typing import Literal

from pydantic import Field, model_validator

from dlrepro.experiments import image_sets
from dlrepro.experiments.image_sets import CIFAR10, DatasetName
from dlrepro.schema import Metric

Model = Literal["cnn_handout", "cnn_crm", "mlp", "resnet"]


class Params(image_sets.TestedImageParams):
    dataset: DatasetName = Field("mnist", description="the set read: mnist, fashion_mnist "
                                 "(clothing) or cifar10 (32 × 32 colour images, model resnet)")
    model: Model
    lr: float = Field(gt=0)
    momentum: float = Field(0.0, ge=0, lt=1, description="SGD's; the handout uses none")
    batch_size: int = Field(100, ge=1)
    epochs: int = Field(10, ge=1)
    normalise: bool = Field(True, description="by the training set's global mean and std, as the "
                            "handout does")
    shuffle: bool = Field(False, description="the handout does not shuffle")
    fgsm_eps: list[float] = Field([0.0, 0.05, 0.1, 0.15, 0.2, 0.25],
                                  description="ε in pixel units ([0, 1] images)")

    @model_validator(mode="after")
    def _sized_for_the_images(self) -> "Params":
        if self.dataset == CIFAR10 and self.model != "resnet":
            raise ValueError(f"model {self.model!r} takes 28 × 28 grey images; CIFAR-10's are "
                             "32 × 32 in colour: model resnet")
        return self


datasets = image_sets.datasets

METRICS = {
    "loss_sum": Metric(better="lower", description="cross-entropy summed over the epoch's batches "
                       "(the handout's log)", rel_tolerance=0.05),
    "train_error": Metric(better="lower", description="% of training images misclassified by the "
                          "batches as they went by", tolerance=0.5),
    "test_error": Metric(better="lower", description="% of the test images misclassified",
                         tolerance=0.5),
    "epoch_time_s": Metric(better="lower", description="training time of the epoch", timing=True),
    "samples_per_s": Metric(better="higher", description="training images per second",
                            timing=True),
    "train_time_s": Metric(better="lower", description="training time, all epochs", timing=True),
    "train_flops": Metric(better="two-sided", description="training FLOPs, forward and backward, "
                          "all epochs (torch's FlopCounterMode on one batch, times the images "
                          "seen)", rel_tolerance=1e-6),
    "kwh_per_pfs_day": Metric(better="lower", description="the run's measured energy per "
                              "petaflop/s-day of its training FLOPs (evaluation and FGSM not "
                              "counted: an upper bound); derived by dlrepro", timing=True),
    "processor_kwh_per_pfs_day": Metric(better="lower", description="kwh_per_pfs_day of the CPU's "
                                        "and GPU's energy alone (the RAM's left out)", timing=True),
    "parameters": Metric(better="two-sided", tolerance=0),
    "fgsm_accuracy": Metric(better="higher", description="% test accuracy under FGSM; step = ε in "
                            "thousandths", tolerance=2),
}
