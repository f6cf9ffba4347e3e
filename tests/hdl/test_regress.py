"""``ditto regress``: runs the chosen testbenches and prints a readable table."""

from ditto.cli import main


def test_regress_prints_a_table_per_testbench(capsys, simulator):
    assert main(["regress", "--config", "tiny", "--sim", simulator, "-k", "accumulation"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("accumulation_buffer"))
    fields = row.split()
    assert fields[1] == simulator and fields[2] == "passed"
    assert int(fields[3]) > 0 and int(fields[4]) > 0  # vectors checked, cycles simulated
    assert "1 passed, 0 failed" in out


def test_regress_with_a_pattern_that_matches_nothing(capsys):
    assert main(["regress", "--config", "tiny", "-k", "fpu"]) == 2
    assert "-k 'fpu' matches no testbench" in capsys.readouterr().err
