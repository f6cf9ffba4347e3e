"""DefoUnit (Amaranth simulator) against the model's DefoTable on random histories, and
the rest of its contract: a record and a query in one cycle, ``clear`` and ``busy``, a
held answer."""

import copy

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


def _model_answer(model: DefoTable, layer: int, step: int) -> tuple[Mode, int]:
    try:
        return model.mode_for(layer, step), 1
    except KeyError:
        return Mode.ACT, 0


async def _record(ctx, dut, layer, step, cycles):
    ctx.set(dut.record.payload, {"layer": layer, "step": step, "cycles": cycles})
    ctx.set(dut.record.valid, 1)
    assert ctx.get(dut.record.ready)
    await ctx.tick()
    ctx.set(dut.record.valid, 0)


async def _ask(ctx, dut, layer, step, *, record=None):
    """One query with ``answer`` ready (and, if given, a record in the same cycle); the
    answer must be valid in the next cycle."""
    ctx.set(dut.answer.ready, 1)
    ctx.set(dut.query.payload, {"layer": layer, "step": step})
    ctx.set(dut.query.valid, 1)
    if record is not None:
        ctx.set(dut.record.payload, dict(zip(("layer", "step", "cycles"), record,
                                             strict=True)))
        ctx.set(dut.record.valid, 1)
        assert ctx.get(dut.record.ready)
    assert ctx.get(dut.query.ready)
    await ctx.tick()
    ctx.set(dut.query.valid, 0)
    ctx.set(dut.record.valid, 0)
    assert ctx.get(dut.answer.valid)
    answer = ctx.get(dut.answer.payload)
    return answer.mode, int(answer.known)


def test_a_record_and_a_query_of_one_layer_in_one_cycle_answer_from_the_old_entry():
    dut = DefoUnit(config=CONFIG)
    answers = []

    async def bench(ctx):
        await _record(ctx, dut, 4, 0, 9)
        # The DIFF step's record arrives with the query: the query still sees no DIFF
        # record (unknown, ACT), the next one sees 3 < 9 (DIFF).
        answers.append(await _ask(ctx, dut, 4, 2, record=(4, 1, 3)))
        answers.append(await _ask(ctx, dut, 4, 2))
        # The DIFF step recorded again, dearer than ACT, with a query: the old 3 still wins.
        answers.append(await _ask(ctx, dut, 4, 2, record=(4, 1, 12)))
        answers.append(await _ask(ctx, dut, 4, 2))

    run_testbench(dut, bench)
    assert answers == [(Mode.ACT, 0), (Mode.DIFF, 1), (Mode.DIFF, 1), (Mode.ACT, 1)]


def test_clear_forgets_every_entry_and_busy_refuses_everything_meanwhile():
    entries = CONFIG.defo_entries
    dut = DefoUnit(config=CONFIG)
    seen = {}

    async def bench(ctx):
        for layer in range(entries):
            await _record(ctx, dut, layer, 0, 9)
            await _record(ctx, dut, layer, 1, 4)
        seen["before"] = [await _ask(ctx, dut, layer, 2) for layer in range(entries)]
        assert not ctx.get(dut.busy)
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        # A record that would make layer 5 known again and a query, offered throughout
        # the clear: neither may be taken, and no answer may appear.
        ctx.set(dut.record.payload, {"layer": 5, "step": 1, "cycles": 1})
        ctx.set(dut.record.valid, 1)
        ctx.set(dut.query.payload, {"layer": 5, "step": 2})
        ctx.set(dut.query.valid, 1)
        busy = 0
        while ctx.get(dut.busy) and busy <= 2 * entries:
            assert not ctx.get(dut.record.ready) and not ctx.get(dut.query.ready)
            assert not ctx.get(dut.answer.valid)
            busy += 1
            await ctx.tick()
        ctx.set(dut.record.valid, 0)
        ctx.set(dut.query.valid, 0)
        seen["busy"] = busy
        seen["after"] = [await _ask(ctx, dut, layer, step)
                         for layer in range(entries) for step in (0, 1, 2)]
        # Recording works again after the clear.
        await _record(ctx, dut, 5, 0, 3)
        await _record(ctx, dut, 5, 1, 2)
        seen["again"] = await _ask(ctx, dut, 5, 2)

    run_testbench(dut, bench)
    assert seen["before"] == [(Mode.DIFF, 1)] * entries
    assert seen["busy"] == entries  # one entry a cycle
    assert seen["after"] == [(Mode.ACT, 1), (Mode.DIFF, 1), (Mode.ACT, 0)] * entries
    assert seen["again"] == (Mode.DIFF, 1)


def test_a_held_answer_stays_and_blocks_queries_until_taken():
    dut = DefoUnit(config=CONFIG)
    held, answers = [], []

    async def bench(ctx):
        await _record(ctx, dut, 2, 0, 9)
        await _record(ctx, dut, 2, 1, 4)
        ctx.set(dut.answer.ready, 0)
        ctx.set(dut.query.payload, {"layer": 2, "step": 2})
        ctx.set(dut.query.valid, 1)
        assert ctx.get(dut.query.ready)
        await ctx.tick()
        # The next query waits while the answer is held; a record of the same layer
        # meanwhile must not change the answer already given.
        ctx.set(dut.query.payload, {"layer": 2, "step": 0})
        for cycle in range(4):
            if cycle == 1:
                ctx.set(dut.record.payload, {"layer": 2, "step": 1, "cycles": 20})
                ctx.set(dut.record.valid, 1)
            assert ctx.get(dut.answer.valid) and not ctx.get(dut.query.ready)
            answer = ctx.get(dut.answer.payload)
            held.append((answer.mode, int(answer.known)))
            await ctx.tick()
            ctx.set(dut.record.valid, 0)
        # Taken: the waiting query goes in in the same cycle (one answer a cycle).
        ctx.set(dut.answer.ready, 1)
        assert ctx.get(dut.query.ready)
        await ctx.tick()
        ctx.set(dut.query.valid, 0)
        answer = ctx.get(dut.answer.payload)
        answers.append((bool(ctx.get(dut.answer.valid)), answer.mode, int(answer.known)))
        answers.append(await _ask(ctx, dut, 2, 2))
        await ctx.tick()
        answers.append(bool(ctx.get(dut.answer.valid)))  # one answer per query

    run_testbench(dut, bench)
    assert held == [(Mode.DIFF, 1)] * 4
    assert answers == [(True, Mode.ACT, 1), (Mode.ACT, 1), False]


def test_defo_unit_answers_like_the_model_under_backpressure():
    """Random records, queries held until taken and a randomly ready ``answer``, with
    records and queries in the same cycles: answers in order, each equal to the model's
    answer just before that cycle's record, each held unchanged until taken."""
    rng = np.random.default_rng(1)
    entries = CONFIG.defo_entries
    dut = DefoUnit(config=CONFIG)
    model = DefoTable(entries=entries)
    expected, answers = [], []
    stats = {"same_cycle_changes": 0, "held": 0}

    async def bench(ctx):
        query, held = None, None
        for _ in range(800):
            record = None
            if rng.random() < 0.4:
                record = (int(rng.integers(entries)), int(rng.integers(0, 3)),
                          int(rng.integers(0, 6)))
                ctx.set(dut.record.payload, dict(zip(("layer", "step", "cycles"), record,
                                                     strict=True)))
            ctx.set(dut.record.valid, record is not None)
            if query is None and rng.random() < 0.6:
                query = (int(rng.integers(entries)), int(rng.integers(0, 5)))
                ctx.set(dut.query.payload, {"layer": query[0], "step": query[1]})
            ctx.set(dut.query.valid, query is not None)
            ctx.set(dut.answer.ready, bool(rng.random() < 0.5))
            if ctx.get(dut.answer.valid):
                answer = ctx.get(dut.answer.payload)
                answer = (answer.mode, int(answer.known))
                assert held is None or answer == held, "answer changed while held"
                if ctx.get(dut.answer.ready):
                    answers.append(answer)
                    held = None
                else:
                    held = answer
                    stats["held"] += 1
            if query is not None and ctx.get(dut.query.ready):
                before = _model_answer(model, *query)
                expected.append(before)
                if record is not None and record[0] == query[0]:
                    after = copy.deepcopy(model)
                    after.record(*record)
                    stats["same_cycle_changes"] += _model_answer(after, *query) != before
                query = None
            if record is not None:
                assert ctx.get(dut.record.ready)
                model.record(*record)
            await ctx.tick()
        ctx.set(dut.record.valid, 0)
        ctx.set(dut.query.valid, 0)
        ctx.set(dut.answer.ready, 1)
        if ctx.get(dut.answer.valid):
            answer = ctx.get(dut.answer.payload)
            answers.append((answer.mode, int(answer.known)))
        await ctx.tick()
        assert not ctx.get(dut.answer.valid)

    run_testbench(dut, bench)
    assert answers == expected
    assert len(expected) > 200 and stats["held"] > 100
    assert stats["same_cycle_changes"] > 0, "no record changed a same-cycle query's answer"
