"""Registry of kernel cost-model families by name, and validation of a profile's calibration block."""

from __future__ import annotations

from typing import Any

from planner.errors import InputError


def validate_calibration(profile: Any, file: str | None = None) -> None:
    """Check that a profile's ``calibration`` block is a mapping (families are checked by their models)."""
    if not isinstance(profile.calibration, dict):
        raise InputError("calibration must be a mapping", file=file, field="calibration")
