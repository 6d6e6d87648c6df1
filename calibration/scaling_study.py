"""A small, real DLRM scaling study on this machine: synthetic clicks from a known teacher, reference DLRMs
trained with torch on CPU across data sizes and model sizes, NE measured on held-out data, laws fitted.

Teacher (numpy, seeded): ``n_sparse`` categorical features with ids drawn from a Zipf law over ``vocab``
ids (so a few ids are frequent and most are rare, as in click logs), each id with a latent vector; dense
features ~ N(0, 1); the click probability is a logistic function of a bias, linear dense terms, first-order
latent terms, pairwise latent dot products (feature interactions) and dense-latent interactions. Because the
teacher's probability p is known, the Bayes-optimal NE E[H(p)] / H(E[p]) is computable (Monte Carlo over
features, exact over labels), and so is a model's *expected* NE on held-out features: its cross-entropy
against p rather than against sampled clicks (same expectation, much less noise; the NE of sampled labels
is recorded too as ``ne_sampled``).

Student: a standard DLRM (hashed embedding tables, one id per feature, stored in one sparse
``nn.Embedding``; bottom MLP, dot interaction, top MLP, BCE with logits), one pass over its training
data (no repeated epochs, as in production CTR training), Adam on the dense part and sparse Adagrad on
the tables; fixed learning rates across sizes.

Series written to the observations CSV (``component`` column):
* ``data``: samples swept over ~1.8 (quick) or ~3.2 (full) decades at a fixed model;
* one component swept at a fixed data size (the largest quick size; 2^19 samples in full mode), the others
  fixed: ``embedding_rows`` (hash size), ``embedding_dim``; in quick mode ``mlp_width`` and ``mlp_depth``
  (bottom and top MLP together); in full mode ``bottom_mlp_width``, ``top_mlp_width``,
  ``bottom_mlp_depth`` and ``top_mlp_depth`` separately (the top MLP is the "over-arch" of Ardalani et al.);
* ``model_scale`` (full mode): all components scaled together.

torch is imported inside functions only (calibration must import without torch).
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

# ---------------------------------------------------------------------------------------------------------
# Teacher


@dataclass(frozen=True)
class TeacherConfig:
    """The synthetic click generator (all sizes in ids/features; scales are logit units)."""

    n_sparse: int = 8
    n_dense: int = 8
    vocab: int = 100_000
    zipf_exponent: float = 1.05
    latent_dim: int = 4
    latent_scale: float = 0.6
    pair_scale: float = 0.6
    dense_scale: float = 0.3
    dense_latent_scale: float = 0.25
    bias: float = -1.6


@dataclass(frozen=True)
class Teacher:
    """Teacher parameters drawn from a seed (see :func:`make_teacher`)."""

    config: TeacherConfig
    id_cdf: np.ndarray  # (vocab,) Zipf CDF over ids
    id_perm: np.ndarray  # (n_sparse, vocab) id rank -> id (so frequent ids are scattered)
    latent: np.ndarray  # (n_sparse, vocab, latent_dim)
    first_order: np.ndarray  # (n_sparse, latent_dim)
    dense_w: np.ndarray  # (n_dense,)
    dense_latent: np.ndarray  # (n_sparse, n_dense, latent_dim)
    pairs: list[tuple[int, int]]


def make_teacher(config: TeacherConfig, seed: int) -> Teacher:
    """Draw a teacher from ``seed`` (numpy only)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    c = config
    ranks = np.arange(1, c.vocab + 1, dtype=float)
    weights = ranks ** (-c.zipf_exponent)
    cdf = np.cumsum(weights) / weights.sum()
    perm = np.stack([rng.permutation(c.vocab) for _ in range(c.n_sparse)])
    latent = rng.normal(0.0, c.latent_scale, size=(c.n_sparse, c.vocab, c.latent_dim))
    first = rng.normal(0.0, 1.0, size=(c.n_sparse, c.latent_dim))
    dense_w = rng.normal(0.0, c.dense_scale, size=c.n_dense)
    dense_latent = rng.normal(0.0, c.dense_latent_scale, size=(c.n_sparse, c.n_dense, c.latent_dim))
    pairs = [(i, j) for i in range(c.n_sparse) for j in range(i + 1, c.n_sparse)]
    return Teacher(c, cdf, perm, latent, first, dense_w, dense_latent, pairs)


@dataclass(frozen=True)
class Clicks:
    """A sample of click data: dense (n, n_dense) float32, ids (n, n_sparse) int64, teacher p, labels y."""

    dense: np.ndarray
    ids: np.ndarray
    p: np.ndarray
    y: np.ndarray

    def head(self, n: int) -> Clicks:
        """The first ``n`` samples (nested data sizes share their prefix)."""
        return Clicks(self.dense[:n], self.ids[:n], self.p[:n], self.y[:n])


#: Samples per independently seeded chunk: data sets of any size share their prefix exactly.
_CHUNK = 65536


def sample_clicks(teacher: Teacher, n: int, seed: int) -> Clicks:
    """Draw ``n`` samples (features, the teacher's click probability and Bernoulli clicks) from ``seed``.

    Generated in chunks of 65,536 with their own seeds, so the first m samples are the same for every
    n >= m (nested data sizes, whatever the largest size of a plan).
    """
    parts = [_sample_chunk(teacher, _CHUNK, seed, k) for k in range(max(1, -(-n // _CHUNK)))]
    return Clicks(*(np.concatenate([getattr(p, f) for p in parts])[:n] for f in ("dense", "ids", "p", "y")))


def _sample_chunk(teacher: Teacher, n: int, seed: int, chunk: int) -> Clicks:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2, chunk]))
    c = teacher.config
    dense = rng.normal(0.0, 1.0, size=(n, c.n_dense))
    ranks = np.searchsorted(teacher.id_cdf, rng.random((n, c.n_sparse)))
    ranks = np.minimum(ranks, c.vocab - 1)
    ids = np.stack([teacher.id_perm[f, ranks[:, f]] for f in range(c.n_sparse)], axis=1)
    logit = np.full(n, c.bias) + dense @ teacher.dense_w
    lat = np.stack([teacher.latent[f, ids[:, f]] for f in range(c.n_sparse)], axis=1)  # (n, F, k)
    logit += np.einsum("nfk,fk->n", lat, teacher.first_order) / math.sqrt(c.n_sparse)
    pair = sum(np.einsum("nk,nk->n", lat[:, i], lat[:, j]) for i, j in teacher.pairs)
    logit += c.pair_scale * pair / math.sqrt(len(teacher.pairs))
    logit += np.einsum("nd,fdk,nfk->n", dense, teacher.dense_latent, lat) / math.sqrt(c.n_sparse)
    p = 1.0 / (1.0 + np.exp(-logit))
    y = (rng.random(n) < p).astype(np.float32)
    return Clicks(dense.astype(np.float32), ids.astype(np.int64), p, y)


def _entropy(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-12, 1 - 1e-12)
    return -(q * np.log(q) + (1 - q) * np.log(1 - q))


def bayes_ne(clicks: Clicks) -> float:
    """Bayes-optimal NE on these features: mean binary entropy of p over the entropy of the mean CTR."""
    return float(np.mean(_entropy(clicks.p)) / _entropy(np.array([np.mean(clicks.p)]))[0])


def expected_ne(q: np.ndarray, clicks: Clicks) -> float:
    """A model's NE in expectation over labels: cross-entropy of predictions ``q`` against the teacher's p,
    normalised by the entropy of the mean CTR (He et al. 2014 NE with the label noise integrated out)."""
    qq = np.clip(q, 1e-12, 1 - 1e-12)
    ce = -(clicks.p * np.log(qq) + (1 - clicks.p) * np.log(1 - qq))
    return float(np.mean(ce) / _entropy(np.array([np.mean(clicks.p)]))[0])


def sampled_ne(q: np.ndarray, clicks: Clicks) -> float:
    """NE against the sampled clicks (He et al. 2014): log loss over the entropy of the empirical CTR."""
    qq = np.clip(q, 1e-12, 1 - 1e-12)
    y = clicks.y.astype(float)
    ll = -np.mean(y * np.log(qq) + (1 - y) * np.log(1 - qq))
    return float(ll / _entropy(np.array([np.mean(y)]))[0])


# ---------------------------------------------------------------------------------------------------------
# Student DLRM


@dataclass(frozen=True)
class ModelConfig:
    """A reference DLRM: hashed tables of ``hash_size`` rows x ``embedding_dim``; MLPs of width x depth."""

    hash_size: int = 1 << 14
    embedding_dim: int = 16
    bottom_width: int = 64
    bottom_depth: int = 2
    top_width: int = 64
    top_depth: int = 2

    def params(self, n_sparse: int, n_dense: int) -> dict[str, int]:
        """Embedding and dense parameter counts."""
        emb = n_sparse * self.hash_size * self.embedding_dim
        dense = 0
        w_in = n_dense
        for _ in range(self.bottom_depth):
            dense += w_in * self.bottom_width + self.bottom_width
            w_in = self.bottom_width
        dense += w_in * self.embedding_dim + self.embedding_dim
        f = n_sparse + 1
        w_in = self.embedding_dim + f * (f - 1) // 2
        for _ in range(self.top_depth):
            dense += w_in * self.top_width + self.top_width
            w_in = self.top_width
        dense += w_in + 1
        return {"embedding": emb, "dense": dense, "total": emb + dense}

    def flops_per_sample(self, n_sparse: int, n_dense: int) -> float:
        """Forward + backward FLOPs per sample of the dense part (3 x forward; 2 FLOPs per multiply-add):
        MLP GEMMs and the pairwise dot interaction. Embedding lookups are memory traffic, not FLOPs."""
        macs = self.params(n_sparse, n_dense)["dense"]
        f = n_sparse + 1
        macs += f * f * self.embedding_dim  # batched Z Z^T
        return 3.0 * 2.0 * macs


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings, fixed across sizes."""

    batch_size: int = 512
    dense_lr: float = 2e-3
    sparse_lr: float = 0.05
    threads: int = 0  # 0: min(2, cpu count)


def _hash_ids(ids: np.ndarray, hash_size: int) -> np.ndarray:
    """Hash raw ids into ``hash_size`` buckets per feature (multiplicative hash with a per-feature salt)."""
    salts = (np.arange(ids.shape[1], dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) + np.uint64(12345)
    h = (ids.astype(np.uint64) + salts[None, :]) * np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(31)
    return (h % np.uint64(hash_size)).astype(np.int64)


def _build(model: ModelConfig, n_sparse: int, n_dense: int, seed: int) -> Any:
    import torch
    from torch import nn

    torch.manual_seed(seed)

    def mlp(w_in: int, width: int, depth: int, w_out: int, last_relu: bool) -> nn.Sequential:
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [nn.Linear(w_in, width), nn.ReLU()]
            w_in = width
        layers.append(nn.Linear(w_in, w_out))
        if last_relu:
            layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    class Dlrm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            d = model.embedding_dim
            # All tables in one sparse embedding (feature f's rows at offset f * hash_size): one lookup and
            # one sparse update per step instead of one per table; numerically the same model.
            self.tables = nn.Embedding(n_sparse * model.hash_size, d, sparse=True)
            nn.init.uniform_(self.tables.weight, -1.0 / math.sqrt(d), 1.0 / math.sqrt(d))
            self.register_buffer("offsets", torch.arange(n_sparse, dtype=torch.int64) * model.hash_size)
            self.bottom = mlp(n_dense, model.bottom_width, model.bottom_depth, d, True)
            f = n_sparse + 1
            self.tri = torch.tril_indices(f, f, offset=-1)
            self.top = mlp(d + f * (f - 1) // 2, model.top_width, model.top_depth, 1, False)

        def forward(self, dense: Any, ids: Any) -> Any:
            x = self.bottom(dense)
            embs = self.tables(ids + self.offsets)
            z = torch.cat([x.unsqueeze(1), embs], dim=1)
            inter = torch.bmm(z, z.transpose(1, 2))[:, self.tri[0], self.tri[1]]
            return self.top(torch.cat([x, inter], dim=1)).squeeze(1)

    return Dlrm()


def train_and_evaluate(
    model: ModelConfig,
    train: Clicks,
    test: Clicks,
    n_sparse: int,
    n_dense: int,
    train_cfg: TrainConfig,
    seed: int,
) -> dict[str, float]:
    """Train one reference DLRM for one pass over ``train`` and measure NE on ``test``.

    Returns:
        ``ne`` (expected NE on the held-out features), ``ne_sampled`` (against sampled clicks),
        ``train_seconds``.
    """
    import torch

    threads = train_cfg.threads or min(2, os.cpu_count() or 1)
    torch.set_num_threads(threads)
    net = _build(model, n_sparse, n_dense, seed)
    dense_params = [p for n, p in net.named_parameters() if not n.startswith("tables")]
    opt_dense = torch.optim.Adam(dense_params, lr=train_cfg.dense_lr)
    table = net.tables.weight
    accum = torch.zeros_like(table)  # Adagrad state; updated only on the rows a batch touches
    loss_fn = torch.nn.BCEWithLogitsLoss()
    x_dense = torch.from_numpy(train.dense)
    x_ids = torch.from_numpy(_hash_ids(train.ids, model.hash_size))
    y = torch.from_numpy(train.y)
    t0 = time.perf_counter()
    net.train()
    bs = train_cfg.batch_size
    for start in range(0, len(y), bs):
        sl = slice(start, start + bs)
        opt_dense.zero_grad(set_to_none=True)
        table.grad = None
        loss = loss_fn(net(x_dense[sl], x_ids[sl]), y[sl])
        loss.backward()
        opt_dense.step()
        with torch.no_grad():  # sparse Adagrad (Duchi et al. 2011) on the touched rows only
            g = table.grad.coalesce()
            rows, vals = g.indices()[0], g.values()
            accum.index_add_(0, rows, vals * vals)
            table.index_add_(0, rows, -train_cfg.sparse_lr * vals / (accum[rows].sqrt() + 1e-10))
    seconds = time.perf_counter() - t0
    net.eval()
    with torch.no_grad():
        t_dense = torch.from_numpy(test.dense)
        t_ids = torch.from_numpy(_hash_ids(test.ids, model.hash_size))
        q = (
            torch.cat(
                [
                    torch.sigmoid(net(t_dense[i : i + 8192], t_ids[i : i + 8192]))
                    for i in range(0, len(test.y), 8192)
                ]
            )
            .double()
            .numpy()
        )
    return {"ne": expected_ne(q, test), "ne_sampled": sampled_ne(q, test), "train_seconds": seconds}


# ---------------------------------------------------------------------------------------------------------
# The study


@dataclass(frozen=True)
class StudyPlan:
    """Which runs to make: data sizes at the base model; per-component model sweeps at ``param_samples``."""

    teacher: TeacherConfig
    base_model: ModelConfig
    train: TrainConfig
    data_sizes: tuple[int, ...]
    param_samples: int
    components: dict[str, tuple[ModelConfig, ...]]
    test_samples: int
    seeds: tuple[int, ...] = (0,)  # training replicates: model initialisation differs, data does not


def study_plan(quick: bool) -> StudyPlan:
    """The quick plan (about 1.5 minutes on a 2-core CPU) or the full plan (about 10-15 minutes there)."""
    teacher = TeacherConfig()
    base = ModelConfig()
    if quick:
        data = tuple(int(2**k) for k in np.arange(12, 18.01, 1.0))  # 4k .. 262k samples
        param_samples = data[-1]
        comps = {
            "embedding_rows": tuple(replace(base, hash_size=1 << k) for k in (6, 8, 10, 12, 14)),
            "embedding_dim": tuple(replace(base, embedding_dim=d) for d in (2, 4, 8, 16, 32)),
            "mlp_width": tuple(replace(base, bottom_width=w, top_width=w) for w in (4, 8, 16, 32, 64)),
            "mlp_depth": tuple(replace(base, bottom_depth=k, top_depth=k) for k in (1, 2, 3)),
        }
        return StudyPlan(teacher, base, TrainConfig(), data, param_samples, comps, test_samples=100_000)
    data = tuple(round(2**k) for k in np.arange(12, 22.51, 0.5))  # 4k .. 5.9M samples
    param_samples = 1 << 19
    comps = {
        "embedding_rows": tuple(replace(base, hash_size=1 << k) for k in (6, 8, 10, 12, 14, 16)),
        "embedding_dim": tuple(replace(base, embedding_dim=d) for d in (2, 4, 8, 16, 32)),
        # Bottom MLP and top MLP (the "over-arch" of Ardalani et al.) are swept separately.
        "bottom_mlp_width": tuple(replace(base, bottom_width=w) for w in (4, 8, 16, 32, 64, 128)),
        "top_mlp_width": tuple(replace(base, top_width=w) for w in (4, 8, 16, 32, 64, 128)),
        "bottom_mlp_depth": tuple(replace(base, bottom_depth=k) for k in (1, 2, 3, 4)),
        "top_mlp_depth": tuple(replace(base, top_depth=k) for k in (1, 2, 3, 4)),
        "model_scale": tuple(
            replace(
                base,
                hash_size=1 << (8 + 2 * i),
                embedding_dim=2 ** (1 + i),
                bottom_width=8 * 2**i,
                top_width=8 * 2**i,
            )
            for i in range(5)
        ),
    }
    return StudyPlan(
        teacher, base, TrainConfig(), data, param_samples, comps, test_samples=200_000, seeds=(0, 1)
    )


@dataclass
class StudyResult:
    """Observations (one dict per run), the Bayes NE, and fitted laws per series."""

    rows: list[dict[str, Any]]
    bayes_ne: float
    fits: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0


CSV_COLUMNS = (
    "run",
    "component",
    "samples",
    "params",
    "flops",
    "ne",
    "ne_sampled",
    "bayes_ne",
    "embedding_params",
    "dense_params",
    "hash_size",
    "embedding_dim",
    "bottom_width",
    "bottom_depth",
    "top_width",
    "top_depth",
    "seed",
    "train_seconds",
)


def observations_csv(rows: list[dict[str, Any]]) -> str:
    """The observations as CSV text (columns :data:`CSV_COLUMNS`; floats with 10 significant digits)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow([f"{r[c]:.10g}" if isinstance(r[c], float) else r[c] for c in CSV_COLUMNS])
    return buf.getvalue()


def run_study(
    quick: bool = True,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
    plan: StudyPlan | None = None,
    n_bootstrap: int = 1000,
    on_rows: Callable[[list[dict[str, Any]]], None] | None = None,
) -> StudyResult:
    """Run the study: generate data, train every planned model, measure NE, fit the laws.

    Args:
        quick: the quick plan (minutes) instead of the full one.
        seed: seeds the teacher, the data and the model initialisations.
        progress: called as ``progress(description, done, total)`` after each run.
        plan: override the plan (tests use a tiny one).
        n_bootstrap: bootstrap resamples for the fits.
        on_rows: called with the observations so far after each run (the CLI writes them atomically, so an
            interrupted study keeps its finished runs).
    """
    p = plan or study_plan(quick)
    t_start = time.perf_counter()
    teacher = make_teacher(p.teacher, seed)
    n_max = max(max(p.data_sizes), p.param_samples)
    train_all = sample_clicks(teacher, n_max, seed * 1000 + 11)
    test = sample_clicks(teacher, p.test_samples, seed * 1000 + 12)
    bayes = bayes_ne(test)
    runs: list[tuple[str, ModelConfig, int, int]] = []
    for s in p.seeds:
        runs += [("data", p.base_model, n, s) for n in p.data_sizes]
        for comp, models in p.components.items():
            runs += [(comp, m, p.param_samples, s) for m in models]
    rows: list[dict[str, Any]] = []
    c = p.teacher
    cache: dict[tuple, dict[str, float]] = {}
    for i, (comp, model, n, s) in enumerate(runs):
        key = (model, n, s)
        if key not in cache:  # the base model at param_samples appears in several series: train it once
            cache[key] = train_and_evaluate(
                model, train_all.head(n), test, c.n_sparse, c.n_dense, p.train, seed * 1000 + s
            )
        res = cache[key]
        pc = model.params(c.n_sparse, c.n_dense)
        fps = model.flops_per_sample(c.n_sparse, c.n_dense)
        rows.append(
            {
                "run": f"{comp}-{i:03d}",
                "component": comp,
                "samples": n,
                "params": pc["total"],
                "flops": fps * n,
                "ne": res["ne"],
                "ne_sampled": res["ne_sampled"],
                "bayes_ne": bayes,
                "embedding_params": pc["embedding"],
                "dense_params": pc["dense"],
                **asdict(model),
                "seed": s,
                "train_seconds": res["train_seconds"],
            }
        )
        if progress is not None:
            progress(f"{comp} n={n} params={pc['total']} NE={res['ne']:.4f}", i + 1, len(runs))
        if on_rows is not None:
            on_rows(rows)
    result = StudyResult(rows, bayes, seconds=time.perf_counter() - t_start)
    result.fits = fit_study(rows, n_bootstrap=n_bootstrap, seed=seed)
    return result


#: The scale each series is fitted against: MLP sweeps change dense parameters, which total parameters
#: (dominated by embedding rows) barely register.
_SERIES_AXIS = {
    "data": "samples",
    **{
        c: "dense_params"
        for c in ("mlp_width", "mlp_depth", "bottom_mlp_width", "top_mlp_width", "bottom_mlp_depth",
                  "top_mlp_depth")
    },
}


def _gain_10x(law: Any, x_max: float) -> dict[str, float | None]:
    """NE gained by 10x more of the series' scale beyond the largest run: NE(x_max) - NE(10 x_max), with
    80% bootstrap bounds; the decision-relevant size of "keeps paying" versus "saturated". Without a
    bootstrap (or with no finite resample) the bounds are None: unknown, not the point value."""
    point = float(law.predict(x_max) - law.predict(10 * x_max))
    if not law.has_interval:
        return {"ne_gain": point, "lo80": None, "hi80": None}
    xs = np.array([[x_max, 10 * x_max]])
    from planner.quality import evaluate_form

    sims = evaluate_form(law.form, law.bootstrap_params, xs)
    gains = sims[:, 0] - sims[:, 1]
    gains = gains[np.isfinite(gains)]
    if not gains.size:
        return {"ne_gain": point, "lo80": None, "hi80": None}
    lo, hi = np.quantile(gains, [0.1, 0.9])
    return {"ne_gain": point, "lo80": float(lo), "hi80": float(hi)}


def fit_study(
    rows: list[dict[str, Any]], n_bootstrap: int = 1000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Fit NE = alpha x^(-beta) + gamma per series: ``data`` over samples, MLP sweeps over dense parameters,
    the other model sweeps over total parameters.

    A series whose fit does not converge (saturated parameter scaling often puts gamma or beta at a bound)
    is reported with ``converged: false`` and its reason, plus the pure power law's exponent as a fallback.
    """
    from calibration.scaling_fit import fit_arrays
    from planner.errors import InfeasibleError, InputError

    out: dict[str, dict[str, Any]] = {}
    comps = sorted({r["component"] for r in rows}, key=lambda c: (c != "data", c))
    for comp in comps:
        sel = [r for r in rows if r["component"] == comp]
        column = _SERIES_AXIS.get(comp, "params")
        axis = "samples" if column == "samples" else "params"
        xs = np.array([float(r[column]) for r in sel])
        ne = np.array([float(r["ne"]) for r in sel])
        entry: dict[str, Any] = {
            "x": column,
            "points": len(sel),
            "ne_first": float(ne[np.argmin(xs)]),
            "ne_last": float(ne[np.argmax(xs)]),
            "x_decades": float(np.log10(xs.max() / xs.min())),
        }
        distinct = len(np.unique(xs))
        # Extrapolation check on real runs: hold out the two largest scales (all their replicates).
        holdout = 2 * round(len(sel) / distinct) if distinct >= 7 else 0
        for form in ("power_plus_const", "power_law"):
            try:
                fit = fit_arrays(
                    xs,
                    ne,
                    form=form,
                    axis=axis,
                    run=[r["run"] for r in sel],
                    n_bootstrap=n_bootstrap if form == "power_plus_const" else 0,
                    seed=seed,
                    compare=False,
                    refuse_unconverged=False,
                    holdout_largest=holdout,
                )
            except (InputError, InfeasibleError) as exc:
                entry[form] = {"converged": False, "message": str(exc)}
                continue
            entry[form] = {
                "params": fit.params,
                "ci": fit.ci,
                "converged": fit.converged,
                "message": fit.message,
                "rms_log_residual": fit.rms_log_residual,
                "warnings": fit.warnings,
                "holdout": fit.holdout,
            }
            if form == "power_plus_const":
                # A refused fit's parameters sit at a bound: its "gain" would be an artefact, not a finding.
                entry[form]["gain_10x"] = _gain_10x(fit.to_law(), float(xs.max())) if fit.converged else None
                if fit.converged:
                    entry[form]["warnings"] += _floor_warnings(fit, sel)
                    drift = rolling_origin(xs, ne, axis)
                    if drift is not None:
                        entry[form]["rolling_origin"] = drift
                        if drift["curvature"]:
                            entry[form]["warnings"].append(drift["message"])
        out[comp] = entry
    return out


def _floor_warnings(fit: Any, rows: list[dict[str, Any]]) -> list[str]:
    """The study knows the Bayes-optimal NE: a fitted floor below it is not a floor the data identified."""
    bayes = [float(r["bayes_ne"]) for r in rows if "bayes_ne" in r]
    if not bayes:
        return []
    b = min(bayes)
    g, lo = fit.params["gamma"], fit.ci["gamma"]["lo80"]
    if g < b:
        return [f"gamma {g:.4f} is below the teacher's Bayes-optimal NE {b:.4f}: the floor is not identified"]
    if math.isfinite(lo) and lo < b:
        return [f"the 80% interval of gamma reaches {lo:.4f}, below the Bayes-optimal NE {b:.4f}"]
    return []


def rolling_origin(xs: np.ndarray, ne: np.ndarray, axis: str, drops: int = 3) -> dict[str, Any] | None:
    """Refit power plus constant with the smallest (then the largest) 0..``drops`` distinct scales left out.

    A beta that moves monotonically as either end is cut, by more than 30% overall, means the curve bends
    within the data (Hoffmann et al. 2022 App. E): the fitted exponent depends on the range, and
    extrapolations inherit that. Needs >= ``drops`` + 5 distinct scales (None otherwise).

    Returns:
        ``drop_smallest`` and ``drop_largest``: lists of ``{"x_min"|"x_max", "beta", "gamma"}`` (None where a
        refit did not converge); ``curvature`` (bool) and a one-line ``message``.
    """
    from calibration.scaling_fit import fit_arrays
    from planner.errors import InfeasibleError, InputError

    scales = np.unique(xs)
    if len(scales) < drops + 5:
        return None

    def beta_gamma(mask: np.ndarray) -> tuple[float, float] | None:
        try:
            f = fit_arrays(xs[mask], ne[mask], axis=axis, n_bootstrap=0, compare=False)
        except (InputError, InfeasibleError):
            return None
        return f.params["beta"], f.params["gamma"]

    low, high = [], []
    for k in range(drops + 1):
        lo_x, hi_x = scales[k], scales[len(scales) - 1 - k]
        bl = beta_gamma(xs >= lo_x)
        bh = bl if k == 0 else beta_gamma(xs <= hi_x)  # nothing is left out at k = 0: the same fit
        low.append({"x_min": float(lo_x), "beta": None if bl is None else bl[0],
                    "gamma": None if bl is None else bl[1]})
        high.append({"x_max": float(hi_x), "beta": None if bh is None else bh[0],
                     "gamma": None if bh is None else bh[1]})

    def drifts(seq: list[dict[str, Any]]) -> bool:
        b = [e["beta"] for e in seq]
        if any(v is None for v in b):
            return False
        d = np.diff(b)
        tol = 1e-6 * max(abs(v) for v in b)  # Huber fits can ignore a pair of replicates exactly
        monotone = bool(np.all(d >= -tol) or np.all(d <= tol))
        return monotone and abs(b[-1] - b[0]) > 0.3 * min(abs(b[0]), abs(b[-1]))

    curved = drifts(low) or drifts(high)

    def fmt(seq: list[dict[str, Any]]) -> str:
        return " -> ".join("n/a" if e["beta"] is None else f"{e['beta']:.3g}" for e in seq)

    msg = (f"beta drifts with the fitted range (dropping the smallest scales: {fmt(low)}; the largest: "
           f"{fmt(high)}): the curve bends within the data, so the exponent depends on the range")
    return {"drop_smallest": low, "drop_largest": high, "curvature": curved, "message": msg}
