"""Deterministic fake cost model and tiny workloads for the step-model tests."""

from __future__ import annotations

from planner.interfaces import CollectiveOp, Estimate
from planner.workload import workload_from_mapping


class FakeCost:
    """Every op takes ``device_s`` (collectives ``collective_s``), one launch of ``host_s``, no spread."""

    def __init__(self, device_s: float = 1e-3, host_s: float = 0.0, collective_s: float = 10e-3,
                 serial_host: bool = False, sigma: float = 0.0) -> None:
        self.device_s = device_s
        self.host_s = host_s
        self.collective_s = collective_s
        self.serial_host = serial_host
        self.sigma = sigma

    def predict(self, op):
        if isinstance(op, CollectiveOp):
            return Estimate(self.collective_s if op.ranks > 1 else 0.0, self.sigma, 1)
        return Estimate(self.device_s, self.sigma, 1)

    def host_overhead_s(self) -> float:
        return self.host_s


def micro_workload(tables: int = 1, rows: int = 1000, batch: int = 64, precision: str = "fp32",
                   optimizer: str = "sgd"):
    """One bottom layer, ``tables`` tables, one top layer, dot interaction, ``optimizer`` (SGD)."""
    return workload_from_mapping({
        "name": "micro",
        "model": {"dense_features": 4, "bottom_mlp": [8], "embedding_dim": 8,
                  "tables": [{"rows": rows, "pooling": 2, "count": tables}], "interaction": "dot",
                  "top_mlp": [1]},
        "training": {"batch_size": batch, "precision": precision, "optimizer": optimizer, "access": "uniform",
                     "samples": 1e6},
    })
