"""The model's Defo: ``cheapest_mode``, ``check_probes`` and ``DefoTable`` with each probe set
of ``PROBES``, on hand-worked cycle counts. (The paper's two-mode rule on its own:
tests/sim/test_analysis.py.)"""

import re

import pytest

from ditto.enums import Mode
from ditto.sim.defo import PROBES, DefoTable, cheapest_mode, check_probes

A, D, S = Mode.ACT, Mode.DIFF, Mode.SPATIAL

#: Every probe set of the model, by name.
EACH_PROBE_SET = pytest.mark.parametrize("probes", PROBES.values(), ids=PROBES.keys())


@pytest.mark.parametrize("cycles,mode", [
    ({A: 100, D: 60}, D),
    ({A: 60, D: 100}, A),
    ({A: 60, D: 60}, A),
    ({A: 100, D: 80, S: 50}, S),
    ({A: 100, D: 40, S: 50}, D),
    ({A: 30, D: 40, S: 50}, A),
    ({A: 100, D: 60, S: 60}, S),
    ({A: 60, D: 90, S: 60}, A),
    ({A: 60, D: 60, S: 90}, A),
    ({A: 7, D: 7, S: 7}, A),
    ({D: 2.5, S: 2.5}, S),  # the order of the mapping does not matter
    ({S: 2.5, D: 2.5}, S),
    ({D: 3.0}, D),
], ids=["diff_cheaper", "act_cheaper", "act_diff_tie", "spatial_cheapest", "diff_cheapest",
        "act_cheapest", "spatial_diff_tie", "act_spatial_tie", "act_diff_tie_of_three",
        "three_way_tie", "diff_spatial_tie_in_order", "spatial_diff_tie_in_order", "only_one"])
def test_cheapest_mode_takes_the_fewest_cycles_ties_to_act_then_spatial(cycles, mode):
    assert cheapest_mode(cycles) is mode


def test_cheapest_mode_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="no recorded mode"):
        cheapest_mode({})


def test_probe_sets_are_in_step_order():
    assert PROBES == {"defo": (A, D), "ditto_plus": (S, D), "three": (A, D, S)}
    assert DefoTable().probes == (A, D)
    assert DefoTable(probes=[S, D]).probes == (S, D)  # any sequence, kept as a tuple


@pytest.mark.parametrize("probes,message", [
    ((D, A), "step 0 cannot run DIFF"),
    ((D,), "step 0 cannot run DIFF"),
    ((A, D, A), "each mode is probed once"),
    ((S, S), "each mode is probed once"),
    ((), "give one or more Mode values"),
    ((0, 1), "give one or more Mode values"),
    ((A, "DIFF"), "give one or more Mode values"),
], ids=["diff_first", "only_diff", "act_twice", "spatial_twice", "empty", "ints", "a_name"])
def test_check_probes_rejects_a_wrong_probe_set(probes, message):
    with pytest.raises(ValueError, match=re.escape(f"probes={probes!r}: {message}")):
        check_probes(probes)
    with pytest.raises(ValueError, match=message):
        DefoTable(probes=probes)


@pytest.mark.parametrize("probes", [(A,), (S,), (A, S), (S, A, D), *PROBES.values()])
def test_check_probes_takes_distinct_modes_diff_not_first(probes):
    assert check_probes(list(probes)) == probes


def _table(probes, **layers):
    """A table with the probe steps of layers ``l<n>=(cycles at step 0, 1, ...)``."""
    table = DefoTable(entries=8, probes=probes)
    for name, cycles in layers.items():
        for step, count in enumerate(cycles):
            table.record(int(name[1:]), step, count)
    return table


@EACH_PROBE_SET
def test_probe_steps_run_their_probe_and_a_layer_is_known_once_every_probe_is(probes):
    later = len(probes)
    table = _table(probes, l0=(5, 9, 7)[:later])
    # The probe steps run their probe, whatever was recorded (or not: layer 5).
    for layer in (0, 5):
        assert tuple(table.mode_for(layer, step) for step in range(later)) == probes
    assert table.mode_for(0, later) is probes[0]  # the cheapest probe
    # Every probe but one recorded, whichever: not known.
    for missing in range(later):
        layer = 1 + missing
        for step in range(later):
            if step != missing:
                table.record(layer, step, 1)
        with pytest.raises(KeyError, match=rf"layer {layer}'s first {later} steps"):
            table.mode_for(layer, later)
    # Steps after the probes are not kept, and a layer outside the table is an error.
    table.record(0, later, 0)
    table.record(0, 65535, 0)
    assert table.mode_for(0, later + 1) is table.mode_for(0, later)
    with pytest.raises(IndexError, match="layer id 8 outside the Defo table's 8 entries"):
        table.record(8, 0, 1)


def test_three_probe_table_probes_act_diff_spatial_then_runs_the_cheapest():
    table = _table(PROBES["three"], l0=(100, 80, 50), l1=(100, 40, 50), l2=(30, 40, 50))
    for layer in (0, 1, 2, 5):
        assert [table.mode_for(layer, step) for step in range(3)] == [A, D, S]
    assert [table.mode_for(0, step) for step in (3, 4, 49)] == [S, S, S]
    assert table.mode_for(1, 3) is D
    assert table.mode_for(2, 3) is A


def test_three_probe_table_breaks_ties_toward_act_then_spatial():
    table = _table(PROBES["three"], l0=(100, 60, 60), l1=(60, 90, 60), l2=(60, 60, 90),
                   l3=(5, 5, 5))
    assert [table.mode_for(layer, 3) for layer in range(4)] == [S, A, A, A]


def test_three_probe_table_knows_a_layer_only_once_all_three_probes_are_recorded():
    table = _table(PROBES["three"], l0=(100, 60), l1=(100, 60, 10))
    with pytest.raises(KeyError, match="layer 0's first 3 steps"):
        table.mode_for(0, 3)
    table.record(0, 2, 70)
    assert table.mode_for(0, 3) is D
    assert table.mode_for(1, 3) is S
    # Probes recorded out of order count the same.
    table.record(2, 2, 1)
    table.record(2, 1, 2)
    with pytest.raises(KeyError, match="layer 2"):
        table.mode_for(2, 3)
    table.record(2, 0, 3)
    assert table.mode_for(2, 3) is S


def test_a_probe_recorded_again_replaces_the_earlier_count_and_later_steps_are_not_kept():
    table = _table(PROBES["three"], l0=(100, 80, 50))
    table.record(0, 2, 200)
    assert table.mode_for(0, 3) is D
    table.record(0, 3, 1)  # not a probe step
    table.record(0, 7, 1)
    assert table.mode_for(0, 3) is D


def test_ditto_plus_table_probes_spatial_then_diff_and_runs_diff_only_if_strictly_cheaper():
    # SPATIAL, DIFF cycles: DIFF cheaper; SPATIAL cheaper; a tie; DIFF one below.
    table = _table(PROBES["ditto_plus"], l0=(50, 40), l1=(40, 50), l2=(60, 60), l3=(61, 60))
    for layer in range(5):
        assert [table.mode_for(layer, step) for step in range(2)] == [S, D]
    assert [table.mode_for(layer, 2) for layer in range(4)] == [D, S, S, D]
    assert [table.mode_for(0, step) for step in (3, 49)] == [D, D]
    # No ACT probe: a step 2 is not recorded, and ACT is never chosen.
    table.record(1, 2, 1)
    assert table.mode_for(1, 2) is S


def test_ditto_plus_table_knows_a_layer_only_once_spatial_and_diff_are_recorded():
    table = _table(PROBES["ditto_plus"], l0=(50,))
    with pytest.raises(KeyError, match="layer 0's first 2 steps"):
        table.mode_for(0, 2)
    table.record(1, 1, 10)  # DIFF without SPATIAL
    with pytest.raises(KeyError, match="layer 1"):
        table.mode_for(1, 2)
    table.record(1, 0, 10)
    assert table.mode_for(1, 2) is S


def test_defo_table_ignores_step_2_and_runs_diff_only_if_strictly_cheaper():
    table = _table(PROBES["defo"], l0=(100, 80, 1), l1=(60, 60, 1))
    assert [table.mode_for(0, step) for step in range(4)] == [A, D, D, D]
    assert [table.mode_for(1, step) for step in range(4)] == [A, D, A, A]
    # Known after two probes, as the paper's unit.
    table.record(2, 0, 10)
    table.record(2, 1, 9)
    assert table.mode_for(2, 2) is D


def test_a_negative_step_or_a_bare_mode_is_refused():
    table = DefoTable(entries=4)
    with pytest.raises(IndexError, match="steps count from 0"):
        table.record(0, -1, 10)
    with pytest.raises(IndexError, match="steps count from 0"):
        table.mode_for(0, -1)
    with pytest.raises(ValueError, match="a sequence of modes"):
        check_probes(Mode.ACT)
