"""Ditto+ spatial differences in the model: the encoded rows, the chained outputs against
plain ``x @ w``, and the class mix the analysis reports."""

import numpy as np
import pytest

from ditto.config import preset
from ditto.enums import Mode
from ditto.sim.analysis import analyze
from ditto.sim.encoding import class_counts
from ditto.sim.fixtures import committed_cases
from ditto.sim.layers import DiffLayerExecutor, HwProduct, lane_matmul, layer_operands
from ditto.sim.spatial import spatial_values
from ditto.sim.synthetic import synthetic_trajectory

CONFIG = preset("tiny")


def test_each_row_is_its_difference_from_the_row_before_in_its_tile():
    a = np.random.default_rng(1).integers(-128, 128, (2, 7, 5)).astype(np.int8)
    values = spatial_values(a, max_rows=3)
    for g in range(2):
        for i in range(7):
            want = a[g, i].astype(int) - (a[g, i - 1] if i % 3 else 0)
            assert values[g, i].tolist() == want.tolist(), (g, i)


@pytest.mark.parametrize("max_rows", [1, 4, 16, 64])
def test_the_chained_rows_are_the_plain_product(max_rows):
    rng = np.random.default_rng(max_rows)
    a = rng.integers(-128, 128, (3, 37, 20)).astype(np.int8)
    b = rng.integers(-128, 128, (3, 20, 6)).astype(np.int8)
    product = HwProduct(spatial_values(a, max_rows), b, Mode.SPATIAL, chain_rows=max_rows)
    y = lane_matmul(product, CONFIG)  # through the lane split, chained per tile
    assert (y == a.astype(np.int64) @ b.astype(np.int64)).all()


def test_the_chain_is_exact_on_real_rows():
    for case in committed_cases():
        a, b = case["x"][:, None], case["w"][:, None]   # steps as groups
        values = spatial_values(a, CONFIG.max_rows)
        assert np.abs(values).max() <= 255  # two int8 values apart: the DIFF range
        product = HwProduct(values, b, Mode.SPATIAL, chain_rows=CONFIG.max_rows)
        y = lane_matmul(product, CONFIG)
        assert (y == a.astype(np.int64) @ b.astype(np.int64)).all(), case["name"]


def test_a_hand_made_tile_has_the_classes_of_its_differences():
    a = np.array([[[1, 2], [1, 2], [1, 40], [9, 9]]], np.int8)
    values = spatial_values(a, max_rows=3)
    # Rows: [1, 2] itself; [0, 0]; [0, 38]; a new tile: [9, 9] itself.
    assert values.tolist() == [[[1, 2], [0, 0], [0, 38], [9, 9]]]
    counts = class_counts(values, CONFIG)  # LOW: -16..15
    assert (counts.zero, counts.low, counts.full) == (3, 4, 1)
    assert counts.low4 == 2  # 1 and 2 are within -8..7; 9 is not


def test_the_analysis_reports_the_spatial_class_mix():
    layers = list(synthetic_trajectory(CONFIG, steps=3, size=8, seed=2))
    report = analyze(layers, CONFIG)
    spatial = report["totals"]["spatial"]
    assert spatial["zero"] + spatial["low"] + spatial["full"] == pytest.approx(1.0)
    # The totals weigh each layer by its elements, as a recount over the layers does.
    recount = {key: 0.0 for key in ("zero", "low", "full")}
    elements = 0
    for layer in layers:
        for x, w in layer.steps:
            a, _ = layer_operands(layer.spec, np.asarray(x), np.asarray(w))
            counts = class_counts(spatial_values(a, CONFIG.max_rows), CONFIG)
            recount["zero"] += counts.zero
            recount["low"] += counts.low
            recount["full"] += counts.full
            elements += counts.elements
    for key, value in recount.items():
        assert spatial[key] == pytest.approx(value / elements)
    assert all("spatial" in row for row in report["layers"])


def test_every_step_of_a_layer_may_run_spatial_and_stays_exact():
    """SPATIAL needs no previous step: any step, the first included, runs in it; the
    executor's outputs equal plain integer arithmetic at every step, mixed with DIFF."""
    for layer in synthetic_trajectory(CONFIG, steps=4, size=8, seed=5):
        executor = DiffLayerExecutor(layer.spec, CONFIG)
        for t, (x, w) in enumerate(layer.steps):
            mode = Mode.SPATIAL if t in (0, 2) else Mode.DIFF
            y, products = executor.step(x, w, mode)
            a, b = layer_operands(layer.spec, np.asarray(x), np.asarray(w))
            assert (y == a.astype(np.int64) @ b.astype(np.int64)).all(), (layer.spec.name, t)
            assert all(p.mode is mode for p in products)
