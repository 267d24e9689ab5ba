"""Energy and CO2 per run, from codecarbon's offline tracker where it is installed: one tracker
per runner session (its start costs seconds), each run one codecarbon *task* (microseconds), so
tiny runs do not pay the start. Its raw per-task log goes to ``<results>/<profile>/energy/``."""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

MEASURED_CPU_MODES = {"intel_rapl", "intel_power_gadget", "apple_powermetrics"}
NOT_INSTALLED = "not measured: codecarbon is not installed"


# A record's energy columns, from codecarbon's reading of a run: in all and by part. Without RAPL
# its flat RAM estimate is much of a CPU run's total, so the parts are kept (docs/energy.md).
READINGS = {"energy_kwh": "energy_consumed", "energy_cpu_kwh": "cpu_energy",
            "energy_gpu_kwh": "gpu_energy", "energy_ram_kwh": "ram_energy", "co2_kg": "emissions"}


@dataclass
class Energy:
    method: str = "not measured"
    amounts: dict[str, float] = field(default_factory=lambda: dict.fromkeys(READINGS, math.nan))

    def columns(self, share: float) -> dict:
        """A record's energy columns, for ``share`` of the run (seeds trained together)."""
        return {**{k: v * share for k, v in self.amounts.items()}, "energy_method": self.method}


class EnergyMeter:
    """Starts codecarbon once; ``measure(run_id)`` wraps one run. Failing to start is not fatal."""

    def __init__(self, output_dir: Path, country: str):  # ISO 3166-1 alpha-3, as runners set it
        self.output_dir, self.country = Path(output_dir), country
        self._tracker = None
        self.method = "not measured"

    def __enter__(self) -> EnergyMeter:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        try:
            from codecarbon import OfflineEmissionsTracker
            from codecarbon import __version__ as cc_version

            # After the import, which sets the codecarbon logger's level itself.
            logging.getLogger("codecarbon").setLevel(logging.ERROR)
            self._tracker = OfflineEmissionsTracker(
                country_iso_code=self.country, output_dir=str(self.output_dir),
                project_name="dlrepro", log_level="error", save_to_file=True,
                tracking_mode="process")
            self._tracker.start()
            self.method = f"codecarbon {cc_version}, {self.country}: " + self._describe()
        except Exception as err:  # energy is a side measurement: never lose a run for it
            self._tracker = None
            missing = isinstance(err, ImportError) and err.name == "codecarbon"  # optional
            self.method = (NOT_INSTALLED if missing
                           else f"not measured (codecarbon failed to start: {err})")
        return self

    def __exit__(self, *exc) -> None:
        if self._tracker is not None:
            with contextlib.suppress(Exception):
                self._tracker.stop()

    def flush(self) -> None:
        """Write codecarbon's log as it stands, the tracker running on."""
        if self._tracker is not None:
            self._tracker.flush()

    def _describe(self) -> str:
        """How power was obtained: measured (RAPL and the like, NVML for GPUs) or estimated."""
        parts = []
        for hw in getattr(self._tracker, "_hardware", []):
            mode = getattr(hw, "_mode", None)
            how = "measured" if mode in MEASURED_CPU_MODES else "estimated"
            parts += {"CPU": [f"CPU {how} ({mode or 'model TDP'})"], "GPU": ["GPU measured (NVML)"],
                      "RAM": ["RAM estimated"]}.get(type(hw).__name__, [])
        return ", ".join(parts) or "unknown hardware"

    @contextlib.contextmanager
    def measure(self, run_id: str):
        """One run's energy. A codecarbon failure leaves it not measured, saying why: a run and
        its record never depend on the energy reading."""
        energy = Energy(method=self.method)
        tracked = self._tracker is not None and _guarded(
            energy, lambda: self._tracker.start_task(run_id))
        try:
            yield energy
        finally:
            if tracked:
                _guarded(energy, lambda: _read(energy, self._tracker.stop_task(run_id)))


def _read(energy: Energy, data) -> None:
    if data is None:  # codecarbon's stop_task, for a task it does not know
        raise ValueError("no reading for the run's task")
    energy.amounts = {column: float(getattr(data, name)) for column, name in READINGS.items()}


def _guarded(energy: Energy, step) -> bool:
    try:
        step()
        return True
    except Exception as err:  # energy is a side measurement: never lose a run for it
        energy.amounts = Energy().amounts
        energy.method = f"not measured (codecarbon failed: {type(err).__name__}: {err})"
        return False
