"""Options and fixtures of the hardware tests.

``--sim icarus|verilator`` (when ``tests/hdl`` is on the command line) or ``SIM=...``
chooses the simulator of the cocotb benches that are not parametrized over simulators. The
suite's default is Icarus, unlike the ``ditto`` commands' (Verilator): its benches are many
small designs, and Icarus compiles each in about a second where Verilator takes tens.
"""

import pytest

from ditto.verif.runner import SIMULATORS, selected_simulator, simulator_available


def pytest_addoption(parser):
    parser.addoption("--sim", choices=SIMULATORS, default=None,
                     help="simulator for the cocotb benches (default: $SIM or icarus)")


SUITE_SIMULATOR = "icarus"


def require_simulator(name: str) -> str:
    reason = simulator_available(name)
    if reason:
        # The test command installs every simulator: a missing one is a failure, not a skip.
        pytest.fail(f"{name} not available: {reason}; run 'make install'")
    return name


@pytest.fixture
def simulator(request) -> str:
    """The selected simulator; fails with the reason when it is not installed."""
    return require_simulator(selected_simulator(request.config.getoption("--sim"),
                                                 default=SUITE_SIMULATOR))


@pytest.fixture
def need_simulator():
    """``need_simulator(name)``: the name, or a failure with the reason it cannot run."""
    return require_simulator
