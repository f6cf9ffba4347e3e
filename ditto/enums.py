"""Modes and classes shared, value for value, by the NumPy model and the hardware."""

from amaranth.lib import enum

__all__ = ["DiffClass", "Mode"]


class Mode(enum.Enum, shape=1):
    """How a layer step is computed.

    ACT multiplies the activations themselves; DIFF multiplies the differences to the previous
    step and adds the product to the stored previous output.
    """

    ACT = 0
    DIFF = 1


class DiffClass(enum.Enum, shape=2):
    """Cost class of one encoded value: ZERO takes no lane, LOW one, FULL two."""

    ZERO = 0
    LOW = 1
    FULL = 2
