"""Difference encoding: classes ZERO / LOW / FULL and the exact split into lane operands.

A value ``v`` (an activation in ACT mode, a difference of two activations in DIFF mode) is

- ZERO when ``v == 0``: skipped, no lane;
- LOW when it fits one signed ``lane_bits`` lane: one lane holds ``v`` itself;
- FULL otherwise: two lanes hold ``h = v >> s`` (arithmetic) and ``l = v & (2**s - 1)``
  (unsigned), ``s = config.split_shift``, and ``v == (h << s) + l`` exactly.

In the paper's ACT mode (``config.act_classify == False``) every activation is FULL.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ditto.config import DittoConfig
from ditto.enums import DiffClass, Mode

__all__ = ["ClassCounts", "Encoded", "class_counts", "encode", "encode_values", "lane_costs",
           "operand_values", "PAPER_LOW_RANGE"]

#: The paper's narrow class: values whose high nibble is redundant, -8..7 (4-bit signed).
PAPER_LOW_RANGE = (-8, 7)

_ZERO, _LOW, _FULL = DiffClass.ZERO.value, DiffClass.LOW.value, DiffClass.FULL.value


def _check_int8(name: str, array: np.ndarray, config: DittoConfig) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype != np.int8:
        raise TypeError(f"{name} must be int8 (quantized activations), got {array.dtype}")
    del config  # act_bits == 8 is enforced by the config
    return array


def operand_values(x_cur: np.ndarray, x_prev: np.ndarray | None, mode: Mode,
                   config: DittoConfig) -> np.ndarray:
    """The values the encoder classifies, as int16: ``x_cur`` (ACT) or ``x_cur - x_prev``
    (DIFF: the previous step; SPATIAL: the previous row, which the caller supplies)."""
    x_cur = _check_int8("x_cur", x_cur, config)
    if mode is Mode.ACT:
        return x_cur.astype(np.int16)
    if x_prev is None:
        raise ValueError(f"{mode.name} mode needs the previous activations (x_prev)")
    x_prev = _check_int8("x_prev", x_prev, config)
    if x_prev.shape != x_cur.shape:
        raise ValueError(f"x_prev shape {x_prev.shape} differs from x_cur shape {x_cur.shape}")
    return np.subtract(x_cur, x_prev, dtype=np.int16)


@dataclass(frozen=True)
class Encoded:
    """Per-element encoding of an array of values.

    Attributes
    ----------
    values : int16 array
        The encoded values (activations or differences).
    classes : uint8 array
        ``DiffClass`` values.
    high : int16 array
        Operand of the shifted lane (FULL only; 0 elsewhere).
    low : int16 array
        Operand of the unshifted lane: the value itself for LOW, the unsigned low part for
        FULL, 0 for ZERO.
    """

    values: np.ndarray
    classes: np.ndarray
    high: np.ndarray
    low: np.ndarray

    def reassemble(self, config: DittoConfig) -> np.ndarray:
        """``(high << s) + low``: equals ``values`` exactly (the property the tests check)."""
        return (self.high.astype(np.int32) << config.split_shift) + self.low


def encode_values(values: np.ndarray, config: DittoConfig, *, classify: bool = True) -> Encoded:
    """Classify values and split them into lane operands.

    Parameters
    ----------
    values : integer array
        Values in ``[-2**act_bits, 2**act_bits - 1]``.
    classify : bool
        False treats every value as FULL (the paper's ACT mode).
    """
    values = np.asarray(values).astype(np.int16)
    bound = 1 << config.act_bits
    if values.size and (values.min() < -bound or values.max() >= bound):
        raise ValueError(f"values outside the {config.diff_bits}-bit difference range "
                         f"[{-bound}, {bound - 1}]")
    lane_lo, lane_hi = config.lane_range
    shift = config.split_shift
    if classify:
        is_low = (values >= lane_lo) & (values <= lane_hi)
        classes = np.where(values == 0, _ZERO, np.where(is_low, _LOW, _FULL)).astype(np.uint8)
    else:
        classes = np.full(values.shape, _FULL, dtype=np.uint8)
    full = classes == _FULL
    high = np.where(full, values >> shift, 0).astype(np.int16)
    low = np.where(full, values & ((1 << shift) - 1), values).astype(np.int16)
    low = np.where(classes == _ZERO, 0, low).astype(np.int16)
    return Encoded(values=values, classes=classes, high=high, low=low)


def classifies(mode: Mode, config: DittoConfig) -> bool:
    """Whether values are classified in ``mode``: always for differences (DIFF, SPATIAL), in
    ACT if ``config.act_classify`` (otherwise every value is FULL)."""
    return mode is not Mode.ACT or config.act_classify


def encode(x_cur: np.ndarray, x_prev: np.ndarray | None, mode: Mode,
           config: DittoConfig) -> Encoded:
    """Encode int8 activations the way the encoding unit does in ``mode``."""
    values = operand_values(x_cur, x_prev, mode, config)
    return encode_values(values, config, classify=classifies(mode, config))


def lane_costs(values: np.ndarray, config: DittoConfig, *, classify: bool = True) -> np.ndarray:
    """Lane slots per element as uint8: ZERO 0, LOW 1, FULL 2 (all 2 without ``classify``)."""
    if not classify:
        return np.full(np.shape(values), 2, dtype=np.uint8)
    values = np.asarray(values, dtype=np.int16)
    lane_lo, lane_hi = config.lane_range
    # Unsigned-offset range tests: one add and one compare per bound pair.
    outside_lane = (values - np.int16(lane_lo)).view(np.uint16) > np.uint16(lane_hi - lane_lo)
    cost = (values != 0).view(np.uint8) + outside_lane.view(np.uint8)
    return cost


@dataclass(frozen=True)
class ClassCounts:
    """Class counts of a set of encoded values."""

    elements: int = 0
    zero: int = 0
    low: int = 0
    full: int = 0
    low4: int = 0  # nonzero values in the paper's 4-bit class (-8..7), for comparison

    @property
    def lane_slots(self) -> int:
        return self.low + 2 * self.full

    def __add__(self, other: ClassCounts) -> ClassCounts:
        return ClassCounts(*(a + b for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    def astuple(self) -> tuple[int, int, int, int, int]:
        return (self.elements, self.zero, self.low, self.full, self.low4)

    def fractions(self) -> dict[str, float]:
        """zero/low/full/low4 as fractions of the elements (zero + low + full == 1)."""
        n = max(self.elements, 1)
        return {"zero": self.zero / n, "low": self.low / n, "full": self.full / n,
                "low4": self.low4 / n}


def class_counts(values: np.ndarray, config: DittoConfig, *, classify: bool = True) -> ClassCounts:
    """Count the classes of int16 values without materialising per-element classes."""
    values = np.asarray(values, dtype=np.int16).ravel()
    n = values.size
    if not classify:
        return ClassCounts(elements=n, full=n)
    zero = n - int(np.count_nonzero(values))
    lane_lo, lane_hi = config.lane_range

    def in_range(lo: int, hi: int) -> int:
        return int(np.count_nonzero((values - np.int16(lo)).view(np.uint16) <= hi - lo))

    low = in_range(lane_lo, lane_hi) - zero
    low4 = in_range(*PAPER_LOW_RANGE) - zero
    return ClassCounts(elements=n, zero=zero, low=low, full=n - zero - low, low4=low4)
