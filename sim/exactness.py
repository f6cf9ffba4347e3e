"""Exactness on real data: DIFF-mode output == plain integer product, every layer and step."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ditto.config import DittoConfig
from ditto.enums import Mode

from .analysis import LayerTrace
from .layers import DiffLayerExecutor, exact_matmul, layer_operands

__all__ = ["ExactnessResult", "check_exactness"]


@dataclass(frozen=True)
class ExactnessResult:
    layers: int
    steps: int
    outputs: int
    mismatches: list[str]


def check_exactness(layers: Iterable[LayerTrace], config: DittoConfig, *,
                    reference: Callable[[np.ndarray, np.ndarray], np.ndarray] = exact_matmul,
                    progress: Callable[[int, str], None] | None = None) -> ExactnessResult:
    """Run every layer ACT at step 0 and DIFF afterwards, and compare each step's output
    with the plain product ``reference(A, B)`` of the same operands (default: one direct
    matmul, exact through float64 below 2**53; tests pass plain int64 ``np.matmul``)."""
    mismatches, outputs, count, steps = [], 0, 0, 0
    for index, layer in enumerate(layers):
        if progress:
            progress(index, layer.spec.name)
        executor = DiffLayerExecutor(layer.spec, config)
        for t, (x, w) in enumerate(layer.steps):
            y, _ = executor.step(x, w, Mode.ACT if t == 0 else Mode.DIFF)
            a, b = layer_operands(layer.spec, np.asarray(x), np.asarray(w))
            plain = reference(a, b)
            if not np.array_equal(y, plain):
                bad = int(np.count_nonzero(y != plain))
                mismatches.append(f"{layer.spec.name} step {t}: {bad} outputs differ")
            outputs += plain.size
            steps = max(steps, t + 1)
        count += 1
    return ExactnessResult(count, steps, outputs, mismatches)
