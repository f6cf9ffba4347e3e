"""Synthetic trajectories: random layers whose inputs drift from step to step.

Used by tests and by the demo until real traces are captured. Float activations follow
``a_t = a_{t-1} + drift * noise * mask`` where ``mask`` keeps an element unchanged with
probability ``similarity``; each layer is then quantized with one static scale over the whole
trajectory, exactly like real traces.
"""

from __future__ import annotations

import numpy as np

from ditto.config import DittoConfig

from .analysis import LayerTrace
from .layers import Conv2dGeometry, LayerKind, LayerSpec
from .quant import activation_scale, quantize, quantize_weights

__all__ = ["drifting_series", "synthetic_trajectory"]


def drifting_series(shape: tuple[int, ...], steps: int, rng: np.random.Generator, *,
                    similarity: float, drift: float = 0.25,
                    start: np.ndarray | None = None) -> list[np.ndarray]:
    """Float arrays ``a_0 .. a_{steps-1}`` drifting with the given similarity."""
    if not 0.0 <= similarity <= 1.0:
        raise ValueError(f"similarity={similarity}: must be within [0, 1]")
    a = rng.standard_normal(shape) if start is None else np.asarray(start, dtype=np.float64)
    series = [a]
    for _ in range(steps - 1):
        moving = rng.random(shape) >= similarity
        a = a + drift * rng.standard_normal(shape) * moving
        series.append(a)
    return series


def _quantized(series: list[np.ndarray], config: DittoConfig) -> list[np.ndarray]:
    scale = activation_scale(series, config)
    return [quantize(a, scale, config) for a in series]


def synthetic_trajectory(config: DittoConfig, *, steps: int = 8, similarity: float = 0.9,
                         seed: int = 0, size: int = 16) -> list[LayerTrace]:
    """A small U-Net-like mix of layers: 3x3 and 1x1 convs, a linear layer, and
    self-attention ``Q K^T`` and ``P V`` (both operands drifting).

    ``size`` is the image side and channel count; ``size=16`` keeps the demo fast.
    """
    if steps < 2:
        raise ValueError(f"steps={steps}: a trajectory needs at least 2 steps")
    if size < 4:
        raise ValueError(f"size={size}: must be at least 4")
    rng = np.random.default_rng(seed)
    c, hw = size, size
    tokens, heads, dim = hw * hw // 4, 2, max(4, size // 2)

    def weights(shape):
        return quantize_weights(rng.standard_normal(shape), config)[0]

    def constant(spec, x_series, w):
        return LayerTrace(spec, [(x, w) for x in _quantized(x_series, config)])

    def drifting(shape):
        return drifting_series(shape, steps, rng, similarity=similarity)

    layers = [
        constant(LayerSpec("conv3x3_in", LayerKind.CONV2D,
                           conv=Conv2dGeometry((3, 3), pads=(1, 1, 1, 1))),
                 drifting((1, c, hw, hw)), weights((c, c, 3, 3))),
        constant(LayerSpec("conv3x3_down", LayerKind.CONV2D,
                           conv=Conv2dGeometry((3, 3), stride=(2, 2), pads=(1, 1, 1, 1))),
                 drifting((1, c, hw, hw)), weights((2 * c, c, 3, 3))),
        constant(LayerSpec("conv1x1_skip", LayerKind.CONV2D, conv=Conv2dGeometry((1, 1))),
                 drifting((1, 2 * c, hw // 2, hw // 2)), weights((c, 2 * c, 1, 1))),
        constant(LayerSpec("linear_proj", LayerKind.LINEAR),
                 drifting((tokens, c)), weights((4 * c, c)).T.copy()),
    ]
    q = _quantized(drifting((heads, tokens, dim)), config)
    k_t = _quantized(drifting((heads, dim, tokens)), config)
    layers.append(LayerTrace(LayerSpec("attn_qk", LayerKind.MATMUL, weights_change=True,
                                       role="attention_qk"),
                             list(zip(q, k_t, strict=True))))
    logits = drifting((heads, tokens, tokens))
    probs = []
    for z in logits:
        e = np.exp(2.0 * (z - z.max(axis=-1, keepdims=True)))
        probs.append(e / e.sum(axis=-1, keepdims=True))
    v = _quantized(drifting((heads, tokens, dim)), config)
    layers.append(LayerTrace(LayerSpec("attn_pv", LayerKind.MATMUL, weights_change=True,
                                       role="attention_pv"),
                             list(zip(_quantized(probs, config), v, strict=True))))
    return layers
