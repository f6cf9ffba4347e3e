"""DefoUnit (Amaranth simulator), with each probe set of the model's ``PROBES`` (the paper's
Defo, Ditto+, all three modes), against the model's DefoTable on random histories, on
hand-worked choices and ties, and the rest of its contract: a record and a query in one
cycle, ``clear`` and ``busy``, a held answer."""

import copy
import json

import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.lib import memory

from ditto.config import preset
from ditto.enums import Mode
from ditto.hdl import never_elaborated
from ditto.hdl.defo import DefoUnit
from ditto.hdl.generate import COMPONENTS, generate
from ditto.sim.defo import PROBES, DefoTable
from ditto.verif.amaranth_sim import run_testbench

CONFIG = preset("tiny").replace(defo_entries=8, defo_cycle_bits=12)

A, D, S = Mode.ACT, Mode.DIFF, Mode.SPATIAL

#: Every probe set of the model, by name (``PROBES[name]``).
VARIANTS = pytest.mark.parametrize("name", list(PROBES))


def _inspected(unit: DefoUnit) -> DefoUnit:
    never_elaborated(unit)
    return unit


def test_init():
    assert _inspected(DefoUnit(config=CONFIG)).probes == (A, D)
    for probes in [*PROBES.values(), (A,), (S,), (S, A, D)]:
        assert _inspected(DefoUnit(config=CONFIG, probes=probes)).probes == probes
    assert _inspected(DefoUnit(config=CONFIG, probes=[S, D])).probes == (S, D)
    unit = _inspected(DefoUnit(config=CONFIG))
    with pytest.raises(AttributeError):
        unit.probes = (A,)
    assert not hasattr(unit, "spatial")


@pytest.mark.parametrize("probes,error,message", [
    (A, TypeError, r"probes must be a tuple of Mode values, not <Mode.ACT: 0>"),
    ("ACT", TypeError, r"probes must be a tuple of Mode values, not 'ACT'"),
    ((0, 1), TypeError, r"probes must be a tuple of Mode values, not \(0, 1\)"),
    ((A, "DIFF"), TypeError, r"not \(<Mode.ACT: 0>, 'DIFF'\)"),
    ((), ValueError, r"probes is empty: \(\)"),
    ((A, D, A), ValueError, r"probes repeats a mode: \(<Mode.ACT: 0>, <Mode.DIFF: 1>, "),
    ((D, A), ValueError, r"probes starts with DIFF, which needs a previous step: "
                         r"\(<Mode.DIFF: 1>, <Mode.ACT: 0>\)"),
    ((D,), ValueError, r"probes starts with DIFF"),
], ids=["a_mode", "a_name", "ints", "a_name_inside", "empty", "repeated", "diff_first",
        "only_diff"])
def test_init_wrong_probes(probes, error, message):
    with pytest.raises(error, match=message):
        DefoUnit(config=CONFIG, probes=probes)
    with pytest.raises(error, match=message):
        DefoUnit(config=CONFIG, asic=True, probes=probes)


@VARIANTS
def test_one_memory_per_probe_in_probe_order(name):
    probes = PROBES[name]
    fragment = Fragment.get(DefoUnit(config=CONFIG, probes=probes), None)
    memories = [(sub_name, sub.origins[0]) for sub, sub_name, _ in fragment.subfragments
                if any(isinstance(origin, memory.Memory) for origin in sub.origins or ())]
    assert [sub_name for sub_name, _ in memories] == [mode.name.lower() for mode in probes]
    # entries x probes x (cycle_bits + 1) bits.
    assert all(mem.depth == CONFIG.defo_entries and mem.shape.size == CONFIG.defo_cycle_bits + 1
               for _, mem in memories)


def test_the_generated_defo_unit_is_the_ditto_plus_one(tmp_path):
    info = COMPONENTS["defo_unit"]
    assert _inspected(info.build(CONFIG)).probes == (S, D) == PROBES["ditto_plus"]
    assert _inspected(info.build(CONFIG, asic=True)).probes == (S, D)
    manifest = generate(CONFIG, tmp_path, components=["defo_unit"])
    assert manifest["components"]["defo_unit"]["options"] == {"probes": ["SPATIAL", "DIFF"]}
    written = json.loads((tmp_path / "manifest.json").read_text())
    assert written["components"]["defo_unit"]["options"] == {"probes": ["SPATIAL", "DIFF"]}


def _model_answer(model: DefoTable, layer: int, step: int) -> tuple[Mode, int]:
    try:
        return model.mode_for(layer, step), 1
    except KeyError:
        return Mode.ACT, 0


@VARIANTS
def test_defo_unit_answers_like_the_model(name):
    rng = np.random.default_rng(0)
    dut = DefoUnit(config=CONFIG, probes=PROBES[name])
    model = DefoTable(entries=CONFIG.defo_entries, probes=PROBES[name])
    probes = len(PROBES[name])
    events = []
    for _ in range(600):
        layer = int(rng.integers(0, CONFIG.defo_entries))
        if rng.random() < 0.4:
            # Close cycle counts (ties included) exercise the tie order; step 3 (and step 2
            # of a two-probe unit) must be ignored.
            events.append(("record", layer, int(rng.integers(0, 4)), int(rng.integers(0, 6))))
        else:
            events.append(("query", layer, int(rng.integers(0, 6)), 0))
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

    expected, later, ties = [], [], 0
    recorded = {}
    for kind, layer, step, cycles in events:
        if kind == "record":
            model.record(layer, step, cycles)
            recorded[layer, step] = cycles
            continue
        expected.append(_model_answer(model, layer, step))
        mode, known = expected[-1]
        if step >= probes and known:
            later.append(mode)
            costs = [recorded[layer, probe] for probe in range(probes)]
            ties += costs.count(min(costs)) > 1
    assert answers == expected
    assert sum(known == 0 for _, known in expected) > 0, "history never asks too early"
    assert set(later) == set(PROBES[name]), "some mode never won a later step"
    assert ties > 10, "too few ties for the cheapest mode"


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


#: Hand-worked choices of the three-probe unit: the cycles of the ACT, DIFF and SPATIAL
#: probes (steps 0, 1, 2) and the mode of every later step. 4095 is the largest 12-bit
#: count.
CHOICES = {
    "spatial_cheapest": (10, 8, 5, Mode.SPATIAL),
    "diff_cheapest": (10, 4, 5, Mode.DIFF),
    "act_cheapest": (3, 4, 5, Mode.ACT),
    "spatial_diff_tie_goes_to_spatial": (10, 6, 6, Mode.SPATIAL),
    "act_spatial_tie_goes_to_act": (6, 9, 6, Mode.ACT),
    "act_diff_tie_goes_to_act": (6, 6, 9, Mode.ACT),
    "three_way_tie_goes_to_act": (7, 7, 7, Mode.ACT),
    "diff_one_below_act_and_spatial": (4095, 4094, 4095, Mode.DIFF),
}


@pytest.mark.parametrize("act,diff,spatial,mode", CHOICES.values(), ids=CHOICES.keys())
def test_later_steps_run_the_cheapest_probe(act, diff, spatial, mode):
    dut = DefoUnit(config=CONFIG, probes=PROBES["three"])
    answers = []

    async def bench(ctx):
        for step, cycles in enumerate((act, diff, spatial)):
            await _record(ctx, dut, 6, step, cycles)
        answers.extend([await _ask(ctx, dut, 6, step) for step in (0, 1, 2, 3, 4, 65535)])

    run_testbench(dut, bench)
    assert answers == [(Mode.ACT, 1), (Mode.DIFF, 1), (Mode.SPATIAL, 1)] + [(mode, 1)] * 3


#: Hand-worked Ditto+ choices: the cycles of the SPATIAL and DIFF probes (steps 0, 1) and
#: the mode of every later step.
DITTO_PLUS_CHOICES = {
    "diff_cheaper": (50, 40, D),
    "spatial_cheaper": (40, 50, S),
    "tie_goes_to_spatial": (60, 60, S),
    "zero_tie_goes_to_spatial": (0, 0, S),
    "diff_one_below": (4095, 4094, D),
    "spatial_one_below": (4094, 4095, S),
}


@pytest.mark.parametrize("spatial,diff,mode", DITTO_PLUS_CHOICES.values(),
                         ids=DITTO_PLUS_CHOICES.keys())
def test_ditto_plus_probes_spatial_then_diff_and_runs_diff_only_if_strictly_cheaper(
        spatial, diff, mode):
    dut = DefoUnit(config=CONFIG, probes=PROBES["ditto_plus"])
    answers = []

    async def bench(ctx):
        await _record(ctx, dut, 6, 0, spatial)
        await _record(ctx, dut, 6, 1, diff)
        await _record(ctx, dut, 6, 2, 1)  # no third probe: ignored
        answers.extend([await _ask(ctx, dut, 6, step) for step in (0, 1, 2, 3, 65535)])

    run_testbench(dut, bench)
    assert answers == [(S, 1), (D, 1)] + [(mode, 1)] * 3


def test_a_ditto_plus_layer_is_unknown_act_until_spatial_and_diff_are_recorded():
    dut = DefoUnit(config=CONFIG, probes=PROBES["ditto_plus"])
    answers = []

    async def bench(ctx):
        # Layer 3: SPATIAL only, then DIFF too. Layer 7: DIFF only. Layer 1: nothing.
        await _record(ctx, dut, 3, 0, 9)
        answers.append(await _ask(ctx, dut, 3, 2))
        await _record(ctx, dut, 3, 1, 9)
        answers.append(await _ask(ctx, dut, 3, 2))
        await _record(ctx, dut, 7, 1, 1)
        answers.append(await _ask(ctx, dut, 7, 4))
        answers.extend([await _ask(ctx, dut, 1, step) for step in (0, 1, 2)])

    run_testbench(dut, bench)
    assert answers == [(A, 0), (S, 1), (A, 0), (S, 1), (D, 1), (A, 0)]


def test_the_defo_unit_ignores_step_2_and_runs_diff_only_if_strictly_cheaper():
    dut = DefoUnit(config=CONFIG)
    answers = []

    async def bench(ctx):
        # Layer 1: a cheap step 2 is not a probe. Layer 2: DIFF ties with ACT.
        for layer, cycles in ((1, (10, 8, 1)), (2, (6, 6, 1))):
            for step, count in enumerate(cycles):
                await _record(ctx, dut, layer, step, count)
        answers.extend([await _ask(ctx, dut, layer, step)
                        for layer in (1, 2) for step in (1, 2, 3)])

    run_testbench(dut, bench)
    assert answers == [(Mode.DIFF, 1), (Mode.DIFF, 1), (Mode.DIFF, 1),
                       (Mode.DIFF, 1), (Mode.ACT, 1), (Mode.ACT, 1)]


def test_a_three_probe_layer_is_known_only_once_all_three_probes_are_recorded():
    dut = DefoUnit(config=CONFIG, probes=PROBES["three"])
    answers = []

    async def bench(ctx):
        await _record(ctx, dut, 3, 0, 9)
        await _record(ctx, dut, 3, 1, 4)
        answers.append(await _ask(ctx, dut, 3, 3))
        await _record(ctx, dut, 3, 2, 2)
        answers.append(await _ask(ctx, dut, 3, 3))
        # Steps 2 and 1 of layer 7 without its ACT step.
        await _record(ctx, dut, 7, 2, 2)
        await _record(ctx, dut, 7, 1, 1)
        answers.append(await _ask(ctx, dut, 7, 5))

    run_testbench(dut, bench)
    assert answers == [(Mode.ACT, 0), (Mode.SPATIAL, 1), (Mode.ACT, 0)]


#: Per probe set: records (layer 4) before a query of a later step that comes with a record
#: of the last probe step, and the answers of that query, the next, a second query with a
#: record that changes the choice back, and the next.
SAME_CYCLE = {
    # The DIFF step's record arrives with the query: the query still sees no DIFF record
    # (unknown, ACT), the next one sees 3 < 9 (DIFF); DIFF recorded again, dearer than ACT,
    # with a query: the old 3 still wins.
    "defo": ([(0, 9)], (1, 3), (1, 12), [(A, 0), (D, 1), (D, 1), (A, 1)]),
    # The same with SPATIAL at step 0: back to SPATIAL, not ACT.
    "ditto_plus": ([(0, 9)], (1, 3), (1, 12), [(A, 0), (D, 1), (D, 1), (S, 1)]),
    # The same with the SPATIAL step, DIFF at 7: 3 < 7 < 9 wins, then 12 > 7 loses to DIFF.
    "three": ([(0, 9), (1, 7)], (2, 3), (2, 12), [(A, 0), (S, 1), (S, 1), (D, 1)]),
}


@VARIANTS
def test_a_record_and_a_query_of_one_layer_in_one_cycle_answer_from_the_old_entry(name):
    records, first, second, expected = SAME_CYCLE[name]
    later = len(PROBES[name])
    dut = DefoUnit(config=CONFIG, probes=PROBES[name])
    answers = []

    async def bench(ctx):
        for step, cycles in records:
            await _record(ctx, dut, 4, step, cycles)
        answers.append(await _ask(ctx, dut, 4, later, record=(4, *first)))
        answers.append(await _ask(ctx, dut, 4, later))
        answers.append(await _ask(ctx, dut, 4, later, record=(4, *second)))
        answers.append(await _ask(ctx, dut, 4, later))

    run_testbench(dut, bench)
    assert answers == expected


@VARIANTS
def test_clear_forgets_every_entry_and_busy_refuses_everything_meanwhile(name):
    entries = CONFIG.defo_entries
    probes = len(PROBES[name])
    dut = DefoUnit(config=CONFIG, probes=PROBES[name])
    # Probes at 9, 4 (and 2): the last probe is the cheapest.
    cycles = (9, 4, 2)[:probes]
    last = PROBES[name][-1]
    seen = {}

    async def bench(ctx):
        for layer in range(entries):
            for step, count in enumerate(cycles):
                await _record(ctx, dut, layer, step, count)
        seen["before"] = [await _ask(ctx, dut, layer, probes) for layer in range(entries)]
        assert not ctx.get(dut.busy)
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        # A record that would make layer 5 known again and a query, offered throughout
        # the clear: neither may be taken, and no answer may appear.
        ctx.set(dut.record.payload, {"layer": 5, "step": probes - 1, "cycles": 1})
        ctx.set(dut.record.valid, 1)
        ctx.set(dut.query.payload, {"layer": 5, "step": probes})
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
                         for layer in range(entries) for step in range(probes + 1)]
        # Every probe's memory was cleared: recording all probes but one, whichever,
        # leaves a layer unknown.
        seen["partly"] = []
        for missing in range(probes):
            for step, count in enumerate(cycles):
                if step != missing:
                    await _record(ctx, dut, missing, step, count)
            seen["partly"].append(await _ask(ctx, dut, missing, probes))
        # Recording works again after the clear.
        for step, count in enumerate(cycles):
            await _record(ctx, dut, 5, step, count)
        seen["again"] = await _ask(ctx, dut, 5, probes)

    run_testbench(dut, bench)
    assert seen["before"] == [(last, 1)] * entries
    assert seen["busy"] == entries  # one entry a cycle
    assert seen["after"] == ([(mode, 1) for mode in dut.probes] + [(Mode.ACT, 0)]) * entries
    assert seen["partly"] == [(Mode.ACT, 0)] * probes
    assert seen["again"] == (last, 1)


#: Per probe set: the mode after DIFF (step 1, at 4) is recorded again at 20 in
#: :func:`test_a_held_answer_stays_and_blocks_queries_until_taken`.
AFTER_DEARER_DIFF = {"defo": A, "ditto_plus": S, "three": S}


@VARIANTS
def test_a_held_answer_stays_and_blocks_queries_until_taken(name):
    later = len(PROBES[name])
    dut = DefoUnit(config=CONFIG, probes=PROBES[name])
    # Step 0 at 9, DIFF at 4 (and SPATIAL at 6): DIFF; DIFF recorded again at 20 while an
    # answer is held: step 0's mode (SPATIAL of the three).
    cycles = (9, 4, 6)[:later]
    after = AFTER_DEARER_DIFF[name]
    held, answers = [], []

    async def bench(ctx):
        for step, count in enumerate(cycles):
            await _record(ctx, dut, 2, step, count)
        ctx.set(dut.answer.ready, 0)
        ctx.set(dut.query.payload, {"layer": 2, "step": later})
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
        answers.append(await _ask(ctx, dut, 2, later))
        await ctx.tick()
        answers.append(bool(ctx.get(dut.answer.valid)))  # one answer per query

    run_testbench(dut, bench)
    assert held == [(Mode.DIFF, 1)] * 4
    assert answers == [(True, PROBES[name][0], 1), (after, 1), False]


@VARIANTS
def test_defo_unit_answers_like_the_model_under_backpressure(name):
    """Random records, queries held until taken and a randomly ready ``answer``, with
    records and queries in the same cycles: answers in order, each equal to the model's
    answer just before that cycle's record, each held unchanged until taken."""
    rng = np.random.default_rng(1)
    entries = CONFIG.defo_entries
    dut = DefoUnit(config=CONFIG, probes=PROBES[name])
    model = DefoTable(entries=entries, probes=PROBES[name])
    queries, expected, answers = [], [], []
    stats = {"same_cycle_changes": 0, "held": 0}

    async def bench(ctx):
        query, held = None, None
        for _ in range(800):
            record = None
            if rng.random() < 0.4:
                record = (int(rng.integers(entries)), int(rng.integers(0, 4)),
                          int(rng.integers(0, 6)))
                ctx.set(dut.record.payload, dict(zip(("layer", "step", "cycles"), record,
                                                     strict=True)))
            ctx.set(dut.record.valid, record is not None)
            if query is None and rng.random() < 0.6:
                query = (int(rng.integers(entries)), int(rng.integers(0, 6)))
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
                queries.append(query)
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
    later = [mode for (_, step), (mode, known) in zip(queries, expected, strict=True)
             if known and step >= len(PROBES[name])]
    assert set(later) == set(PROBES[name]), "some mode never won a later step"
