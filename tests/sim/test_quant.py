"""Quantization: static activation scale and per-channel weights."""

import numpy as np

from ditto.config import preset
from ditto.sim.quant import activation_scale, dequantize, quantize, quantize_weights

CONFIG = preset("default")


def test_static_scale_covers_the_whole_trajectory():
    steps = [np.array([0.5, -1.0]), np.array([2.54, 0.0])]
    scale = activation_scale(steps, CONFIG)
    assert scale == 2.54 / 127
    q = [quantize(x, scale, CONFIG) for x in steps]
    assert q[1].tolist() == [127, 0]
    for x, xq in zip(steps, q, strict=True):
        assert np.abs(dequantize(xq, scale) - x).max() <= scale / 2 + 1e-12


def test_quantize_saturates_symmetrically():
    assert quantize(np.array([-1e9, 1e9]), 1.0, CONFIG).tolist() == [-127, 127]


def test_all_zero_activations_get_unit_scale():
    assert activation_scale([np.zeros(3)], CONFIG) == 1.0


def test_per_channel_weights():
    w = np.array([[1.0, -0.5], [0.01, 0.02]])
    q, scales = quantize_weights(w, CONFIG, channel_axis=0)
    assert scales.tolist() == [1.0 / 127, 0.02 / 127]
    assert q.tolist() == [[127, -64], [64, 127]]
    assert q.dtype == np.int8
