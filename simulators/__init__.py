"""Device simulators: realistic community fleets, labelled fault scenarios and hard negatives.

See simulators/README.md for the API, the formats and measured figures.
"""

from simulators.engine import Message, Simulation, default_start, simulate
from simulators.fleet import PRESETS, Building, Fleet, Unit, build_fleet, fleet_for_devices
from simulators.scenarios import (
    CATALOGUE,
    FAULTS,
    HARD_NEGATIVES,
    Notice,
    Placement,
    Scenario,
    ScenarioError,
    ScenarioType,
    load_scenario_file,
)

__all__ = [
    "CATALOGUE",
    "FAULTS",
    "HARD_NEGATIVES",
    "PRESETS",
    "Building",
    "Fleet",
    "Message",
    "Notice",
    "Placement",
    "Scenario",
    "ScenarioError",
    "ScenarioType",
    "Simulation",
    "Unit",
    "build_fleet",
    "default_start",
    "fleet_for_devices",
    "load_scenario_file",
    "simulate",
]
