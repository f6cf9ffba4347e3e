"""DefoUnit (Amaranth simulator) against the model's DefoTable on random histories."""

import numpy as np

from ditto.config import preset
from ditto.enums import Mode
from ditto.hdl.defo import DefoUnit
from ditto.sim.defo import DefoTable
from ditto.verif.amaranth_sim import run_testbench

CONFIG = preset("tiny").replace(defo_entries=8, defo_cycle_bits=12)


def test_defo_unit_answers_like_the_model():
    rng = np.random.default_rng(0)
    dut = DefoUnit(config=CONFIG)
    model = DefoTable(entries=CONFIG.defo_entries)
    events = []
    for _ in range(400):
        layer = int(rng.integers(0, CONFIG.defo_entries))
        if rng.random() < 0.4:
            # Close cycle counts (ties included) exercise the strict comparison.
            events.append(("record", layer, int(rng.integers(0, 3)), int(rng.integers(0, 6))))
        else:
            events.append(("query", layer, int(rng.integers(0, 5)), 0))
    answers = []

    async def bench(ctx):
        for kind, layer, step, cycles in events:
            if kind == "record":
                ctx.set(dut.record.payload, {"layer": layer, "step": step, "cycles": cycles})
                ctx.set(dut.record.valid, 1)
                await ctx.tick()
                ctx.set(dut.record.valid, 0)
            else:
                ctx.set(dut.query.payload, {"layer": layer, "step": step})
                ctx.set(dut.query.valid, 1)
                ctx.set(dut.answer.ready, 1)
                await ctx.tick()
                ctx.set(dut.query.valid, 0)
                assert ctx.get(dut.answer.valid)
                answer = ctx.get(dut.answer.payload)
                answers.append((answer.mode, int(answer.known)))

    run_testbench(dut, bench)

    expected = []
    for kind, layer, step, cycles in events:
        if kind == "record":
            model.record(layer, step, cycles)
        else:
            try:
                expected.append((model.mode_for(layer, step), 1))
            except KeyError:
                expected.append((Mode.ACT, 0))
    assert answers == expected
    assert sum(known == 0 for _, known in expected) > 0, "history never asks too early"
    assert sum(mode is Mode.ACT and step > 1 for (mode, _), (_, _, step, _) in
               zip(expected, [e for e in events if e[0] == "query"], strict=True)) > 0
