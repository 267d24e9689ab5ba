"""E5: DCGAN samples by epoch, on MNIST (002, «Modèles génératifs adversariaux»; the slides
show Radford et al.'s LSUN bedrooms after 1, 2, 5, 10 and 20 epochs).

At step 0 (the untrained G) and each recorded epoch: a Fréchet distance between generated and real
test digits on the features of the E6 classifier this suite ``needs``, and how sure that classifier
is of the samples' digits.
"""

from pydantic import Field, field_validator

from dlrepro.experiments import image_sets
from dlrepro.experiments.image_sets import TEST_IMAGES
from dlrepro.schema import Metric


class Params(image_sets.ImageParams):
    record_epochs: list[int] = Field([1, 2, 5, 10, 20], min_length=1,
                                     description="epochs whose samples are kept")
    batch_size: int = Field(128, ge=2)
    lr: float = Field(2e-4, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    width: int = Field(64, ge=1,
                       description="D's first and G's last hidden channels (doubled in the middle)")
    fd_samples: int = Field(TEST_IMAGES, ge=100, le=TEST_IMAGES,
                            description="samples and test digits per Fréchet "
                            "distance")

    @field_validator("record_epochs")
    @classmethod
    def _increasing(cls, epochs: list[int]) -> list[int]:
        if epochs[0] < 1 or any(b <= a for a, b in zip(epochs, epochs[1:])):
            raise ValueError("must be increasing epoch numbers from 1")
        return epochs


datasets = image_sets.datasets


METRICS = {
    "loss_d": Metric(better="two-sided",
                     description="D's loss, mean over the epoch's batches", rel_tolerance=0.5),
    "loss_g": Metric(better="two-sided",
                     description="G's loss, mean over the epoch's batches", rel_tolerance=0.5),
    "d_real": Metric(better="two-sided", description="mean D(x) on real batches", tolerance=0.2),
    "d_fake": Metric(better="two-sided", description="mean D(G(z)) before D's step", tolerance=0.2),
    "frechet_distance": Metric(better="lower",
                               description="generated vs real test digits, on the E6 classifier's "
                               "features; step = epoch", rel_tolerance=0.5),
    "fd_floor": Metric(better="lower",
                       description="the same distance between real training and real test digits",
                       rel_tolerance=0.2),
    "fd_ratio": Metric(better="lower",
                       description="Fréchet distance at the last recorded epoch over the first's",
                       tolerance=0.3),
    "sample_confidence": Metric(better="higher",
                                description="E6 classifier's mean max-softmax on samples",
                                tolerance=0.1),
    "real_confidence": Metric(better="higher",
                              description="the same on real test digits", tolerance=0.02),
    "digit_likeness": Metric(better="higher",
                             description="where sample_confidence lies from the untrained G's (0) "
                             "to real digits' (1)", tolerance=0.15),
    "epoch_time_s": Metric(better="lower", timing=True),
    "train_time_s": Metric(better="lower", timing=True),
}
