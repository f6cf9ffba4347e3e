"""cocotb tests for any one-input, one-output stream component: one test per case of the
bench manifest (``DITTO_BENCH``), all in one simulator run."""

import cocotb

from .testbench import BenchManifest, run_case

_MANIFEST = BenchManifest()


@cocotb.test
@cocotb.parametrize(case=[cocotb.Param(name, name=name) for name in _MANIFEST.cases])
async def check(dut, case: str) -> None:
    await run_case(dut, case, _MANIFEST)
