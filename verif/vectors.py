"""Golden vectors for the datapath benches, from the reference model (``ditto.sim``) and plain
Python integer arithmetic, never from the RTL. Every generator takes a fixed seed.

Each function returns :class:`~ditto.verif.runner.BenchCase` objects whose field keys are
those of the components' payload layouts (see :mod:`ditto.verif.payload`).
"""

from __future__ import annotations

import numpy as np

from ditto.config import DittoConfig
from ditto.enums import DiffClass, Mode
from ditto.sim.dispatch import tile_groups
from ditto.sim.encoding import Encoded, classifies, encode, encode_values, lane_costs
from ditto.sim.layers import DiffLayerExecutor, HwProduct, LayerKind, LayerSpec, lane_matmul

from .runner import BenchCase

__all__ = ["REGISTER_STAGES", "accumulator_layer_steps", "accumulator_random_sequence",
           "documented_latency", "encoder_case", "encoder_cases", "lane_groups_of_row",
           "pe_acc_extremes", "pe_corners", "pe_encoded_rows", "pe_random_groups",
           "pe_rows_case"]

_ZERO = DiffClass.ZERO.value


# ---- encoding unit ---------------------------------------------------------------------

def encoder_case(name: str, x_cur: np.ndarray, x_prev: np.ndarray, valid: np.ndarray,
                 last: np.ndarray, mode: Mode, config: DittoConfig, **knobs) -> BenchCase:
    """Beats ``[N, scan_width]`` and their expected encoding by :func:`ditto.sim.encoding.
    encode`; elements with ``valid`` False are padding (ZERO, zero operands)."""
    e = config.scan_width
    if e > 63:
        raise ValueError(f"scan_width={e}: the valid mask is stored as int64")
    x_cur, x_prev = np.asarray(x_cur, np.int8), np.asarray(x_prev, np.int8)
    valid = np.asarray(valid, bool)
    beats = x_cur.shape[0]
    if x_cur.shape != (beats, e) or x_prev.shape != x_cur.shape or valid.shape != x_cur.shape:
        raise ValueError(f"beats must be [N, {e}]: x_cur {x_cur.shape}, x_prev "
                         f"{x_prev.shape}, valid {valid.shape}")
    enc = encode(x_cur, x_prev, mode, config)
    cls = np.where(valid, enc.classes, _ZERO).astype(np.int64)
    high = np.where(valid, enc.high, 0).astype(np.int64)
    low = np.where(valid, enc.low, 0).astype(np.int64)
    mask = (valid.astype(np.int64) << np.arange(e, dtype=np.int64)).sum(axis=1)
    last = np.asarray(last, np.int64)
    costs = np.where(valid, lane_costs(enc.values, config, classify=classifies(mode, config)),
                     0)
    return BenchCase(
        name=name,
        inputs={"x_cur": x_cur.astype(np.int64), "x_prev": x_prev.astype(np.int64),
                "valid": mask, "last": last},
        outputs={"cls": cls, "high": high, "low": low, **block_cost_sums(costs, config),
                 "last": last},
        source=np.arange(beats), static={"mode": mode.value}, **knobs)


def block_cost_sums(costs: np.ndarray, config: DittoConfig) -> dict[str, np.ndarray]:
    """The encoder's sums of the lane costs of beats ``[N, scan_width]`` over
    ``config.cost_blocks``, as plain NumPy sums: ``within`` (per element, the costs of the
    elements before it in its block), ``block_costs`` (per block) and ``block_pair_costs``
    (per pair of blocks; a missing last block costs 0)."""
    costs = np.asarray(costs, np.int64)
    within = np.zeros_like(costs)
    totals = []
    for block in config.cost_blocks:
        part = costs[:, block.start:block.stop]
        within[:, block.start:block.stop] = np.cumsum(part, axis=1) - part
        totals.append(part.sum(axis=1))
    totals = np.stack(totals, axis=1)
    pairs = np.pad(totals, ((0, 0), (0, totals.shape[1] % 2)))
    return {"within": within, "block_costs": totals,
            "block_pair_costs": pairs.reshape(len(costs), -1, 2).sum(axis=2)}


def _as_beats(values: np.ndarray, e: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat values -> ``[N, e]`` beats (last beat padded) and the valid mask."""
    n = len(values)
    beats = -(-n // e)
    padded = np.zeros(beats * e, dtype=values.dtype)
    padded[:n] = values
    valid = np.zeros(beats * e, dtype=bool)
    valid[:n] = True
    return padded.reshape(beats, e), valid.reshape(beats, e)


def _rows_last(beats: int, beats_per_row: int) -> np.ndarray:
    last = (np.arange(beats) % beats_per_row) == beats_per_row - 1
    last[-1] = True
    return last


def encoder_cases(config: DittoConfig, *, seed: int = 1) -> list[BenchCase]:
    """Every int8 pair in DIFF mode, every int8 value in ACT mode, random padding masks in
    both modes (random backpressure), a latency/throughput case, and SPATIAL beats, each
    row's elements after the same elements of the row before."""
    rng = np.random.default_rng(seed)
    e = config.scan_width
    grid = np.arange(-128, 128, dtype=np.int8)
    x_cur, x_prev = (a.ravel() for a in np.meshgrid(grid, grid, indexing="ij"))
    cur, valid = _as_beats(x_cur, e)
    prev, _ = _as_beats(x_prev, e)
    cases = [encoder_case("diff_every_int8_pair", cur, prev, valid,
                          _rows_last(len(cur), 3), Mode.DIFF, config, seed=seed)]

    values = rng.permutation(grid)
    cur, valid = _as_beats(values, e)
    prev = rng.integers(-128, 128, size=cur.shape, dtype=np.int8)  # ignored in ACT mode
    cases.append(encoder_case("act_every_int8_value", cur, prev, valid,
                              _rows_last(len(cur), 2), Mode.ACT, config, seed=seed + 1))

    for mode in (Mode.DIFF, Mode.ACT):
        beats = 160
        prev = rng.integers(-128, 128, size=(beats, e), dtype=np.int8)
        # Mostly small differences, so that all three classes occur.
        step = rng.choice([0, 0, 1, -1, 7, -9, 16, -17, 100], size=(beats, e))
        cur = np.clip(prev.astype(np.int16) + step, -128, 127).astype(np.int8)
        valid = rng.random((beats, e)) < rng.random((beats, 1))
        valid[::7] = np.arange(e) < rng.integers(0, e + 1, size=(len(valid[::7]), 1))
        valid[5] = False
        valid[6] = True
        cases.append(encoder_case(f"{mode.name.lower()}_padding_elements_are_zero", cur, prev,
                                  valid, rng.random(beats) < 0.3, mode, config,
                                  seed=seed + 2 + mode.value))

    beats = 48
    cur = rng.integers(-128, 128, size=(beats, e), dtype=np.int8)
    prev = rng.integers(-128, 128, size=(beats, e), dtype=np.int8)
    cases.append(encoder_case("latency_and_full_throughput", cur, prev,
                              np.ones((beats, e), bool), rng.random(beats) < 0.5, Mode.DIFF,
                              config, backpressure=0.0, idle=0.0,
                              latency=documented_latency("encoding_unit"), full_throughput=True,
                              seed=seed + 4))

    # A random walk over rows of one beat, so that all three classes occur; ``x_prev`` is
    # the row before (zero before the first), as DittoCore's feeder sends it.
    beats = 160
    step = rng.choice([0, 0, 1, -1, 7, -9, 16, -17, 100, -100], size=(beats, e))
    cur = np.zeros((beats, e), np.int8)
    for row in range(beats):
        cur[row] = np.clip((cur[row - 1] if row else 0) + step[row], -128, 127)
    prev = np.concatenate([np.zeros((1, e), np.int8), cur[:-1]])
    valid = rng.random((beats, e)) < 0.9
    cases.append(encoder_case("spatial_rows_minus_the_row_before", cur, prev, valid,
                              np.ones(beats, bool), Mode.SPATIAL, config, seed=seed + 5))
    return cases


#: The register stages between a beat's input transfer and its output beat, per
#: fixed-latency block, as each block's contract (its docstring) lists them. The benches'
#: expected latencies are counted from these lists, not read from the blocks' ``LATENCY``
#: or ``ditto.pipeline`` (the constants the RTL and the cycle model use): a block whose
#: registers changed together with its constant then fails its bench until the contract
#: here is changed too. ``tests/hdl/test_generate.py`` measures every block against them.
REGISTER_STAGES: dict[str, tuple[str, ...]] = {
    # EncodingUnit: "Two registers: the classified beat with the costs of its pairs of
    # elements, then the output register with the sums over blocks".
    "encoding_unit": ("classified beat, pair costs", "output: sums over blocks"),
    # ComputeUnit: "four stages of one register each".
    "compute_unit": ("group", "lane products", "group sum", "output: partial sum"),
    # AccumulationBuffer: "enters stage 1 at the end of t; the read row is registered
    # beside it at the end of t + 1 (stage 2) ...; (row, y) is valid on o in t + 3".
    "accumulation_buffer": ("stage 1: read", "stage 2: read row", "output: row, y"),
    # ZeroSkipDispatcher: the beat and its prefix sums, the packer's register, then the
    # FIFO, from which a group pushed in cycle t leaves from t + 1.
    "dispatcher": ("beat, prefix sums", "packer", "FIFO"),
    # DefoUnit: "valid the cycle after the query's transfer".
    "defo_unit": ("answer: the memories' read",),
}


def documented_latency(component: str) -> int:
    """Cycles from an input transfer to the output beat being valid, counted from
    :data:`REGISTER_STAGES`."""
    return len(REGISTER_STAGES[component])


# ---- compute unit -----------------------------------------------------------------------

Lane = tuple[int, int, int]  # (operand, shift, weight)


def _group_sum(group: list[Lane], config: DittoConfig) -> int:
    # Only even lanes have a shifter: the shift bit of an odd lane is ignored.
    return sum((op * w) << (config.split_shift if shift and j % 2 == 0 else 0)
               for j, (op, shift, w) in enumerate(group))


def pe_rows_case(name: str, rows: list[list[list[Lane]]], config: DittoConfig,
                 expected: list[int] | None = None, **knobs) -> BenchCase:
    """Lane groups of ``rows`` (each row a list of groups of ``lanes`` lanes) and the row
    sums (``expected``, or plain Python arithmetic when None)."""
    lanes = config.lanes
    operand, shift, weight, first, last = [], [], [], [], []
    source, source_first = [], []
    sums = []
    for r, row in enumerate(rows):
        if not row:
            raise ValueError(f"row {r} has no lane group (an empty row is one idle group)")
        source_first.append(len(first))
        for g, group in enumerate(row):
            if len(group) != lanes:
                raise ValueError(f"row {r} group {g} has {len(group)} lanes, not {lanes}")
            operand.append([lane[0] for lane in group])
            shift.append([lane[1] for lane in group])
            weight.append([lane[2] for lane in group])
            first.append(int(g == 0))
            last.append(int(g == len(row) - 1))
        source.append(len(first) - 1)
        sums.append(sum(_group_sum(group, config) for group in row))
    if expected is not None:
        if list(expected) != sums:
            raise AssertionError(f"{name}: model sums differ from the lane arithmetic")
        sums = list(expected)
    lo, hi = config.acc_range
    if min(sums) < lo or max(sums) > hi:
        raise ValueError(f"{name}: a row sum leaves the {config.acc_bits}-bit accumulator")
    as_array = np.asarray
    return BenchCase(
        name=name,
        inputs={"lanes.operand": as_array(operand, np.int64),
                "lanes.shift": as_array(shift, np.int64),
                "lanes.weight": as_array(weight, np.int64),
                "first": as_array(first, np.int64), "last": as_array(last, np.int64)},
        outputs={"sum": as_array(sums, np.int64)},
        source=as_array(source), source_first=as_array(source_first), **knobs)


def pe_random_groups(config: DittoConfig, *, rows: int = 300, seed: int = 11,
                     **knobs) -> BenchCase:
    """Arbitrary lane groups: any operand in the lane range, shift on any even lane."""
    rng = np.random.default_rng(seed)
    lo, hi = config.lane_range
    out = []
    for _ in range(rows):
        row = []
        for _ in range(int(rng.integers(1, 7))):
            row.append([(int(rng.integers(lo, hi + 1)),
                         int(j % 2 == 0 and rng.random() < 0.5),
                         int(rng.integers(-128, 128))) for j in range(config.lanes)])
        out.append(row)
    return pe_rows_case("random_lane_groups", out, config, seed=seed, **knobs)


def lane_groups_of_row(encoded: Encoded, weights: np.ndarray,
                       config: DittoConfig) -> list[list[Lane]]:
    """The lane groups the dispatcher makes of one encoded row (1-D arrays), from the
    model's reference packer (``ditto.sim.dispatch.tile_groups``), each lane as
    ``(operand, shift, weight)`` with the weight of the lane's element (an idle lane,
    operand 0, gets row 0's weight, as in the cores)."""
    row = Encoded(*(np.asarray(a)[None] for a in (encoded.values, encoded.classes,
                                                 encoded.high, encoded.low)))
    return [[(op.operand, op.shift, int(weights[op.k]))
             for op in group.lanes]
            for group in tile_groups(row, config)]


def pe_encoded_rows(config: DittoConfig, *, rows: int = 120, k: int = 40, seed: int = 12,
                    **knobs) -> BenchCase:
    """Rows of real DIFF-mode differences (mostly small, some zero, some FULL) encoded by
    the model and packed into lane groups; expected sums from ``ditto.sim.layers.
    lane_matmul``."""
    rng = np.random.default_rng(seed)
    x_prev = rng.integers(-128, 128, size=(rows, k), dtype=np.int8)
    step = rng.choice([0, 0, 0, 1, -2, 5, -16, 15, 16, -17, 200, -255], size=(rows, k))
    x_cur = np.clip(x_prev.astype(np.int16) + step, -128, 127).astype(np.int8)
    x_cur[:3] = x_prev[:3]  # rows without any nonzero difference
    weights = rng.integers(-128, 128, size=(k,), dtype=np.int8)
    enc = encode(x_cur, x_prev, Mode.DIFF, config)
    product = HwProduct(enc.values[None], weights[None, :, None], Mode.DIFF)
    expected = lane_matmul(product, config)[0, :, 0].tolist()
    plain = (enc.values.astype(np.int64) @ weights.astype(np.int64)).tolist()
    if expected != plain:
        raise AssertionError("model lane_matmul differs from the plain product")
    groups = [lane_groups_of_row(Encoded(enc.values[r], enc.classes[r], enc.high[r],
                                         enc.low[r]), weights, config)
              for r in range(rows)]
    return pe_rows_case("model_encoded_rows", groups, config, expected=expected, seed=seed,
                        **knobs)


def pe_corners(config: DittoConfig, *, seed: int = 13, **knobs) -> BenchCase:
    """Directed corners: -256 and 255 split into high and low, lane-range extremes times
    -128 and 127 with and without the shift, every lane at its extreme in one group, an
    odd lane's (ignored) shift bit, idle groups, single-group and long rows."""
    s = config.split_shift
    lo, hi = config.lane_range
    idle = (0, 0, 0)

    def pad(lanes: list[Lane]) -> list[Lane]:
        return lanes + [idle] * (config.lanes - len(lanes))

    def split(v: int, w: int) -> list[Lane]:
        return [(v >> s, 1, w), (v & ((1 << s) - 1), 0, w)]

    rows: list[list[list[Lane]]] = []
    for v in (-256, 255, -255, -17, 16, 128, -129):
        for w in (-128, 127, -1, 0):
            rows.append([pad(split(v, w))])
    for op in (lo, hi, -1, 1):
        for w in (-128, 127):
            rows.append([pad([(op, 1, w)])])                     # shifted lane
            rows.append([pad([idle, (op, 0, w)])])               # plain lane
    everything = [(lo, j % 2 == 0, -128) for j in range(config.lanes)]
    rows.append([[(op, int(sh), w) for op, sh, w in everything]])     # largest group
    rows.append([[(lo, int(j % 2 == 0), 127) for j in range(config.lanes)]])   # smallest
    rows.append([[(hi, 1, -128) if j % 2 == 0 else (lo, 0, -128)
                  for j in range(config.lanes)]])
    rows.append([pad([idle, (hi, 1, 127)])])           # odd lane: no shifter, bit ignored
    rows.append([pad([])])                              # a row with no operand at all
    rows.append([pad([]), pad([]), pad([])])
    rows.append([[(lo, int(j % 2 == 0), -128) for j in range(config.lanes)]] * 40
                + [[(hi, int(j % 2 == 0), -128) for j in range(config.lanes)]] * 40)
    return pe_rows_case("directed_corners", rows, config, seed=seed, **knobs)


def pe_acc_extremes(config: DittoConfig, *, seed: int = 14) -> BenchCase:
    """Two rows of ``max_reduction`` elements at the largest and smallest possible partial
    sum, ``+-max_reduction * 255 * 128`` (``d = -255`` resp. ``255`` times ``w = -128``),
    at full rate: also checks latency and one group per cycle."""
    rows = []
    for d in (-255, 255):
        values = np.full(config.max_reduction, d, dtype=np.int16)
        weights = np.full(config.max_reduction, -128, dtype=np.int8)
        enc = encode_values(values, config)
        rows.append(lane_groups_of_row(enc, weights, config))
    expected = [config.max_partial_sum, -config.max_partial_sum]
    return pe_rows_case("partial_sum_at_both_extremes", rows, config, expected=expected,
                        backpressure=0.0, idle=0.0, latency=documented_latency("compute_unit"),
                        full_throughput=True, seed=seed)


# ---- accumulation buffer ------------------------------------------------------------------

def _accumulator_case(name: str, beats: list[tuple[int, list[int], int]], bias: list[int],
                      config: DittoConfig, **knobs) -> tuple[BenchCase, dict[int, list[int]]]:
    """Beats ``(row, sums, accumulate)``; expected outputs by plain integer arithmetic.
    Returns the case and the final stored rows."""
    stored: dict[int, list[int]] = {}
    ys = []
    lo, hi = config.acc_range
    for n, (row, sums, accumulate) in enumerate(beats):
        if accumulate and row not in stored:
            raise ValueError(f"{name}: beat {n} accumulates into row {row}, which this case "
                             "never stored (the memory is not reset between cases)")
        base = stored[row] if accumulate else bias
        y = [b + s for b, s in zip(base, sums, strict=True)]
        if min(y) < lo or max(y) > hi:
            raise ValueError(f"{name}: beat {n} leaves the {config.acc_bits}-bit range")
        stored[row] = y
        ys.append(y)
    rows = np.asarray([b[0] for b in beats], np.int64)
    case = BenchCase(
        name=name,
        inputs={"row": rows, "sums": np.asarray([b[1] for b in beats], np.int64),
                "accumulate": np.asarray([b[2] for b in beats], np.int64)},
        outputs={"row": rows, "y": np.asarray(ys, np.int64)},
        source=np.arange(len(beats)), static={"bias": {"": list(bias)}}, **knobs)
    return case, stored


def accumulator_layer_steps(config: DittoConfig, *, rows: int = 12, k: int = 48,
                            chunks: int = 3, steps: int = 5, seed: int = 21,
                            with_bias: bool = True, name: str = "layer_act_then_diff_steps",
                            spatial_steps: tuple[int, ...] = (), **knobs) -> BenchCase:
    """A linear layer run over ``steps`` time steps (ACT, then DIFF; the ``spatial_steps``
    from scratch in SPATIAL mode, whose partial sums are the PEs' chained ones) by
    :class:`ditto.sim.layers.DiffLayerExecutor`; each row's partial sums arrive in
    ``chunks`` reduction chunks (back to back to the same row in even steps, interleaved
    over rows in odd ones), rows in random order. The stored rows after every step must
    equal the executor's outputs."""
    rng = np.random.default_rng(seed)
    p = config.pes
    rows = min(rows, config.max_rows)
    spec = LayerSpec("bench_linear", LayerKind.LINEAR)
    executor = DiffLayerExecutor(spec, config)
    w = rng.integers(-128, 128, size=(k, p), dtype=np.int8)
    bias = rng.integers(-5000, 5000, size=p).tolist() if with_bias else [0] * p
    x = rng.integers(-128, 128, size=(rows, k), dtype=np.int8)
    edges = np.linspace(0, k, chunks + 1).astype(int)
    # Rows land at spread-out addresses, including the last one.
    addresses = rng.choice(config.max_rows, size=rows, replace=False)
    if config.max_rows - 1 not in addresses:
        addresses[0] = config.max_rows - 1
    beats: list[tuple[int, list[int], int]] = []
    outputs_per_step = []
    for t in range(steps):
        if t:
            change = rng.random(x.shape) < 0.3
            x = np.where(change, np.clip(x.astype(np.int16)
                                         + rng.integers(-20, 21, size=x.shape), -128, 127),
                         x).astype(np.int8)
        mode = Mode.SPATIAL if t in spatial_steps else Mode.ACT if t == 0 else Mode.DIFF
        y, products = executor.step(x, w, mode, bias=np.asarray(bias) if with_bias else None)
        outputs_per_step.append(y[0])
        parts = np.zeros((chunks, rows, p), dtype=np.int64)
        for product in products:
            for c in range(chunks):
                sl = slice(edges[c], edges[c + 1])
                chunk = HwProduct(product.values[..., sl], product.weights[:, sl, :],
                                  product.mode, product.transposed, product.chain_rows)
                parts[c] += lane_matmul(chunk, config)[0]
        order = rng.permutation(rows)
        if t % 2 == 0:
            sequence = [(r, c) for r in order for c in range(chunks)]
        else:
            sequence = [(r, c) for c in range(chunks) for r in order]
        for r, c in sequence:
            accumulate = int(mode is Mode.DIFF or c > 0)
            beats.append((int(addresses[r]), parts[c, r].tolist(), accumulate))
    case, stored = _accumulator_case(name, beats, bias, config, seed=seed, **knobs)
    for r in range(rows):
        if stored[int(addresses[r])] != outputs_per_step[-1][r].tolist():
            raise AssertionError("accumulated rows differ from DiffLayerExecutor outputs")
    return case


def accumulator_random_sequence(config: DittoConfig, *, beats: int = 400, seed: int = 22,
                                name: str = "random_rows_back_to_back", **knobs) -> BenchCase:
    """Random beats over a few rows with many back-to-back repeats of the same row; each
    row is first written in ACT mode (``accumulate = 0``)."""
    rng = np.random.default_rng(seed)
    p = config.pes
    rows = rng.choice(config.max_rows, size=min(5, config.max_rows), replace=False).tolist()
    bias = rng.integers(-1000, 1000, size=p).tolist()
    bound = 1 << max(1, config.acc_bits - 12)
    seen: set[int] = set()
    out: list[tuple[int, list[int], int]] = []
    row = rows[0]
    for _ in range(beats):
        if rng.random() > 0.5:
            row = rows[int(rng.integers(len(rows)))]
        accumulate = int(row in seen and rng.random() < 0.8)
        seen.add(row)
        out.append((row, rng.integers(-bound, bound, size=p).tolist(), accumulate))
    case, _ = _accumulator_case(name, out, bias, config, seed=seed, **knobs)
    return case
