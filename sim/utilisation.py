"""Lane utilisation of the dispatcher on real tiles, from the cycle model (= the RTL)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from ditto.config import DittoConfig
from ditto.enums import Mode

from .analysis import LayerTrace
from .cycles import beat_groups, beat_ops, ditto_tiles_cycles, fixed_tile_cycles
from .encoding import lane_costs
from .layers import layer_operands, step_products

__all__ = ["lane_utilisation"]


def lane_utilisation(layers: Iterable[LayerTrace], config: DittoConfig,
                     steps: Sequence[int]) -> dict:
    """Compute cycles of the DIFF products of ``steps`` (cycles minus the fixed pipeline
    latency of a tile without weight loading), split into lane-bound tiles (ideal
    ``ceil(slots / lanes)`` >= beats) and scan-bound tiles; per layer type for the former.

    Returns ``{"lane_bound": {type: {"cycles", "ideal", "groups"}}, "scan_bound":
    {"cycles", "beats"}}``.
    """
    latency = fixed_tile_cycles(config)
    lane_bound = defaultdict(lambda: {"cycles": 0, "ideal": 0, "groups": 0})
    scan_bound = {"cycles": 0, "beats": 0}
    for layer in layers:
        for t in steps:
            if not 1 <= t < len(layer.steps):
                raise ValueError(f"step {t} is not a DIFF step of a {len(layer.steps)}-step "
                                 "trace")
            current = layer_operands(layer.spec, *layer.steps[t])
            previous = layer_operands(layer.spec, *layer.steps[t - 1])
            for product in step_products(*current, previous, Mode.DIFF,
                                         layer.spec.weights_change):
                costs = lane_costs(product.values, config)
                groups_count, rows, k = costs.shape
                for k0 in range(0, k, config.weight_depth):
                    for r0 in range(0, rows, config.max_rows):
                        tile = costs[:, r0:r0 + config.max_rows, k0:k0 + config.weight_depth]
                        cycles = ditto_tiles_cycles(tile, config, load_weights=False) - latency
                        ideal = -(-tile.reshape(groups_count, -1).sum(1, dtype=np.int64)
                                  // config.lanes)
                        ops = beat_ops(tile, config)
                        groups = beat_groups(ops, config).reshape(groups_count, -1).sum(1)
                        beats = ops[0].size
                        for i in range(groups_count):
                            if ideal[i] >= beats:
                                entry = lane_bound[layer.spec.group]
                                entry["cycles"] += int(cycles[i])
                                entry["ideal"] += int(ideal[i])
                                entry["groups"] += int(groups[i])
                            else:
                                scan_bound["cycles"] += int(cycles[i])
                                scan_bound["beats"] += beats
    return {"lane_bound": dict(lane_bound), "scan_bound": scan_bound}
