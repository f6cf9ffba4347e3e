"""Exact difference processing: DIFF == ACT == plain int64 ``x @ w`` at every step."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ditto.config import preset
from ditto.enums import Mode
from ditto.sim.layers import (
    Conv2dGeometry,
    DiffLayerExecutor,
    LayerKind,
    LayerSpec,
    exact_matmul,
    im2col,
)

CONFIG = preset("default")
PROPERTY = settings(max_examples=40, deadline=None)


def int8(rng, shape):
    return rng.integers(-128, 128, shape).astype(np.int8)


def drift(rng, x, similarity):
    """The next step's int8 activations: most elements unchanged, some moved, some far."""
    step = rng.integers(-40, 41, x.shape) * (rng.random(x.shape) > similarity)
    return np.clip(x.astype(np.int64) + step, -128, 127).astype(np.int8)


def direct_conv(x, w, g: Conv2dGeometry):
    """Textbook convolution in int64 loops over output pixels and kernel taps."""
    n, c, h, wd = x.shape
    top, left, bottom, right = g.pads
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (top, bottom), (left, right)))
    out_h, out_w = g.output_size(h, wd)
    cout, cg = w.shape[0], c // g.groups
    y = np.zeros((n, cout, out_h, out_w), np.int64)
    for o in range(cout):
        grp = o // (cout // g.groups)
        for i in range(out_h):
            for j in range(out_w):
                for ky in range(g.kernel[0]):
                    for kx in range(g.kernel[1]):
                        yy = i * g.stride[0] + ky * g.dilation[0]
                        xx = j * g.stride[1] + kx * g.dilation[1]
                        patch = xp[:, grp * cg:(grp + 1) * cg, yy, xx]
                        y[:, o, i, j] += patch @ w[o, :, ky, kx].astype(np.int64)
    return y


def grouped_to_nchw(y, n, cout, out_h, out_w, groups):
    return (y.reshape(groups, n, out_h, out_w, cout // groups)
            .transpose(1, 0, 4, 2, 3).reshape(n, cout, out_h, out_w))


def run_both_modes(spec, xs, ws):
    """Run a layer in DIFF mode (after an ACT step 0) and in ACT mode at every step."""
    diff_exec, act_exec = DiffLayerExecutor(spec, CONFIG), DiffLayerExecutor(spec, CONFIG)
    for t, (x, w) in enumerate(zip(xs, ws, strict=True)):
        y_diff, products = diff_exec.step(x, w, Mode.ACT if t == 0 else Mode.DIFF)
        y_act, _ = act_exec.step(x, w, Mode.ACT)
        yield t, y_diff, y_act, products


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 40), k=st.integers(1, 70),
       n=st.integers(1, 12), steps=st.integers(2, 5), similarity=st.floats(0.0, 1.0))
def test_linear_diff_equals_act_equals_plain_matmul(seed, rows, k, n, steps, similarity):
    rng = np.random.default_rng(seed)
    spec = LayerSpec("fc", LayerKind.LINEAR)
    w = int8(rng, (k, n))
    xs = [int8(rng, (rows, k))]
    for _ in range(steps - 1):
        xs.append(drift(rng, xs[-1], similarity))
    for t, y_diff, y_act, products in run_both_modes(spec, xs, [w] * steps):
        plain = xs[t].astype(np.int64) @ w.astype(np.int64)
        assert (y_diff[0] == plain).all() and (y_act[0] == plain).all()
        assert [p.mode for p in products] == [Mode.ACT if t == 0 else Mode.DIFF]


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), kernel=st.sampled_from([(1, 1), (3, 3), (2, 3)]),
       stride=st.sampled_from([(1, 1), (2, 2), (1, 2)]),
       pads=st.tuples(*[st.integers(0, 2)] * 4), dilation=st.sampled_from([(1, 1), (2, 1)]),
       groups=st.sampled_from([1, 2]), similarity=st.floats(0.0, 1.0))
def test_conv2d_diff_equals_act_equals_direct_convolution(seed, kernel, stride, pads,
                                                          dilation, groups, similarity):
    rng = np.random.default_rng(seed)
    geometry = Conv2dGeometry(kernel, stride, pads, dilation, groups)
    n, c, h, w_in, cout = 1, 2 * groups, 7, 6, 2 * groups
    w = int8(rng, (cout, c // groups, *kernel))
    xs = [int8(rng, (n, c, h, w_in))]
    for _ in range(2):
        xs.append(drift(rng, xs[-1], similarity))
    spec = LayerSpec("conv", LayerKind.CONV2D, conv=geometry)
    out_h, out_w = geometry.output_size(h, w_in)
    for t, y_diff, y_act, _ in run_both_modes(spec, xs, [w] * 3):
        plain = direct_conv(xs[t], w, geometry)
        assert (grouped_to_nchw(y_diff, n, cout, out_h, out_w, groups) == plain).all()
        assert (y_act == y_diff).all()


@PROPERTY
@given(seed=st.integers(0, 2**32 - 1), heads=st.integers(1, 3), tokens=st.integers(1, 20),
       dim=st.integers(1, 16), similarity=st.floats(0.0, 1.0))
def test_self_attention_both_operands_changing(seed, heads, tokens, dim, similarity):
    rng = np.random.default_rng(seed)
    qs, ks = [int8(rng, (heads, tokens, dim))], [int8(rng, (heads, dim, tokens))]
    for _ in range(3):
        qs.append(drift(rng, qs[-1], similarity))
        ks.append(drift(rng, ks[-1], similarity))
    spec = LayerSpec("qk", LayerKind.MATMUL, weights_change=True)
    for t, y_diff, y_act, products in run_both_modes(spec, qs, ks):
        plain = qs[t].astype(np.int64) @ ks[t].astype(np.int64)
        assert (y_diff == plain).all() and (y_act == plain).all()
        if t:
            # Q_t dK^T runs transposed (the difference on the encoded side), then dQ K_{t-1}^T.
            assert [p.transposed for p in products] == [True, False]
            assert products[0].values.shape == (heads, tokens, dim)


def test_cross_attention_is_one_product_per_step():
    rng = np.random.default_rng(1)
    k_const = int8(rng, (2, 8, 10))
    qs = [int8(rng, (2, 10, 8))]
    qs.append(drift(rng, qs[-1], 0.5))
    spec = LayerSpec("cross", LayerKind.MATMUL, weights_change=False)
    for t, y_diff, _, products in run_both_modes(spec, qs, [k_const] * 2):
        assert (y_diff == qs[t].astype(np.int64) @ k_const.astype(np.int64)).all()
        assert len(products) == 1


def test_bias_is_added_once_and_kept_through_diff_steps():
    rng = np.random.default_rng(2)
    w, bias = int8(rng, (5, 3)), np.array([1000, -7, 3])
    xs = [int8(rng, (4, 5))]
    xs.append(drift(rng, xs[0], 0.3))
    executor = DiffLayerExecutor(LayerSpec("fc", LayerKind.LINEAR), CONFIG)
    for t, x in enumerate(xs):
        y, _ = executor.step(x, w, Mode.ACT if t == 0 else Mode.DIFF, bias=bias)
        assert (y[0] == x.astype(np.int64) @ w + bias).all()


def test_im2col_layout():
    x = np.arange(2 * 3 * 3, dtype=np.int8).reshape(1, 2, 3, 3)
    cols = im2col(x, Conv2dGeometry((2, 2)))
    assert cols.shape == (1, 4, 8)
    # First output pixel: channel 0 taps then channel 1 taps, each row-major.
    assert cols[0, 0].tolist() == [0, 1, 3, 4, 9, 10, 12, 13]


def test_exact_matmul_falls_back_to_int64_for_huge_sums():
    a = np.full((1, 4), 2**40, dtype=np.int64)
    b = np.full((4, 1), 2**20, dtype=np.int64)
    assert exact_matmul(a, b)[0, 0] == 4 * 2**60


def test_diff_step_without_previous_step_is_rejected():
    executor = DiffLayerExecutor(LayerSpec("fc", LayerKind.LINEAR), CONFIG)
    with pytest.raises(ValueError, match="ACT mode"):
        executor.step(np.zeros((2, 3), np.int8), np.zeros((3, 2), np.int8), Mode.DIFF)


def test_reduction_longer_than_the_config_allows_is_rejected():
    config = preset("tiny")
    executor = DiffLayerExecutor(LayerSpec("fc", LayerKind.LINEAR), config)
    k = config.max_reduction + 1
    with pytest.raises(ValueError, match=f"reduction length {k} exceeds max_reduction"):
        executor.step(np.zeros((1, k), np.int8), np.zeros((k, 1), np.int8), Mode.ACT)


def test_float_activations_are_rejected():
    executor = DiffLayerExecutor(LayerSpec("fc", LayerKind.LINEAR), CONFIG)
    with pytest.raises(TypeError, match="activations must be int8"):
        executor.step(np.zeros((1, 3)), np.zeros((3, 1), np.int8), Mode.ACT)
