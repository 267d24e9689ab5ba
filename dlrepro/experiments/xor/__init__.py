"""E1: XOR and linear separability (002, «ou exclusif»; the perceptron rule of 003; the neuron of
001).

A linear classifier on the four XOR points gets at most 3 of 4 right; after the feature map
Φ(xu, xv) = (xu, xv, xu·xv) the same classifier separates them.
"""

from typing import Literal

from pydantic import Field, model_validator

from dlrepro.experiment import Params as BaseParams
from dlrepro.schema import Metric


TRAINED = frozenset({"perceptron", "logistic"})


class Params(BaseParams):
    MODE = "model"
    USED_BY = {"features": TRAINED, "coding": TRAINED, "epochs": TRAINED, "lr": TRAINED,
               "init_std": frozenset({"logistic"})}

    model: Literal["perceptron", "logistic", "worked_neuron"]
    features: Literal["raw", "phi"] | None = Field(
        None, description="raw (xu, xv) or Φ = (xu, xv, xu·xv)")
    coding: Literal["pm1", "01"] | None = Field(
        None, description="inputs and targets in {−1, 1} or {0, 1}")
    epochs: int = Field(100, ge=1)
    lr: float = Field(1.0, gt=0)
    init_std: float = Field(0.1, ge=0,
                            description="logistic model's initial weights N(0, init_std²)")

    @model_validator(mode="after")
    def _needs_data(self) -> "Params":
        has_data = self.features is not None and self.coding is not None
        if (self.model == "worked_neuron") == has_data:
            raise ValueError("features and coding are required for perceptron and logistic, and "
                             "unused by worked_neuron")
        return self


EXACT = {"tolerance": 0.0}
WEIGHT = {"better": "two-sided", "tolerance": 1e-6}
METRICS = {
    "accuracy": Metric(better="higher",
                       description="fraction of the 4 points classified right after training",
                       **EXACT),
    "best_accuracy": Metric(better="higher",
                            description="best accuracy at the end of any epoch", **EXACT),
    "errors": Metric(better="lower",
                     description="points misclassified after each epoch (step = epoch)", **EXACT),
    "converged": Metric(better="higher",
                        description="1 if training converged (perceptron: an epoch without "
                        "update; logistic: all points right), else 0", **EXACT),
    "epochs_to_converge": Metric(better="lower",
                                 description="epoch at which it converged (not logged: never)",
                                 **EXACT),
    "w_1": Metric(description="learned weight on xu", **WEIGHT),
    "w_2": Metric(description="learned weight on xv", **WEIGHT),
    "w_3": Metric(description="learned weight on xu·xv (Φ only)", **WEIGHT),
    "b": Metric(description="learned bias", **WEIGHT),
    "neuron_z": Metric(better="two-sided", description="001's worked neuron: w·x + b", **EXACT),
    "neuron_relu": Metric(better="two-sided",
                          description="001's worked neuron: ReLU(w·x + b)", **EXACT),
}
