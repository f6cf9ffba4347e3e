"""Symmetric int8 quantization as the project uses it (docs/model.md §1).

Weights: one scale per output channel. Activations: one static scale per layer, shared by
every step of a trajectory; a shared scale is what makes ``X_t W = X_{t-1} W + dX W`` exact.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ditto.config import DittoConfig

__all__ = ["activation_scale", "dequantize", "quantize", "quantize_weights"]


def _qmax(config: DittoConfig, bits_field: str = "act_bits") -> int:
    return (1 << (getattr(config, bits_field) - 1)) - 1


def activation_scale(trajectory: Iterable[np.ndarray], config: DittoConfig) -> float:
    """Static scale of one layer: max |x| over every step of the trajectory / 127.

    A layer whose activations are all zero gets scale 1.0 (any scale is exact for zeros).
    """
    peak = 0.0
    for x in trajectory:
        x = np.asarray(x)
        if x.size:
            peak = max(peak, float(np.max(np.abs(x))))
    if not np.isfinite(peak):
        raise ValueError("activations contain inf or NaN; cannot calibrate a scale")
    return peak / _qmax(config) if peak > 0 else 1.0


def quantize(x: np.ndarray, scale: float | np.ndarray, config: DittoConfig,
             bits_field: str = "act_bits") -> np.ndarray:
    """Round-to-nearest-even ``x / scale``, saturated to the symmetric range, as int8."""
    qmax = _qmax(config, bits_field)
    q = np.rint(np.asarray(x, dtype=np.float64) / scale)
    return np.clip(q, -qmax, qmax).astype(np.int8)


def quantize_weights(w: np.ndarray, config: DittoConfig, *,
                     channel_axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric int8 weights.

    Returns
    -------
    (int8 weights, float64 scales)
        ``scales`` has one entry per index of ``channel_axis``; dequantize with
        ``q * scales`` broadcast along that axis.
    """
    w = np.asarray(w, dtype=np.float64)
    moved = np.moveaxis(w, channel_axis, 0).reshape(w.shape[channel_axis], -1)
    peak = np.max(np.abs(moved), axis=1)
    scales = np.where(peak > 0, peak / _qmax(config, "weight_bits"), 1.0)
    shape = [1] * w.ndim
    shape[channel_axis] = -1
    return quantize(w, scales.reshape(shape), config, "weight_bits"), scales


def dequantize(q: np.ndarray, scale: float | np.ndarray) -> np.ndarray:
    return np.asarray(q, dtype=np.float64) * scale
