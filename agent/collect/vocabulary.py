"""The hardware sensor vocabulary every collector speaks: `hw_*` metric names, their units, state codes.

Why one module: a temperature read from a BMC over Redfish and one read from a switch's ENTITY-SENSOR-MIB
must land on the same metric name in the same unit, or no rule, dashboard or detector can treat them
alike. Values are stored in base SI units (joules, not kWh; ratios 0..1, not percent), so collectors
convert at the edge and the hub never has to know where a reading came from.

States are enumerated codes, not free text, so they are series like any other: `hw_health` keeps the
codes the hub already alerts on (0 OK, 1 Warning, 2 Critical), `hw_status` is the component's state
(Enabled, Absent, UnavailableOffline...) in the order of DMTF's Resource.State enumeration.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric name and the unit its values are in."""

    name: str
    unit: str


TEMPERATURE = Metric("hw_temperature_celsius", "celsius")
POWER = Metric("hw_power_watts", "watts")
PSU_OUTPUT = Metric("hw_psu_output_watts", "watts")
# A rating, not a reading: what the supply can deliver (the hub forecasts its output against it).
PSU_CAPACITY = Metric("hw_psu_capacity_watts", "watts")
VOLTAGE = Metric("hw_voltage_volts", "volts")
CURRENT = Metric("hw_current_amps", "amperes")
ENERGY = Metric("hw_energy_joules", "joules")
FREQUENCY = Metric("hw_frequency_hertz", "hertz")
FAN_SPEED_RPM = Metric("hw_fan_speed_rpm", "rpm")
FAN_SPEED_RATIO = Metric("hw_fan_speed_ratio", "ratio")
HUMIDITY = Metric("hw_humidity_ratio", "ratio")
ABSOLUTE_HUMIDITY = Metric("hw_absolute_humidity_grams_per_cubic_meter", "grams_per_cubic_meter")
DEW_POINT = Metric("hw_dew_point_celsius", "celsius")
# A percentage that is neither a fan's speed nor humidity (a load, a PWM duty, a fill level).
LEVEL = Metric("hw_level_ratio", "ratio")
PRESSURE = Metric("hw_pressure_pascals", "pascals")
AIRFLOW = Metric("hw_airflow_cubic_meters_per_second", "cubic_meters_per_second")
LIQUID_FLOW = Metric("hw_liquid_flow_cubic_meters_per_second", "cubic_meters_per_second")
ALTITUDE = Metric("hw_altitude_meters", "meters")
CHARGE = Metric("hw_charge_coulombs", "coulombs")
BATTERY_CHARGE = Metric("hw_battery_charge_ratio", "ratio")
BATTERY_HEALTH = Metric("hw_battery_state_of_health_ratio", "ratio")
BATTERY_ENERGY = Metric("hw_battery_stored_energy_joules", "joules")
BATTERY_CAPACITY = Metric("hw_battery_capacity_joules", "joules")
BATTERY_CYCLES = Metric("hw_battery_discharge_cycles", "")
# Processors and memory: how busy (bandwidth, kernel and user time), how far from throttling, how
# many errors corrected or not (counters since the part's first use, `property` names which).
UTILIZATION = Metric("hw_utilization_ratio", "ratio")
THROTTLE_MARGIN = Metric("hw_throttle_margin_celsius", "celsius")
ERRORS = Metric("hw_errors_total", "")

HEALTH = Metric("hw_health", "")
HEALTH_ROLLUP = Metric("hw_health_rollup", "")
STATUS = Metric("hw_status", "")
# Yes/no conditions as 0/1: a processor held below its speed, a memory alarm that tripped.
THROTTLED = Metric("hw_throttled", "")
ALARM = Metric("hw_alarm", "")

HEALTH_CODES = {"OK": 0.0, "Warning": 1.0, "Critical": 2.0}
STATUS_CODES = {
    name: float(code)
    for code, name in enumerate(
        (
            "Enabled",
            "Disabled",
            "StandbyOffline",
            "StandbySpare",
            "InTest",
            "Starting",
            "Absent",
            "UnavailableOffline",
            "Deferring",
            "Quiesced",
            "Updating",
            "Qualified",
            "Degraded",
        )
    )
}
