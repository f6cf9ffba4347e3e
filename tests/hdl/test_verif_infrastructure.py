"""The verification infrastructure itself: payload packing, the golden tile jobs, and that
failures are caught and reported readably (a wrong golden value, a design that breaks the
stream rules)."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring

from ditto.config import preset
from ditto.enums import Mode
from ditto.hdl.encoding import EncodingUnit
from ditto.hdl.generate import ComponentInfo, generate
from ditto.verif import vectors
from ditto.verif.payload import PayloadCodec
from ditto.verif.runner import BenchCase, run_bench, selected_simulator
from ditto.verif.tiles import ditto_jobs, previous_rows

TINY = preset("tiny")


@pytest.fixture(scope="module")
def pe_ports(tmp_path_factory):
    manifest = generate(TINY, tmp_path_factory.mktemp("rtl"), components=["compute_unit"])
    return {p["name"]: p for p in manifest["components"]["compute_unit"]["ports"]}


def test_payload_codec_round_trips_signed_fields(pe_ports):
    codec = PayloadCodec(pe_ports["i__payload"])
    beat = {"lanes.operand": [-16, 15, 0, -1], "lanes.shift": [1, 0, 1, 0],
            "lanes.weight": [-128, 127, 3, -1], "first": 1, "last": 0}
    raw = codec.pack(beat)
    assert raw >> 58 == 0
    assert codec.unpack(raw) == beat
    arrays = {key: np.asarray([value, value]) for key, value in beat.items()}
    assert codec.pack_all(arrays) == [raw, raw]
    assert "lanes.operand=[-16, 15, 0, -1]" in codec.describe(raw)


def test_payload_codec_rejects_values_that_do_not_fit(pe_ports):
    codec = PayloadCodec(pe_ports["i__payload"])
    beat = {"lanes.operand": [16, 0, 0, 0], "lanes.shift": [0] * 4, "lanes.weight": [0] * 4,
            "first": 0, "last": 0}
    with pytest.raises(ValueError, match=r"lanes\[0\].operand: 16 does not fit signed\(5\)"):
        codec.pack(beat)


def test_case_knobs_are_validated():
    with pytest.raises(ValueError, match="backpressure=1.0"):
        BenchCase("x", {}, {}, np.zeros(0), backpressure=1.0)
    with pytest.raises(ValueError, match="'a b'"):
        BenchCase("a b", {}, {}, np.zeros(0))
    with pytest.raises(ValueError, match="simulator 'vcs'"):
        selected_simulator("vcs")


def test_a_wrong_golden_value_fails_with_expected_got_cycle_and_inputs(simulator):
    case = vectors.pe_corners(TINY, backpressure=0.3)
    case.outputs["sum"][2] += 1
    with pytest.raises(AssertionError) as failure:
        run_bench("compute_unit", TINY, [case], simulator=simulator)
    text = str(failure.value)
    assert "1 mismatching beat(s)" in text
    assert "beat 2, cycle" in text
    assert f"sum: expected {case.outputs['sum'][2]}, got {case.outputs['sum'][2] - 1}" in text
    assert "in beat 2: lanes.operand=" in text


class _DropsValid(EncodingUnit):
    """Broken on purpose: withdraws an output beat that is not taken."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        with m.If(self.o.valid & ~self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


class _ChangesPayload(EncodingUnit):
    """Broken on purpose: changes a waiting output beat (a working encoder inside, whose
    ``last`` is inverted at every other cycle an output beat waits)."""

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = EncodingUnit(config=self.config)
        wiring.connect(m, wiring.flipped(self.i), inner.i)
        flip = Signal()
        with m.If(self.o.valid & ~self.o.ready):
            m.d.sync += flip.eq(~flip)
        m.d.comb += [inner.mode.eq(self.mode), self.o.valid.eq(inner.o.valid),
                     inner.o.ready.eq(self.o.ready), self.o.payload.eq(inner.o.payload),
                     self.o.payload.last.eq(inner.o.payload.last ^ flip)]
        return m


@pytest.mark.parametrize("broken, message", [
    (_DropsValid, "valid dropped in cycle"),
    (_ChangesPayload, "payload changed in cycle"),
])
def test_monitor_catches_stream_rule_violations(broken, message, simulator):
    info = ComponentInfo(f"broken_{broken.__name__.lower().strip('_')}", broken,
                         f"broken_{broken.__name__.lower().strip('_')}")
    case = next(c for c in vectors.encoder_cases(TINY) if c.name.startswith("diff_padding"))
    with pytest.raises(AssertionError, match=message):
        run_bench(info, TINY, [case], simulator=simulator)


def test_spatial_jobs_send_the_row_before_and_expect_the_plain_product():
    rng = np.random.default_rng(4)
    xs = [rng.integers(-128, 128, (5, 70)).astype(np.int8) for _ in range(2)]
    ws = [rng.integers(-128, 128, (70, 3)).astype(np.int8)] * 2
    bias = np.array([1, 2, 3])
    jobs = ditto_jobs(xs, ws, TINY, weights_change=False, bias=bias,
                      modes=[Mode.SPATIAL, Mode.SPATIAL])
    # Two column blocks of two steps of two reduction chunks (weight_depth 64).
    assert [job.mode for job in jobs] == [Mode.SPATIAL] * 8
    assert [job.accumulate for job in jobs] == [False, True] * 4
    first = jobs[0]
    assert (first.x_prev[0] == 0).all()
    assert (first.x_prev[1:] == xs[0][:-1, :64]).all()
    assert (previous_rows(xs[0]) == np.vstack([np.zeros((1, 70)), xs[0][:-1]])).all()
    want = xs[1].astype(np.int64) @ ws[1][:, :2].astype(np.int64) + bias[:2]
    assert (jobs[3].expected == want).all()


def test_ditto_jobs_reject_a_first_diff_step():
    x = np.zeros((2, 4), np.int8)
    with pytest.raises(ValueError, match="the first step cannot be DIFF"):
        ditto_jobs([x, x], [np.zeros((4, 2), np.int8)] * 2, TINY, weights_change=False,
                   modes=[Mode.DIFF, Mode.DIFF])
