"""Encoder: exhaustive over every int8 pair, against the definitions in plain Python."""

import numpy as np
import pytest

from ditto.config import preset
from ditto.enums import DiffClass, Mode
from ditto.sim.encoding import (
    PAPER_LOW_RANGE,
    class_counts,
    encode,
    encode_values,
    lane_costs,
    operand_values,
)

CONFIG = preset("default")


def expected_class(v: int, lane_bits: int) -> DiffClass:
    if v == 0:
        return DiffClass.ZERO
    if -(2 ** (lane_bits - 1)) <= v < 2 ** (lane_bits - 1):
        return DiffClass.LOW
    return DiffClass.FULL


def all_pairs():
    grid = np.arange(-128, 128, dtype=np.int8)
    x_cur, x_prev = np.meshgrid(grid, grid, indexing="ij")
    return x_cur.ravel(), x_prev.ravel()


@pytest.mark.parametrize("lane_bits", [5, 6])
def test_every_int8_pair_reassembles_exactly_and_is_classified_by_definition(lane_bits):
    config = CONFIG.replace(lane_bits=lane_bits)
    x_cur, x_prev = all_pairs()
    enc = encode(x_cur, x_prev, Mode.DIFF, config)
    diffs = [int(c) - int(p) for c, p in zip(x_cur, x_prev, strict=True)]
    assert enc.values.tolist() == diffs
    assert (enc.reassemble(config) == enc.values).all()
    classes = [expected_class(d, lane_bits).value for d in diffs]
    assert enc.classes.tolist() == classes
    lo, hi = config.lane_range
    for operand in (enc.high, enc.low):
        assert operand.min() >= lo and operand.max() <= hi
    full = enc.classes == DiffClass.FULL.value
    assert (enc.low[full] >= 0).all(), "the low part of a FULL value is an unsigned nibble"
    assert (enc.high[~full] == 0).all()
    assert (enc.low[enc.classes == DiffClass.ZERO.value] == 0).all()


def test_corner_differences_split_into_high_and_low():
    enc = encode_values(np.array([-256, 255, -17, 16, -16, 15]), CONFIG)
    assert enc.high.tolist() == [-16, 15, -2, 1, 0, 0]
    assert enc.low.tolist() == [0, 15, 15, 0, -16, 15]
    assert enc.classes.tolist() == [2, 2, 2, 2, 1, 1]


def test_act_mode_classifies_every_int8_value():
    values = np.arange(-128, 128, dtype=np.int8)
    enc = encode(values, None, Mode.ACT, CONFIG)
    assert enc.classes.tolist() == [expected_class(int(v), 5).value for v in values]
    assert (enc.reassemble(CONFIG) == values).all()


def test_paper_act_mode_makes_every_value_full():
    config = preset("paper")
    values = np.arange(-128, 128, dtype=np.int8)
    enc = encode(values, None, Mode.ACT, config)
    assert (enc.classes == DiffClass.FULL.value).all()
    assert (enc.reassemble(config) == values).all()
    # DIFF mode still classifies under the paper config.
    assert encode(values, values, Mode.DIFF, config).classes.max() == DiffClass.ZERO.value


def test_lane_costs_and_counts_agree_with_classes():
    x_cur, x_prev = all_pairs()
    values = operand_values(x_cur, x_prev, Mode.DIFF, CONFIG)
    classes = encode_values(values, CONFIG).classes
    cost_of = np.array([0, 1, 2])
    assert (lane_costs(values, CONFIG) == cost_of[classes]).all()
    counts = class_counts(values, CONFIG)
    assert counts.elements == 65536
    assert counts.zero == 256
    assert counts.zero + counts.low + counts.full == counts.elements
    assert counts.low == int((classes == 1).sum())
    lo4, hi4 = PAPER_LOW_RANGE
    assert counts.low4 == sum(1 for v in values.tolist() if v != 0 and lo4 <= v <= hi4)
    assert counts.lane_slots == int(lane_costs(values, CONFIG).sum())
    assert sum(counts.fractions()[k] for k in ("zero", "low", "full")) == pytest.approx(1.0)


def test_wrong_inputs_are_rejected():
    x = np.zeros(4, np.int8)
    with pytest.raises(TypeError, match="int8"):
        operand_values(x.astype(np.int16), x, Mode.DIFF, CONFIG)
    with pytest.raises(ValueError, match="DIFF mode needs the previous activations"):
        operand_values(x, None, Mode.DIFF, CONFIG)
    with pytest.raises(ValueError, match="shape"):
        operand_values(x, np.zeros(5, np.int8), Mode.DIFF, CONFIG)
    with pytest.raises(ValueError, match="9-bit difference range"):
        encode_values(np.array([256]), CONFIG)
