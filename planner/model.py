"""Every noun of recplan as a frozen dataclass, SI units in the field names.

These are validated on construction (pydantic dataclasses with unknown keys forbidden and NaN or infinity
refused), so a loaded workload or hardware profile is known to be well formed. Use
:func:`planner.validation.build` to turn a plain mapping into one of them with file-and-field errors.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticCustomError

_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False, strict=False)


def _not_boolean(value: Any) -> Any:
    """Refuse true/false where a number belongs (lax validation would read ``rows: yes`` as 1)."""
    if isinstance(value, bool):
        raise PydanticCustomError("bool_not_number", "expected a number, not true/false")
    return value


#: Every numeric field carries this: YAML's ``yes``/``no``/``true`` are never numbers.
_NUMBER = BeforeValidator(_not_boolean)

Precision = Literal["fp32", "tf32", "bf16", "fp16", "fp8"]
Optimizer = Literal["sgd", "adagrad", "rowwise_adagrad", "adam"]
FigureStatus = Literal["datasheet", "derived", "unverified", "assumed", "measured", "transferred", "override"]

PositiveFloat = Annotated[float, _NUMBER, Field(gt=0)]
NonNegativeFloat = Annotated[float, _NUMBER, Field(ge=0)]
# Efficiencies: at least one part in a million of the peak (calibrated CPU collectives reach 0.2%); a
# smaller figure is a typo and would make every time it divides overflow to infinity.
Fraction = Annotated[float, _NUMBER, Field(ge=1e-6, le=1.5)]
PositiveInt = Annotated[int, _NUMBER, Field(gt=0)]
# Bounds reject absurd figures (a typo of ten extra zeros, or a rate so small that a training run's time
# overflows to infinity) while leaving room for past and future systems: rates of at least 1 kB/s and
# 1 MFLOP/s (below any computer recplan could plan for), so that times, costs and energies stay finite
# even for the largest workload the schema admits.
Bytes = Annotated[float, _NUMBER, Field(gt=0, le=1e18)]
BytesPerSecond = Annotated[float, _NUMBER, Field(ge=1e3, le=1e16)]
Seconds = Annotated[float, _NUMBER, Field(ge=0, le=10.0)]
FlopsPerSecond = Annotated[float, _NUMBER, Field(ge=1e6, le=1e19)]


# --------------------------------------------------------------------------------------------- hardware
@dataclass(frozen=True, config=_CONFIG)
class DeviceSpec:
    """One accelerator (or one CPU socket group for ``kind: cpu``): peak rates and memory."""

    peak_flops: dict[Precision, FlopsPerSecond]
    hbm_bytes: Bytes
    hbm_bandwidth_bytes_per_s: BytesPerSecond
    l2_bytes: Annotated[float, _NUMBER, Field(ge=0, le=1e12)]
    sm_count: Annotated[int, _NUMBER, Field(gt=0, le=1_000_000)]
    power_w: Annotated[float, _NUMBER, Field(gt=0, le=1e5)]


@dataclass(frozen=True, config=_CONFIG)
class NodeSpec:
    """One server: how many devices, the scale-up link per direction, and the host."""

    devices: Annotated[int, _NUMBER, Field(gt=0, le=100_000)]
    intra_bandwidth_bytes_per_s: BytesPerSecond
    intra_latency_s: Seconds
    host_memory_bytes: Bytes
    host_link_bandwidth_bytes_per_s: BytesPerSecond
    host_memory_bandwidth_bytes_per_s: BytesPerSecond | None = None


@dataclass(frozen=True, config=_CONFIG)
class NetworkSpec:
    """Scale-out network per device and direction, with its one-way latency."""

    per_device_bandwidth_bytes_per_s: BytesPerSecond
    latency_s: Seconds


@dataclass(frozen=True, config=_CONFIG)
class PriceSpec:
    """On-demand price per device-hour in US dollars; ``None`` where no list price was found."""

    usd_per_device_hour: Annotated[float, _NUMBER, Field(ge=0, le=1e5)] | None = None


@dataclass(frozen=True, config=_CONFIG)
class EfficiencySpec:
    """Datasheet-level efficiencies: achievable fractions of peak and fixed costs, before calibration.

    Fractions are of the matching datasheet peak: GEMM of the dtype's dense peak, HBM of its bandwidth,
    host link of its per-direction bandwidth, collectives' bus bandwidth of the per-direction link.
    """

    gemm_peak_fraction: Fraction
    hbm_fraction: Fraction
    host_link_fraction: Fraction
    allreduce_intra_fraction: Fraction
    alltoall_intra_fraction: Fraction
    network_fraction: Fraction
    collective_latency_intra_s: Seconds
    collective_latency_inter_s: Seconds
    kernel_launch_s: Seconds
    embedding_access_bytes: Annotated[int, _NUMBER, Field(gt=0, le=4096)] = 32


@dataclass(frozen=True, config=_CONFIG)
class FigureSource:
    """Where one figure (or a group of figures) comes from."""

    source: Annotated[str, Field(min_length=1)]
    as_of: Annotated[str, Field(min_length=4)]
    status: FigureStatus = "datasheet"


@dataclass(frozen=True, config=_CONFIG)
class DerivedFrom:
    """A hypothetical profile's base and exactly what was changed (``path: "old -> new"``)."""

    base: str
    changes: dict[str, str]


@dataclass(frozen=True, config=_CONFIG)
class HardwareProfile:
    """One system a job can run on: device, node, network, price, efficiencies and provenance.

    ``figures`` maps dotted field paths (``device.hbm_bytes``) or group prefixes (``device.peak_flops``)
    to their source; every numeric figure must be covered. ``calibration`` holds fitted cost-model
    parameters written by ``recplan calibrate`` (validated by :mod:`planner.cost`).
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")]
    kind: Literal["gpu", "tpu", "cpu", "accelerator"]
    description: str
    source: str
    as_of: str
    device: DeviceSpec
    node: NodeSpec
    network: NetworkSpec
    price: PriceSpec
    efficiency: EfficiencySpec
    figures: dict[str, FigureSource]
    calibration: dict | None = None
    derived_from: DerivedFrom | None = None

    def peak_flops_for(self, precision: str) -> float:
        """Dense peak FLOP/s for a training precision: the precision's own, else the listed dtype of
        :meth:`peak_precision_for` (see there which one stands in)."""
        return float(self.device.peak_flops[self.peak_precision_for(precision)])

    def peak_precision_for(self, precision: str) -> str:
        """The dtype whose peak a ``precision`` GEMM is priced at: its own where listed, else the nearest
        listed stand-in: for fp8, bf16 and fp16 the other 16-bit format, then the slower tf32 and fp32;
        for tf32, fp32; for fp32, which has no slower dtype, tf32 and then bf16 (faster: TPUs run fp32
        matmuls as bf16 passes by default, and Gaudi 3 publishes no fp32 peak). Otherwise the slowest
        listed dtype."""
        order = {
            "fp8": ["fp8", "bf16", "fp16", "tf32", "fp32"],
            "bf16": ["bf16", "fp16", "tf32", "fp32"],
            "fp16": ["fp16", "bf16", "tf32", "fp32"],
            "tf32": ["tf32", "fp32"],
            "fp32": ["fp32", "tf32", "bf16"],
        }[precision]
        for dtype in order:
            if dtype in self.device.peak_flops:
                return dtype
        return min(self.device.peak_flops, key=lambda d: float(self.device.peak_flops[d]))


# --------------------------------------------------------------------------------------------- workload
@dataclass(frozen=True, config=_CONFIG)
class TableSpec:
    """One embedding table (repeated ``count`` times): rows and mean lookups per sample (pooling)."""

    rows: Annotated[int, _NUMBER, Field(gt=0, le=10**13)]
    pooling: Annotated[float, _NUMBER, Field(gt=0, le=100_000)] = 1.0
    count: Annotated[int, _NUMBER, Field(gt=0, le=100_000)] = 1
    name: str | None = None


@dataclass(frozen=True, config=_CONFIG)
class InteractionSpec:
    """Feature interaction: ``dot`` (pairwise dots, lower triangle), ``cat`` or ``dcn`` cross layers."""

    kind: Literal["dot", "cat", "dcn"] = "dot"
    cross_layers: Annotated[int, _NUMBER, Field(ge=0, le=1000)] = 0
    low_rank: Annotated[int, _NUMBER, Field(ge=0, le=1_000_000)] = 0


@dataclass(frozen=True, config=_CONFIG)
class ModelSpec:
    """The DLRM architecture: dense input, bottom MLP, embedding tables, interaction and top MLP."""

    dense_features: Annotated[int, _NUMBER, Field(gt=0, le=1_000_000)]
    bottom_mlp: tuple[Annotated[int, _NUMBER, Field(gt=0, le=1_000_000)], ...]
    embedding_dim: Annotated[int, _NUMBER, Field(gt=0, le=65_536)]
    tables: tuple[TableSpec, ...]
    interaction: InteractionSpec
    top_mlp: tuple[Annotated[int, _NUMBER, Field(gt=0, le=1_000_000)], ...]


@dataclass(frozen=True, config=_CONFIG)
class AccessSpec:
    """Index distribution of lookups: uniform, or bounded Zipf with ``exponent`` (hot ids scattered)."""

    kind: Literal["uniform", "zipf"] = "uniform"
    exponent: Annotated[float, _NUMBER, Field(ge=0, le=10)] = 0.0


@dataclass(frozen=True, config=_CONFIG)
class TrainingSpec:
    """How the model is trained: global batch, precision, optimizer, index distribution, data size."""

    batch_size: Annotated[int, _NUMBER, Field(gt=0, le=10**9)]
    precision: Precision
    optimizer: Optimizer
    access: AccessSpec
    samples: Annotated[float, _NUMBER, Field(gt=0, le=1e16)]
    epochs: Annotated[float, _NUMBER, Field(gt=0, le=1e4)] = 1
    sparse_optimizer: Optimizer | None = None
    embedding_precision: Literal["fp32", "bf16", "fp16"] = "fp32"


@dataclass(frozen=True, config=_CONFIG)
class Workload:
    """A DLRM training job: the model and how it is trained."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    model: ModelSpec
    training: TrainingSpec
    description: str = ""
    source: str = ""
