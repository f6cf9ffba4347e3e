"""EncodingUnit: construction, a fast Amaranth-simulator check, and the cocotb tier on the
generated Verilog (every int8 pair, every int8 value in both ACT modes, padding, latency,
SPATIAL rows)."""

import inspect

import numpy as np
import pytest
from amaranth.hdl import Shape

from ditto.config import preset
from ditto.enums import DiffClass, Mode
from ditto.hdl.encoding import EncodingUnit, encoder_input_layout, encoder_output_layout
from ditto.hdl.generate import COMPONENTS
from ditto.sim.encoding import classifies, encode, lane_costs
from ditto.verif import vectors
from ditto.verif.amaranth_sim import run_stream
from ditto.verif.runner import run_bench

DEFAULT = preset("default")
TINY = preset("tiny")


def test_init_wrong_config():
    with pytest.raises(TypeError, match="config must be a DittoConfig, not 'default'"):
        EncodingUnit(config="default")


@pytest.mark.parametrize("info", list(COMPONENTS.values()), ids=lambda info: info.name)
def test_parameters_are_keyword_only(info):
    # Every component takes its config (a leaf: its own shape) by keyword only.
    for parameter in inspect.signature(info.cls).parameters.values():
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, parameter


def test_payload_widths_follow_the_config():
    config = TINY.replace(lane_bits=6)
    assert Shape.cast(encoder_input_layout(config)).width == 8 * 8 * 2 + 8 + 1
    out = encoder_output_layout(config)
    assert out["high"].shape.elem_shape.width == 6
    # + per element its sum within its block (0..14), the block's and the pair's costs
    assert Shape.cast(out).width == 8 * (2 + 6 + 6) + 8 * 4 + 5 + 5 + 1
    assert EncodingUnit.LATENCY == vectors.documented_latency("encoding_unit")


def _encode_beats_in_amaranth(config, mode, x_cur, x_prev, valid, backpressure):
    dut = EncodingUnit(config=config)
    beats = [{"x_cur": c.tolist(), "x_prev": p.tolist(),
              "valid": int(sum(int(b) << n for n, b in enumerate(v))), "last": n % 2}
             for n, (c, p, v) in enumerate(zip(x_cur, x_prev, valid, strict=True))]

    def plain(payload):
        return ([int(DiffClass(c).value) for c in payload.cls], list(payload.high),
                list(payload.low), list(payload.within), list(payload.block_costs),
                list(payload.block_pair_costs), payload.last)

    return run_stream(dut, beats, len(beats), backpressure=backpressure,
                      setup=lambda ctx: ctx.set(dut.mode, mode), convert=plain)


@pytest.mark.parametrize("mode", [Mode.DIFF, Mode.ACT, Mode.SPATIAL])
def test_amaranth_model_agrees_with_reference_under_backpressure(mode):
    rng = np.random.default_rng(3)
    config = TINY
    x_prev = rng.integers(-128, 128, size=(12, 8), dtype=np.int8)
    step = rng.choice([0, 1, -16, 15, 16, -17, 255, -255], size=x_prev.shape)
    x_cur = np.clip(x_prev + step, -128, 127).astype(np.int8)
    x_cur[0] = [-128, 127, 0, 15, -16, 16, -17, 1]
    x_prev[0] = [127, -128, 0, 0, 0, 0, 0, 0]
    valid = rng.random(x_prev.shape) < 0.8
    got = _encode_beats_in_amaranth(config, mode, x_cur, x_prev, valid, backpressure=0.5)
    enc = encode(x_cur, x_prev, mode, config)
    costs = np.where(valid, lane_costs(enc.values, config, classify=classifies(mode, config)), 0)
    for n, (cls, high, low, within, block, pair, last) in enumerate(got):
        # The lane costs from the model's values, summed plainly over the beat (one block
        # of eight elements at E = 8).
        assert within == [int(costs[n, :j].sum()) for j in range(8)]
        assert block == pair == [int(costs[n].sum())]
        assert cls == np.where(valid[n], enc.classes[n], 0).tolist()
        assert high == np.where(valid[n], enc.high[n], 0).tolist()
        assert low == np.where(valid[n], enc.low[n], 0).tolist()
        assert last == n % 2


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_generated_verilog_encodes_every_pair_like_the_model(sim, need_simulator):
    need_simulator(sim)
    result = run_bench("encoding_unit", DEFAULT, vectors.encoder_cases(DEFAULT), simulator=sim)
    assert len(result.passed) == 6


def test_generated_verilog_in_paper_act_mode_marks_every_valid_element_full(simulator):
    config = preset("paper")
    assert not config.act_classify
    cases = vectors.encoder_cases(config, seed=7)
    act = next(case for case in cases if case.name == "act_every_int8_value")
    real = (act.inputs["valid"][:, None] >> np.arange(config.scan_width)) & 1 == 1
    assert set(act.outputs["cls"][real].tolist()) == {DiffClass.FULL.value}
    assert real.sum() == 256
    run_bench("encoding_unit", config, cases, simulator=simulator)
