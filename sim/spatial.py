"""Ditto+ spatial differences: an ACT-mode product's rows encoded as differences between
neighbouring rows (an im2col window and the one before it, or a token and the one before it)
instead of differences between steps.

Rows are processed in tiles of at most ``max_rows`` rows (the rows the accumulation buffer
holds). In a tile, row ``i > 0`` is encoded as ``x_i - x_{i-1}`` and the tile's first row
as itself, so the chain restarts in every tile. The outputs chain in the buffer:
``y_0 = x_0 W`` and ``y_i = y_{i-1} + (x_i - x_{i-1}) W``, hence ``y_i = x_i W`` exactly.
The differences have the same range as temporal ones (two int8 values apart: 9 bits), so
the same classes and lanes carry them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["spatial_values"]


def spatial_values(a: np.ndarray, max_rows: int) -> np.ndarray:
    """The encoded values ``int16 [G, M, K]`` of the activation side ``a`` (int8
    ``[G, M, K]``): each row minus the row before it in its tile of ``max_rows`` rows, a
    tile's first row itself."""
    if max_rows < 1:
        raise ValueError(f"max_rows={max_rows}: a tile holds at least one row")
    values = np.asarray(a, dtype=np.int16).copy()
    values[:, 1:] -= np.asarray(a[:, :-1], dtype=np.int16)
    first = np.arange(0, values.shape[1], max_rows)
    values[:, first] = a[:, first]
    return values
