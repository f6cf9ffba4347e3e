"""Modes and classes shared, value for value, by the NumPy model and the hardware."""

from amaranth.lib import enum

__all__ = ["DiffClass", "Mode"]


class Mode(enum.Enum, shape=2):
    """How a layer step is computed.

    ACT multiplies the activations themselves; DIFF multiplies the differences to the previous
    step and adds the product to the stored previous output; SPATIAL (Ditto+) multiplies each
    row's difference to the row before it in its tile (a tile's first row: the row itself) and
    chains the products, ``y_i = y_{i-1} + (x_i - x_{i-1}) W``, so it needs no previous step.
    """

    ACT = 0
    DIFF = 1
    SPATIAL = 2


class DiffClass(enum.Enum, shape=2):
    """Cost class of one encoded value: ZERO takes no lane, LOW one, FULL two."""

    ZERO = 0
    LOW = 1
    FULL = 2
