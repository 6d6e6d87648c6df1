"""Scaling-law presets (presets.yaml), each with its metric and provenance."""
