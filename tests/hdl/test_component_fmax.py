"""Place-and-route harness of one component (registered I/O, iCE40 HX8K): the tiny preset's
PE routes, has an Fmax, and keeps every register of the wrapper."""

from amaranth.hdl import Shape

from ditto.config import preset
from ditto.flow.component_fmax import RegisteredIO, compute_unit_fmax
from ditto.hdl.compute_unit import ComputeUnit, PeShape, lane_group_layout, pe_output_layout
from ditto.hdl.generate import port_map, verilog_text

TINY = preset("tiny")


def _wrapper_bits(config) -> int:
    """Flip-flops of the wrapper, from the PE's port widths: the group payload, ``i.valid``
    and ``o.ready`` in; the sum, ``o.valid`` and ``i.ready`` out; and the reset."""
    shape = PeShape.ditto(config)
    inputs = Shape.cast(lane_group_layout(shape)).width + 2
    outputs = Shape.cast(pe_output_layout(shape)).width + 2
    return inputs + outputs + 1


def test_wrapper_has_the_ports_of_the_pe_and_a_register_for_each_bit():
    pe = ComputeUnit(shape=PeShape.ditto(TINY))
    wrapped = RegisteredIO(pe)
    assert wrapped.register_bits == _wrapper_bits(TINY)
    names = {port["name"] for port in port_map(pe, clocked=False)} | {"clk", "rst"}
    header = verilog_text(wrapped, "top").split("module top(", 1)[1].split(");", 1)[0]
    assert {name.strip() for name in header.split(",")} == names


def test_registered_pe_routes_on_the_hx8k():
    result = compute_unit_fmax(TINY, seeds=[1])
    assert result.seeds == [1] and len(result.fmax_by_seed) == 1
    assert result.fmax_mhz > 0
    assert result.flip_flops >= _wrapper_bits(TINY)
    start, end, delay = result.critical_paths[0]
    assert start != "?" and end != "?" and delay > 0
