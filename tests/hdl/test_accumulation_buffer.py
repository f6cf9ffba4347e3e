"""AccumulationBuffer: construction, a fast Amaranth-simulator check of the read-after-write
hazard, and the cocotb tier on the generated Verilog (multi-step layer sequences from the
model, random back-to-back rows, exact latency at full rate)."""

import pytest

from ditto.config import preset
from ditto.hdl.accumulator import AccumulationBuffer
from ditto.verif import vectors
from ditto.verif.amaranth_sim import run_stream
from ditto.verif.runner import run_bench

TINY = preset("tiny")


def test_init_wrong_config():
    with pytest.raises(TypeError, match=r"config must be a DittoConfig, not \{\}"):
        AccumulationBuffer(config={})


def test_amaranth_model_forwards_back_to_back_writes_to_one_row():
    dut = AccumulationBuffer(config=TINY)
    beats = [{"row": 3, "sums": [10, -10], "accumulate": 0},
             {"row": 3, "sums": [1, 2], "accumulate": 1},
             {"row": 3, "sums": [1, 2], "accumulate": 1},
             {"row": 4, "sums": [5, 5], "accumulate": 0},
             {"row": 3, "sums": [100, 200], "accumulate": 1},
             {"row": 3, "sums": [7, 7], "accumulate": 0}]
    expected = [(3, [110, -12]), (3, [111, -10]), (3, [112, -8]), (4, [105, 3]),
                (3, [212, 192]), (3, [107, 5])]
    got = run_stream(dut, beats, len(beats), backpressure=0.3,
                     setup=lambda ctx: ctx.set(dut.bias, [100, -2]),
                     convert=lambda p: (int(p.row), [int(v) for v in p.y]))
    assert got == expected
    assert AccumulationBuffer.LATENCY == vectors.documented_latency("accumulation_buffer")


@pytest.mark.parametrize("config", [TINY, preset("default")], ids=lambda c: c.slug)
def test_generated_verilog_accumulates_layer_steps_like_the_model(config, simulator):
    latency = vectors.documented_latency("accumulation_buffer")
    cases = [
        vectors.accumulator_layer_steps(config),
        vectors.accumulator_layer_steps(config, with_bias=False, chunks=1, steps=3, seed=23,
                                        name="layer_without_bias_one_chunk"),
        vectors.accumulator_layer_steps(config, spatial_steps=(0, 3), seed=25,
                                        name="layer_spatial_diff_and_spatial_steps"),
        vectors.accumulator_random_sequence(config),
        vectors.accumulator_random_sequence(config, name="full_rate_exact_latency", seed=24,
                                            backpressure=0.0, idle=0.0, latency=latency,
                                            full_throughput=True),
    ]
    result = run_bench("accumulation_buffer", config, cases, simulator=simulator)
    assert len(result.passed) == len(cases)
