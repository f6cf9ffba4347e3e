"""Config validation: one test per rule, each checking the message names field and reason."""

import pytest

from ditto.config import PRESETS, ConfigError, DittoConfig, preset


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
    with pytest.raises(ConfigError, match="choose one of tiny, default, wide, paper"):
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
