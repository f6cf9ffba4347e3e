"""Golden tile jobs for core-level regressions, from plain integer arithmetic and the model.

A *job* is one command to a core with its weight and activation beats, the rows it must
output (computed here with plain int64 ``x @ w``, never from the RTL or the model's chain)
and the cycle count the cycle model predicts. Sequences of jobs run a layer's steps: ACT at
the first step, then DIFF (or a step from scratch in SPATIAL mode), cut into output-channel
blocks of ``pes`` and reduction chunks of ``weight_depth``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from ditto.config import DittoConfig
from ditto.enums import Mode
from ditto.sim.cycles import dense_tile_counters, ditto_tile_counters
from ditto.sim.encoding import classifies, lane_costs
from ditto.sim.spatial import spatial_values

__all__ = ["TileJob", "activation_rows", "beat_width", "case_operands", "dense_jobs", "ditto_jobs",
           "fixture_jobs", "previous_rows"]


@dataclass
class TileJob:
    """One tile command and what must come out of it."""

    mode: Mode
    x_cur: np.ndarray            # int8 [rows, k]
    x_prev: np.ndarray           # int8 [rows, k]: the previous step (DIFF) or row (SPATIAL)
    weights: np.ndarray | None   # int8 [k, pes], or None to reuse the loaded ones
    accumulate: bool
    bias: np.ndarray             # int64 [pes]
    row_base: int
    expected: np.ndarray | None  # int64 [rows, pes]: the output rows; None: not checked
    cycles: int                  # cycle model's prediction
    # The model's other counters (``ditto.sim.cycles.ditto_tile_counters``); empty: unchecked.
    counters: dict = field(default_factory=dict)
    label: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return self.x_cur.shape[0]

    @property
    def k(self) -> int:
        return self.x_cur.shape[1]

    def command(self) -> dict:
        return {"mode": self.mode, "rows": self.rows, "row_base": self.row_base, "k": self.k,
                "load_weights": int(self.weights is not None),
                "accumulate": int(self.accumulate), "bias": [int(b) for b in self.bias]}


def beat_width(config: DittoConfig, core: str) -> int:
    """Activation elements per beat of ``core`` (``"ditto_core"`` or ``"dense_core"``)."""
    return config.dense_macs if core == "dense_core" else config.scan_width


def activation_rows(x_cur: np.ndarray, x_prev: np.ndarray, width: int,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A job's ``x_cur`` and ``x_prev`` ``[rows, k]`` as activation beats
    ``[beats, width]``, row after row; the padding of a row's last beat is garbage from
    ``rng`` that the core must ignore."""
    rows, k = x_cur.shape
    per_row = -(-k // width)
    garbage = rng.integers(-128, 128, (2, rows, per_row * width - k))
    cur = np.concatenate([x_cur, garbage[0]], axis=1).reshape(rows * per_row, width)
    prev = np.concatenate([x_prev, garbage[1]], axis=1).reshape(rows * per_row, width)
    return cur, prev


def previous_rows(x: np.ndarray) -> np.ndarray:
    """The ``x_prev`` of a SPATIAL tile ``x`` (int8 ``[rows, k]``): each row's previous row,
    zeros for the first."""
    return np.concatenate([np.zeros_like(x[:1]), x[:-1]])


def _i64(a):
    return np.asarray(a, dtype=np.int64)


def _blocks(n: int, size: int):
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def _block_bias(bias: np.ndarray | None, c0: int, c1: int, config: DittoConfig) -> np.ndarray:
    """The bias of output columns ``c0:c1``, padded to ``pes`` (zero without a bias)."""
    block = np.zeros(config.pes, np.int64)
    if bias is not None:
        block[:c1 - c0] = bias[c0:c1]
    return block


def _pad_cols(w: np.ndarray, pes: int) -> np.ndarray:
    return np.pad(w, ((0, 0), (0, pes - w.shape[1])))


def ditto_jobs(xs: list[np.ndarray], ws: list[np.ndarray], config: DittoConfig, *,
               weights_change: bool, modes: list[Mode] | None = None, label: str = "",
               first_step: int = 0, bias: np.ndarray | None = None) -> list[TileJob]:
    """DittoCore jobs for a layer's steps: ``xs[t]`` int8 ``[rows, k]``, ``ws[t]`` int8
    ``[k, n]``, ``rows <= max_rows``. ``modes[t]`` is step ``t``'s mode (default: ACT, then
    DIFF). ACT and SPATIAL steps start from scratch and store ``bias + X_t W_t``; in SPATIAL
    mode each row's ``x_prev`` is the row before it (``previous_rows``) and the PEs chain
    the rows. A DIFF step (never the first) accumulates ``dX_t W`` onto the stored rows.

    With changing weights a DIFF step is two products (``layers.step_products``): the main
    one, ``dX_t @ W_{t-1}``, accumulates onto the stored rows, which therefore hold
    ``X_s W_s + sum_i dX_i W_{i-1}`` since the last step ``s`` from scratch; the other,
    ``(dW_t^T @ X_t^T)^T``, runs standalone in the rows after them and the host adds it
    (its running sum restarts at a step from scratch). ``extra`` tags each job with
    ``step``, ``cols`` and ``part`` (``main`` or ``transposed``, with ``rows`` for the
    latter) so that a test can rebuild ``Y_t`` and check it against plain ``X_t @ W_t``.
    Steps (labels and ``step``) are numbered from ``first_step``. ``bias`` (int ``[n]``,
    default zero) is stored with each step from scratch, so every step's expected rows
    include it.
    """
    rows, k = xs[0].shape
    n = ws[0].shape[1]
    modes = [Mode.ACT] + [Mode.DIFF] * (len(xs) - 1) if modes is None else list(modes)
    if len(modes) != len(xs) or modes[0] is Mode.DIFF:
        raise ValueError(f"{label}: modes {[m.name for m in modes]} for {len(xs)} steps: "
                         "one per step, and the first step cannot be DIFF")
    jobs: list[TileJob] = []
    chunks = _blocks(k, config.weight_depth)

    def prediction(t: int, k0: int, k1: int) -> dict:
        x = xs[t][:, k0:k1]
        if modes[t] is Mode.SPATIAL:
            values = spatial_values(x[None], config.max_rows)[0]
        elif modes[t] is Mode.DIFF:
            values = np.subtract(x, xs[t - 1][:, k0:k1], dtype=np.int16)
        else:
            values = x.astype(np.int16)
        return _ditto_prediction(lane_costs(values, config,
                                            classify=classifies(modes[t], config)), config)

    # The encoded side is the same for every block of output channels: predict it once.
    predictions = {(t, k0): prediction(t, k0, k1) for t in range(len(xs)) for k0, k1 in chunks}
    for c0, c1 in _blocks(n, config.pes):
        block_bias = _block_bias(bias, c0, c1, config)
        stored = None
        for t, mode in enumerate(modes):
            diff = mode is Mode.DIFF
            w_used = _pad_cols(ws[t - 1 if (diff and weights_change) else t][:, c0:c1],
                               config.pes)
            if diff:
                prev = xs[t - 1]
                stored = stored + (_i64(xs[t]) - _i64(prev)) @ _i64(w_used)
            else:
                prev = previous_rows(xs[t]) if mode is Mode.SPATIAL else xs[t]
                stored = _i64(xs[t]) @ _i64(w_used) + block_bias
            for index, (k0, k1) in enumerate(chunks):
                last_chunk = index == len(chunks) - 1
                jobs.append(TileJob(
                    mode, xs[t][:, k0:k1], prev[:, k0:k1], w_used[k0:k1],
                    accumulate=(diff or index > 0), bias=block_bias,
                    row_base=0,
                    expected=stored.copy() if last_chunk else None,
                    label=f"{label} cols {c0}:{c1} step {first_step + t}",
                    **copy.deepcopy(predictions[(t, k0)]),
                    extra={"step": first_step + t, "cols": (c0, c1), "part": "main"}))
            if diff and weights_change:
                jobs += _transposed_jobs(xs[t], ws[t][:, c0:c1], ws[t - 1][:, c0:c1],
                                         config, rows,
                                         label=f"{label} cols {c0}:{c1} step {first_step + t}",
                                         extra={"step": first_step + t, "cols": (c0, c1)})
    return jobs


def _transposed_jobs(x_t, w_t, w_prev, config, row_base, *, label, extra):
    """``dW^T @ X_t^T``: its rows are the block's output columns, its reduction the head
    dimension, its "weights" ``X_t^T`` (cut into blocks of ``pes`` rows of ``X``). Stored from
    row ``row_base`` on, so the main product's rows survive."""
    jobs = []
    n, (rows, k) = w_t.shape[1], x_t.shape
    if n + row_base > config.max_rows:
        raise ValueError(f"{label}: {n} transposed rows after {row_base} do not fit "
                         f"max_rows={config.max_rows}")
    cur, prev = np.ascontiguousarray(w_t.T), np.ascontiguousarray(w_prev.T)
    for r0, r1 in _blocks(rows, config.pes):
        weights = _pad_cols(np.ascontiguousarray(x_t.T[:, r0:r1]), config.pes)
        for k0, k1 in _blocks(k, config.weight_depth):
            costs = lane_costs(cur[:, k0:k1].astype(np.int16) - prev[:, k0:k1], config)
            expected = (_i64(cur) - _i64(prev)) @ _i64(weights) if k1 == k else None
            jobs.append(TileJob(Mode.DIFF, cur[:, k0:k1], prev[:, k0:k1], weights[k0:k1],
                                accumulate=k0 > 0, bias=np.zeros(config.pes, np.int64),
                                row_base=row_base, expected=expected,
                                label=f"{label} transposed rows {r0}:{r1}",
                                **_ditto_prediction(costs, config),
                                extra={**extra, "part": "transposed", "rows": (r0, r1)}))
    return jobs


def _prediction(counters: dict) -> dict:
    """``TileJob`` fields from the model's counters."""
    return {"cycles": counters["cycles"],
            "counters": {name: value for name, value in counters.items() if name != "cycles"}}


def _ditto_prediction(costs, config: DittoConfig) -> dict:
    return _prediction(ditto_tile_counters(costs, config))


def dense_jobs(xs: list[np.ndarray], ws: list[np.ndarray], config: DittoConfig, *,
               mode: Mode = Mode.ACT, label: str = "", first_step: int = 0,
               bias: np.ndarray | None = None) -> list[TileJob]:
    """DenseCore jobs: every step from scratch, ``X_t @ W_t``, on the plain rows, in
    commands of ``mode`` (DenseCore runs every mode as ACT); labels number the steps from
    ``first_step``; ``extra`` and ``bias`` as in :func:`ditto_jobs`."""
    rows, k = xs[0].shape
    n = ws[0].shape[1]
    jobs = []
    chunks = _blocks(k, config.weight_depth)
    for c0, c1 in _blocks(n, config.pes):
        block_bias = _block_bias(bias, c0, c1, config)
        for t in range(len(xs)):
            w = _pad_cols(ws[t][:, c0:c1], config.pes)
            for index, (k0, k1) in enumerate(chunks):
                last = index == len(chunks) - 1
                expected = _i64(xs[t]) @ _i64(w) + block_bias if last else None
                jobs.append(TileJob(mode, xs[t][:, k0:k1], xs[t][:, k0:k1], w[k0:k1],
                                    accumulate=index > 0, bias=block_bias, row_base=0,
                                    expected=expected,
                                    label=f"{label} cols {c0}:{c1} step {first_step + t}",
                                    **_prediction(dense_tile_counters(rows, k1 - k0,
                                                                      config)),
                                    extra={"step": first_step + t, "cols": (c0, c1),
                                           "part": "main"}))
    return jobs


def fixture_jobs(case: dict, config: DittoConfig, core: str, *, max_rows: int | None = None,
                 max_cols: int | None = None, spatial: bool = False) -> list[TileJob]:
    """Jobs of one real-trace fixture case (``sim.fixtures.load_fixture``) for ``core``
    (``"ditto"`` or ``"dense"``), trimmed to what ``config`` holds: rows to ``max_rows``
    (half of the buffer for attention, whose transposed product needs the other half) and
    output columns to ``max_cols``. The trimmed operands are in ``case_operands``. The
    steps run ACT, then DIFF (DenseCore: ACT); with ``spatial`` the last step runs once
    more, from scratch, in SPATIAL commands, after the DIFF steps."""
    if core not in ("ditto", "dense"):
        raise ValueError(f"core {core!r}: choose 'ditto' or 'dense'")
    xs, ws = case_operands(case, config, max_rows=max_rows, max_cols=max_cols)
    both = case["kind"] == "both_change"
    last = {"label": f"{case['name']} spatial", "first_step": len(xs) - 1}
    if core == "dense":
        return dense_jobs(xs, ws, config, label=case["name"]) + (
            dense_jobs(xs[-1:], ws[-1:], config, mode=Mode.SPATIAL, **last) if spatial else [])
    return ditto_jobs(xs, ws, config, weights_change=both, label=case["name"]) + (
        ditto_jobs(xs[-1:], ws[-1:], config, weights_change=both, modes=[Mode.SPATIAL],
                   **last) if spatial else [])


def case_operands(case: dict, config: DittoConfig, *, max_rows: int | None = None,
                  max_cols: int | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The fixture case's ``xs`` and ``ws`` as ``fixture_jobs`` trims them."""
    both = case["kind"] == "both_change"
    limit = max_rows or (config.max_rows // 2 if both else config.max_rows)
    cols = case["w"].shape[2]
    if both:
        cols = min(cols, config.max_rows - limit)
    if max_cols:
        cols = min(cols, max_cols)
    return [x[:limit] for x in case["x"]], [w[:, :cols] for w in case["w"]]
