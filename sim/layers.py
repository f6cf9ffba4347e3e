"""Exact difference processing of conv, linear and attention layers.

Every layer step reduces to grouped integer matmuls ``A[g] @ B[g]`` (``A`` int8 ``[G, M, K]``,
the activation side; ``B`` int8 ``[G, K, N]``, the weight side). Conv2d goes through im2col,
linear layers are one group, attention matmuls have one group per (batch, head).

In DIFF mode a step multiplies differences only:

- constant ``B`` (conv, linear, cross-attention):
  ``Y_t = Y_{t-1} + dA @ B``;
- changing ``B`` (self-attention ``Q K^T`` and ``P V``):
  ``Y_t = Y_{t-1} + A_t @ dB + dA @ B_{t-1}``, where ``A_t @ dB`` runs on the hardware as
  ``(dB^T @ A_t^T)^T`` so that the difference is on the encoded (activation) side.

In SPATIAL mode (Ditto+) a step needs no previous step: each row of ``A`` is encoded as its
difference from the row before it in its tile (``spatial``), and the PEs chain the rows'
products, ``Y_i = Y_{i-1} + dA_i @ B`` (``chain_tiles``).

Every hardware product is computed through the lane split of ``encoding`` (``(h << s) + l``),
so the exactness tests exercise the same decomposition as the hardware.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from ditto.config import DittoConfig
from ditto.enums import Mode

from .encoding import classifies, encode_values
from .spatial import spatial_values

__all__ = ["Conv2dGeometry", "DiffLayerExecutor", "HwProduct", "LayerKind", "LayerSpec",
           "conv2d_weights_as_matmul", "exact_matmul", "im2col", "layer_operands",
           "lane_matmul", "step_products"]


class LayerKind(enum.StrEnum):
    CONV2D = "conv2d"
    LINEAR = "linear"
    MATMUL = "matmul"   # attention: Q K^T or P V


@dataclass(frozen=True)
class Conv2dGeometry:
    """Geometry of a 2-D convolution (ONNX conventions; pads are top, left, bottom, right)."""

    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def __post_init__(self):
        for name in ("kernel", "stride", "dilation"):
            value = getattr(self, name)
            if len(value) != 2 or min(value) < 1:
                raise ValueError(f"conv {name}={value}: need two positive integers")
        if len(self.pads) != 4 or min(self.pads) < 0:
            raise ValueError(f"conv pads={self.pads}: need four non-negative integers")
        if self.groups < 1:
            raise ValueError(f"conv groups={self.groups}: must be >= 1")

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        top, left, bottom, right = self.pads
        out_h = (height + top + bottom - dh * (kh - 1) - 1) // sh + 1
        out_w = (width + left + right - dw * (kw - 1) - 1) // sw + 1
        if out_h < 1 or out_w < 1:
            raise ValueError(f"conv with {self} on a {height}x{width} input has no output")
        return out_h, out_w


@dataclass(frozen=True)
class LayerSpec:
    """What kind of layer, its geometry, and whether its weight side changes over steps."""

    name: str
    kind: LayerKind
    conv: Conv2dGeometry | None = None
    weights_change: bool = False
    role: str | None = None  # finer type for reports, e.g. "attention_qk"

    def __post_init__(self):
        if (self.kind is LayerKind.CONV2D) != (self.conv is not None):
            raise ValueError(f"layer {self.name}: conv geometry goes with kind conv2d only")
        if self.weights_change and self.kind is not LayerKind.MATMUL:
            raise ValueError(f"layer {self.name}: only matmul layers have changing weights")

    @property
    def group(self) -> str:
        """Layer type for reports: ``conv3x3``, ``conv1x1``, ``linear``, ``attention_qk``..."""
        if self.role:
            return self.role
        if self.conv is not None:
            return f"conv{self.conv.kernel[0]}x{self.conv.kernel[1]}"
        return str(self.kind)


def im2col(x: np.ndarray, geometry: Conv2dGeometry) -> np.ndarray:
    """``x[N, C, H, W]`` -> ``[G, N * Ho * Wo, (C / G) * kh * kw]`` (zero padding)."""
    if x.ndim != 4:
        raise ValueError(f"conv input must be [N, C, H, W], got shape {x.shape}")
    n, c, h, w = x.shape
    groups = geometry.groups
    if c % groups:
        raise ValueError(f"conv input has {c} channels, not divisible by groups={groups}")
    (kh, kw), (sh, sw), (dh, dw) = geometry.kernel, geometry.stride, geometry.dilation
    top, left, bottom, right = geometry.pads
    out_h, out_w = geometry.output_size(h, w)
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    windows = np.lib.stride_tricks.sliding_window_view(padded, (span_h, span_w), axis=(2, 3))
    windows = windows[:, :, : (out_h - 1) * sh + 1 : sh, : (out_w - 1) * sw + 1 : sw, ::dh, ::dw]
    # [N, C, Ho, Wo, kh, kw] -> [G, N, Ho, Wo, C/G, kh, kw]
    windows = windows.reshape(n, groups, c // groups, out_h, out_w, kh, kw)
    cols = windows.transpose(1, 0, 3, 4, 2, 5, 6)
    return np.ascontiguousarray(cols).reshape(groups, n * out_h * out_w, -1)


def conv2d_weights_as_matmul(weight: np.ndarray, groups: int) -> np.ndarray:
    """ONNX conv weights ``[Cout, C/G, kh, kw]`` -> ``[G, (C/G) * kh * kw, Cout / G]``."""
    cout = weight.shape[0]
    if cout % groups:
        raise ValueError(f"conv has {cout} output channels, not divisible by groups={groups}")
    w = weight.reshape(groups, cout // groups, -1)
    return np.ascontiguousarray(w.transpose(0, 2, 1))


def layer_operands(spec: LayerSpec, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray,
                                                                          np.ndarray]:
    """The grouped matmul ``(A [G, M, K], B [G, K, N])`` of one layer step.

    ``x`` and ``w`` are in the layer's native layout: conv ``x[N, C, H, W]``,
    ``w[Cout, C/G, kh, kw]``; linear ``x[..., K]``, ``w[K, N]``; matmul ``x[..., M, K]``,
    ``w[..., K, N]`` (leading axes are groups).
    """
    if spec.kind is LayerKind.CONV2D:
        return im2col(x, spec.conv), conv2d_weights_as_matmul(w, spec.conv.groups)
    if spec.kind is LayerKind.LINEAR:
        if w.ndim != 2 or x.shape[-1] != w.shape[0]:
            raise ValueError(f"layer {spec.name}: linear x{x.shape} @ w{w.shape} mismatch")
        return x.reshape(1, -1, x.shape[-1]), w[None]
    if x.ndim < 2 or w.ndim < 2 or x.shape[-1] != w.shape[-2]:
        raise ValueError(f"layer {spec.name}: matmul x{x.shape} @ w{w.shape} mismatch")
    a = x.reshape(-1, *x.shape[-2:])
    b = np.broadcast_to(w, (*x.shape[:-2], *w.shape[-2:])).reshape(-1, *w.shape[-2:])
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"layer {spec.name}: matmul groups {a.shape[0]} != {b.shape[0]}")
    return a, b


def exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact integer ``a @ b`` as int64.

    Uses float64 BLAS when every partial sum is below 2**53 in magnitude (then float64 is
    exact), otherwise int64 arithmetic.
    """
    k = a.shape[-1]
    bound = k * max(1, int(np.max(np.abs(a), initial=0))) * max(1, int(np.max(np.abs(b),
                                                                               initial=0)))
    if bound < 2**53:
        return np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(np.int64)
    return np.matmul(a.astype(np.int64), b.astype(np.int64))


@dataclass(frozen=True)
class HwProduct:
    """One grouped matmul the core runs: encoded ``values [G, M, K]`` times int8
    ``weights [G, K, N]``; the layer output gets ``(values @ weights)`` transposed over the
    last two axes when ``transposed``."""

    values: np.ndarray
    weights: np.ndarray
    mode: Mode
    transposed: bool = False
    #: SPATIAL: rows per tile; the products of a tile's rows are chained (running sum).
    chain_rows: int = 0

    def classifies(self, config: DittoConfig) -> bool:
        """Whether the encoder classifies (skips zeros, narrow lanes) in this product."""
        return classifies(self.mode, config)


def lane_matmul(product: HwProduct, config: DittoConfig) -> np.ndarray:
    """The product as the lanes compute it: ``(high @ W) << s + low @ W``, int64."""
    encoded = encode_values(product.values, config, classify=product.classifies(config))
    y = (exact_matmul(encoded.high, product.weights) << config.split_shift) \
        + exact_matmul(encoded.low, product.weights)
    if product.chain_rows:
        y = chain_tiles(y, product.chain_rows)
    return np.swapaxes(y, -1, -2) if product.transposed else y


def chain_tiles(products: np.ndarray, max_rows: int) -> np.ndarray:
    """The running sum of ``products [G, M, N]`` over the rows of each tile of ``max_rows``
    rows: what the PEs build from SPATIAL rows (``y_i = y_{i-1} + d_i W``)."""
    out = np.empty_like(products)
    for start in range(0, products.shape[1], max_rows):
        tile = slice(start, start + max_rows)
        out[:, tile] = np.cumsum(products[:, tile], axis=1)
    return out


def step_products(a: np.ndarray, b: np.ndarray, prev: tuple[np.ndarray, np.ndarray] | None,
                  mode: Mode, weights_change: bool, *,
                  max_rows: int | None = None) -> list[HwProduct]:
    """The hardware products of one layer step (see the module docstring). SPATIAL needs
    ``max_rows``, the rows of a tile, in which the spatial differences chain."""
    if mode is Mode.ACT:
        return [HwProduct(a.astype(np.int16), b, Mode.ACT)]
    if mode is Mode.SPATIAL:
        if not max_rows:
            raise ValueError("SPATIAL mode needs max_rows (the rows a tile chains)")
        return [HwProduct(spatial_values(a, max_rows), b, Mode.SPATIAL, chain_rows=max_rows)]
    if prev is None:
        raise ValueError("DIFF mode needs the previous step (run the first step in ACT mode)")
    a_prev, b_prev = prev
    da = np.subtract(a, a_prev, dtype=np.int16)
    if not weights_change:
        return [HwProduct(da, b, Mode.DIFF)]
    db_t = np.swapaxes(np.subtract(b, b_prev, dtype=np.int16), -1, -2)
    return [HwProduct(db_t, np.ascontiguousarray(np.swapaxes(a, -1, -2)), Mode.DIFF,
                      transposed=True),
            HwProduct(da, b_prev, Mode.DIFF)]


@dataclass
class DiffLayerExecutor:
    """Runs one layer step by step, keeping what the hardware keeps between steps:
    the previous operands and the previous integer output.

    ``step`` returns the exact int64 output ``[G, M, N]`` and the hardware products run.
    """

    spec: LayerSpec
    config: DittoConfig
    _prev: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _y: np.ndarray | None = field(default=None, repr=False)

    def step(self, x: np.ndarray, w: np.ndarray, mode: Mode, *,
             bias: np.ndarray | None = None) -> tuple[np.ndarray, list[HwProduct]]:
        a, b = layer_operands(self.spec, np.asarray(x), np.asarray(w))
        for name, array in (("activations", a), ("weights", b)):
            if array.dtype != np.int8:
                raise TypeError(f"layer {self.spec.name}: {name} must be int8, got "
                                f"{array.dtype}")
        if a.shape[-1] > self.config.max_reduction:
            raise ValueError(f"layer {self.spec.name}: reduction length {a.shape[-1]} exceeds "
                             f"max_reduction={self.config.max_reduction}")
        if self._prev is not None and self._prev[0].shape != a.shape:
            raise ValueError(f"layer {self.spec.name}: operand shape changed between steps "
                             f"({self._prev[0].shape} -> {a.shape})")
        products = step_products(a, b, self._prev, mode, self.spec.weights_change,
                                 max_rows=self.config.max_rows)
        y = np.zeros((a.shape[0], a.shape[1], b.shape[2]), dtype=np.int64)
        if mode is Mode.DIFF:
            y += self._y
        elif bias is not None:
            y += np.asarray(bias, dtype=np.int64).reshape(a.shape[0], 1, b.shape[2])
        for product in products:
            y += lane_matmul(product, self.config)
        lo, hi = self.config.acc_range
        if y.size and (y.min() < lo or y.max() > hi):
            raise OverflowError(f"layer {self.spec.name}: output outside the "
                                f"{self.config.acc_bits}-bit accumulator")
        self._prev, self._y = (a, b), y
        return y, products
