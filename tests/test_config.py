"""Config validation: one test per rule, each checking the message names field and reason."""

import json

import pytest

from ditto.cli import main
from ditto.config import PRESETS, ConfigError, DittoConfig, config_toml, load_config, preset


def check_rejected(match: str, **fields):
    with pytest.raises(ConfigError, match=match):
        DittoConfig(**fields)


def test_presets_are_valid_and_slugs_unique():
    slugs = [config.slug for config in PRESETS.values()]
    assert len(set(slugs)) == len(slugs)
    assert preset("default").lane_bits == 5
    assert not preset("paper").act_classify


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        preset("default").pes = 4


def test_replace_validates_again():
    with pytest.raises(ConfigError, match="lane_bits=4"):
        preset("default").replace(lane_bits=4)


def test_unknown_preset_lists_choices():
    with pytest.raises(ConfigError,
                       match="choose one of tiny, default, wide, paper, scaled or give"):
        preset("huge")


def test_config_wrong_act_bits():
    check_rejected(r"act_bits=4: only 8-bit", act_bits=4)


def test_config_wrong_weight_bits():
    check_rejected(r"weight_bits=16: only 8-bit", weight_bits=16)


def test_config_wrong_lane_bits_too_narrow_for_a_difference():
    check_rejected(r"lane_bits=4: a difference of two 8-bit activations needs 9 bits",
                   lane_bits=4)


def test_config_wrong_lane_bits_too_wide():
    check_rejected(r"lane_bits=10: wider than a 9-bit difference", lane_bits=10)


def test_config_wrong_lanes_odd():
    check_rejected(r"lanes=3: lanes come in pairs", lanes=3)


def test_config_wrong_pes():
    check_rejected(r"pes=0: must be a positive integer", pes=0)


def test_config_wrong_scan_width_type():
    check_rejected(r"scan_width=2.5: must be a positive integer", scan_width=2.5)


def test_config_wrong_dispatch_depth():
    # The FIFO must take a whole cycle's push of dispatch_groups groups.
    check_rejected(r"dispatch_depth=2: must be >= dispatch_groups=3", dispatch_groups=3,
                   dispatch_depth=2)
    check_rejected(r"dispatch_depth=0: must be a positive integer", dispatch_depth=0)
    assert DittoConfig(dispatch_groups=3, dispatch_depth=3).dispatch_depth == 3


def test_config_wrong_dispatch_groups():
    check_rejected(r"dispatch_groups=0: must be a positive integer", dispatch_groups=0)


def test_config_wrong_weight_depth():
    check_rejected(r"weight_depth=2048: larger than max_reduction=1024", weight_depth=2048,
                   max_reduction=1024)


def test_config_wrong_acc_bits():
    # 8192 * 255 * 128 = 267386880 < 2**28: 29 signed bits hold it, 28 do not.
    check_rejected(r"acc_bits=28: cannot hold the largest partial sum 267386880 .* "
                   r"need acc_bits >= 29", acc_bits=28)
    assert DittoConfig(acc_bits=29).acc_range[1] >= 8192 * 255 * 128


def test_config_wrong_dense_macs():
    check_rejected(r"dense_macs=3: must be even", dense_macs=3)


def test_config_wrong_defo_entries():
    check_rejected(r"defo_entries=0: must be a positive integer", defo_entries=0)


def test_config_wrong_act_classify():
    check_rejected(r"act_classify=1: must be True or False", act_classify=1)


def test_config_wrong_name():
    check_rejected(r"name='a b'", name="a b")


def test_derived_split_is_exact_for_every_accepted_lane_width():
    for lane_bits in (5, 6, 7, 8, 9):
        config = DittoConfig(lane_bits=lane_bits)
        lo, hi = config.lane_range
        s = config.split_shift
        for v in range(-256, 256):
            h, low = v >> s, v & ((1 << s) - 1)
            assert lo <= h <= hi and 0 <= low <= hi and (h << s) + low == v


# ---- configs from files and flags (load_config, the CLI) ------------------------------------

def test_load_config_from_a_preset_a_file_and_sets(tmp_path):
    assert load_config("tiny") is preset("tiny")
    path = tmp_path / "my.toml"
    path.write_text('preset = "default"\nlane_bits = 6\n')
    config = load_config(str(path), ["pes=24", "act_classify=false"])
    assert config == preset("default").replace(lane_bits=6, pes=24, act_classify=False)
    plain = tmp_path / "plain-1.toml"
    plain.write_text("pes = 3\n")
    assert load_config(str(plain)) == DittoConfig(name="plain-1", pes=3)
    as_json = tmp_path / "c.json"
    as_json.write_text('{"preset": "tiny", "scan_width": 4}')
    assert load_config(str(as_json)) == preset("tiny").replace(scan_width=4)


def test_config_toml_reads_back_to_the_same_config(tmp_path):
    for config in [*PRESETS.values(), preset("tiny").replace(name="odd", lanes=6, pes=3)]:
        path = tmp_path / f"{config.name}.toml"
        path.write_text(config_toml(config))
        assert load_config(str(path)) == config


@pytest.mark.parametrize("spec,sets,message", [
    ("default", ["pez=3"], r"--set: unknown field 'pez'; the fields are act_bits"),
    ("default", ["pes=many"], r"--set: pes='many': must be an integer"),
    ("default", ["act_classify=maybe"], r"act_classify='maybe': must be true or false"),
    ("default", ["pes"], r"--set 'pes': write FIELD=VALUE"),
    ("default", ["pes=0"], r"pes=0: must be a positive integer"),
    ("default", ["dispatch_depth=1"], r"dispatch_depth=1: must be >= dispatch_groups=2"),
    ("huge", [], r"unknown config preset 'huge'"),
])
def test_load_config_errors_name_the_field_value_and_rule(spec, sets, message):
    with pytest.raises(ConfigError, match=message):
        load_config(spec, sets)


def test_broken_and_missing_config_files(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("pes = [\n")
    with pytest.raises(ConfigError, match=r"broken.toml: not valid TOML"):
        load_config(str(broken))
    with pytest.raises(ConfigError, match=r"missing.toml: cannot read the config file"):
        load_config(str(tmp_path / "missing.toml"))
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("scan_widht = 16\n")
    with pytest.raises(ConfigError, match=r"wrong.toml: unknown field 'scan_widht'"):
        load_config(str(wrong))


def test_slugs_of_different_configs_differ():
    # The slug names build directories: a field it does not show must still separate them.
    default = preset("default")
    assert default.slug == "default-p8e32l5g2q4a32"
    assert default.replace(pes=16).slug == "default-p16e32l5g2q4a32"
    other = default.replace(weight_depth=576)
    assert other.slug.startswith("default-p8e32l5g2q4a32-") and other.slug != default.slug
    assert other.slug != default.replace(max_rows=512).slug


def test_cli_generate_from_a_file_with_sets(tmp_path, capsys):
    path = tmp_path / "my.toml"
    path.write_text('preset = "tiny"\n')
    out = tmp_path / "rtl"
    assert main(["generate", "--config", str(path), "--set", "pes=24", "--out", str(out),
                 ]) == 0
    assert json.loads((out / "manifest.json").read_text())["config"]["pes"] == 24


@pytest.mark.parametrize("arguments", [
    ["--set", "pez=24"], ["--set", "pes=x"], ["--config", "BROKEN"], ["--config", "nope"]])
def test_cli_config_errors_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, arguments):
    broken = tmp_path / "broken.toml"
    broken.write_text("pes = [\n")
    arguments = [str(broken) if a == "BROKEN" else a for a in arguments]
    out = tmp_path / "rtl"
    assert main(["generate", *arguments, "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("ditto generate: error: ") and error.count("\n") == 1
    assert not out.exists()


def test_cli_config_prints_a_toml_file_that_reads_back(tmp_path, capsys):
    assert main(["config", "--config", "wide", "--set", "lanes=6", "--toml"]) == 0
    path = tmp_path / "back.toml"
    path.write_text(capsys.readouterr().out)
    assert load_config(str(path)) == preset("wide").replace(lanes=6)


def test_the_memory_system_changes_no_build_directory():
    """The memory fields price the workload; they build no other hardware, so the slug
    (the build directory) stays, while a hardware field changes it."""
    base = preset("default")
    assert base.replace(onchip_bytes=0, dram_mbps=1, clock_mhz=7).slug == base.slug
    assert base.replace(max_rows=512).slug != base.slug
    assert base.replace(dram_mbps=1000, clock_mhz=250).dram_bytes_per_cycle == 4.0
    with pytest.raises(ConfigError, match="onchip_bytes=-1"):
        base.replace(onchip_bytes=-1)
    with pytest.raises(ConfigError, match="clock_mhz=0"):
        base.replace(clock_mhz=0)
