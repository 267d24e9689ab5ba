"""E3: gradient descent with η = 0.125 vs η = 0.5 on the slides' double well (002, «descente de
gradient»).

Modes: ``trajectory`` (one η and start), ``sweep`` (every η of a range at once, locating where
convergence turns into oscillation) and ``basins`` (the 2-D variant, from a grid of starts).
Descent is deterministic: seeds change nothing here.
"""

from typing import Literal

from pydantic import Field

from dlrepro.experiment import Params as BaseParams
from dlrepro.schema import Metric


Mode = Literal["trajectory", "sweep", "basins"]
TRAJECTORY, SWEEP, BASINS = (frozenset({mode}) for mode in Mode.__args__)


class Params(BaseParams):
    MODE = "mode"
    USED_BY = {"eta": TRAJECTORY | BASINS, "w0": TRAJECTORY | SWEEP, "steps": TRAJECTORY | BASINS,
               "iterates": TRAJECTORY, "sweep_steps": SWEEP, "eta_min": SWEEP, "eta_max": SWEEP,
               "eta_count": SWEEP, "starts": BASINS}

    mode: Mode
    eta: float = Field(0.125, gt=0, description="step size (trajectory, basins)")
    w0: float = Field(0.578, description="start (trajectory, sweep)")
    steps: int = Field(200, ge=3,
                       description="descent steps before judging where it ends (trajectory, "
                       "basins)")
    sweep_steps: int = Field(3000, ge=3,
                             description="steps per η in the sweep: near η* the contraction "
                             "|1 − ηL''| nears 1, so telling slow convergence from oscillation "
                             "takes thousands")
    iterates: int = Field(12, ge=1, description="iterates logged, w0 included (trajectory)")
    eta_min: float = Field(0.05, gt=0)
    eta_max: float = Field(0.6, gt=0)
    eta_count: int = Field(551, ge=2, description="step sizes in the sweep")
    starts: int = Field(5, ge=2,
                        description="starts per side of the 2-D grid "
                                    "(basins: starts × (starts − 1))")


POINT = {"better": "two-sided", "tolerance": 1e-6}
COUNT = {"better": "two-sided", "tolerance": 0}
METRICS = {
    "iterate": Metric(description="w_t for t = 0..11", **POINT),
    "final": Metric(description="w after `steps` steps (not logged if it diverged)", **POINT),
    "final_loss": Metric(better="lower", tolerance=1e-9),
    "period": Metric(description="1 converged, 2 a 2-cycle, 0 neither", **COUNT),
    "diverged": Metric(better="lower", tolerance=0),
    "cycle_low": Metric(**POINT),
    "cycle_high": Metric(**POINT),
    "cycle_amplitude": Metric(**POINT),
    "eta_critical_theory": Metric(description="2 / L''(u*)", **POINT),
    "eta_critical_observed": Metric(better="two-sided",
                                    description="smallest η of the sweep that does not converge",
                                    tolerance=2e-3),
    "eta_critical_ratio": Metric(better="two-sided", tolerance=0.01),
    "curvature": Metric(description="L''(u*) at the minimum small steps reach", **POINT),
    "starts": Metric(**COUNT),
    "ended_deep": Metric(**COUNT),
    "ended_shallow": Metric(**COUNT),
    "ended_elsewhere": Metric(better="lower", tolerance=0),
}
