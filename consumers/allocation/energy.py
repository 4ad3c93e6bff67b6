"""Energy and carbon per day of a policy's CPU time: an *estimate* from documented factors, in
the spirit of GreenFlow's reported savings (≈5,000 kWh and 3 t CO2 a day; arXiv:2312.16176).

    kWh/day   = CPU-seconds per request × requests per day × watts per core / 3600 / 1000      (E1)
    kg CO2/day = kWh/day × grid intensity (kg CO2 per kWh)                                      (E2)

The factors (:class:`~consumers.allocation.config.EnergyConfig`) are assumptions, stated with
their sources; the CPU seconds per request are the cascade's measured means (nominal on the
synthetic source). Idle power, memory, network and cooling (PUE) are not counted.
"""

from __future__ import annotations

import pandas as pd

from consumers.allocation.config import EnergyConfig


def kwh_per_day(cpu_s_per_request: float, config: EnergyConfig) -> float:
    """(E1)."""
    return cpu_s_per_request * config.requests_per_day * config.watts_per_core / 3600 / 1000


def energy_table(policies: pd.DataFrame, config: EnergyConfig) -> pd.DataFrame:
    """Per policy row (``policy``, ``cpu_s_per_request``): kWh and kg CO2 per day (E1, E2) and
    what it saves against the ``max chain`` row."""
    kwh = policies["cpu_s_per_request"].map(lambda s: kwh_per_day(float(s), config))
    base = kwh[policies["policy"] == "max chain"]
    ref = float(base.iloc[0]) if len(base) else float("nan")
    return pd.DataFrame(
        {
            "policy": policies["policy"],
            "cpu_s_per_request": policies["cpu_s_per_request"],
            "kwh_per_day": kwh,
            "kg_co2_per_day": kwh * config.grid_kg_per_kwh,
            "kwh_saved_per_day": ref - kwh,
            "kg_co2_saved_per_day": (ref - kwh) * config.grid_kg_per_kwh,
        }
    )


def formula(config: EnergyConfig) -> str:
    """The estimate's formula with its factors, for the report."""
    return (
        f"estimate: kWh/day = CPU-s/request × {config.requests_per_day:.3g} requests/day × "
        f"{config.watts_per_core} W/core / 3600 / 1000; "
        f"kg CO2/day = kWh/day × {config.grid_kg_per_kwh} kg/kWh "
        "(busy-core power only: no idle, memory, network or cooling)"
    )
