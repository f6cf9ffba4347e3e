"""The one configuration object of the project.

`DittoConfig` is read by the reference model, the cycle model, the hardware generator, the
testbenches, the synthesis flow and the reports. Every derived width or latency is a property
here and is computed nowhere else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ditto import pipeline

__all__ = ["ConfigError", "DittoConfig", "MEMORY_FIELDS", "PRESETS", "config_toml",
           "field_value", "load_config", "preset"]

#: Fields that describe the memory system around the cores, not the cores themselves.
MEMORY_FIELDS = ("onchip_bytes", "dram_mbps", "clock_mhz")


class ConfigError(ValueError):
    """A configuration field has a value the design cannot implement."""


def _signed_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


@dataclass(frozen=True, kw_only=True)
class DittoConfig:
    """Parameters of a Ditto core and of the model that predicts it.

    Number formats
    --------------
    act_bits, weight_bits : int
        Width of the signed, symmetric activations and weights. Only 8 is implemented.
    lane_bits : int
        Width of the signed operand of one lane multiplier. A difference of two ``act_bits``
        values needs ``act_bits + 1`` bits; it is split exactly as ``v = 2**s * h + l`` with
        ``s = lane_bits - 1``, ``l = v & (2**s - 1)`` and ``h = v >> s``, which needs
        ``2 * lane_bits >= act_bits + 2``.
    acc_bits : int
        Width of the signed accumulators and of the stored outputs.

    Microarchitecture
    -----------------
    lanes : int
        Lane multipliers per processing element (PE), in pairs; the first lane of each pair
        can shift its product left by ``split_shift``.
    pes : int
        Processing elements = output channels computed in parallel (P).
    scan_width : int
        Elements the encoding unit reads per cycle (E).
    dispatch_groups : int
        Most lane groups the dispatcher's packer pushes in one cycle (G). A beat that
        completes more groups is held for ``ceil(groups / G)`` cycles. The PEs take one group
        a cycle, so G = 2 already absorbs most bursts (docs/core.md has the measurements).
    dispatch_depth : int
        Capacity, in lane groups, of the FIFO between the dispatcher's packer and the PEs
        (at least ``dispatch_groups``).
    weight_depth : int
        Reduction length one tile's weight buffer holds (rows of ``pes`` weights).
    max_rows : int
        Rows of ``pes`` outputs the accumulation buffer holds (rows per tile).
    max_reduction : int
        Largest reduction length K of a whole layer (over all weight tiles); ``acc_bits`` must
        hold every partial sum of that length.
    act_classify : bool
        True: ACT mode classifies activations like differences (zeros skipped, small values
        one lane). False: the paper's ACT mode, every activation takes two lanes.
    dense_macs : int
        int8 x int8 multiply-accumulators per PE of the DenseCore baseline (even: its PEs
        reuse the paired-lane compute unit).
    defo_entries, defo_cycle_bits : int
        Layers the Defo table holds and the width of its recorded cycle counts (the paper's
        table: 512 entries).

    Memory system (``ditto evaluate``; no effect on the generated hardware)
    ------------------------------------------------------------------------
    onchip_bytes : int
        Capacity of the on-chip buffer that both cores share the same way: it keeps weights,
        then (DittoCore) the previous step's activations and outputs, across steps
        (``ditto.sim.memory``, docs/evaluation.md). 0: nothing stays on chip. Default: the
        paper's 192 MB (read as MiB); docs/evaluation.md plots the energy against it.
    dram_mbps : int
        Off-chip bandwidth in MB/s (10**6 bytes per second).
    clock_mhz : int
        Core clock in MHz, which turns the bandwidth into bytes per cycle.
    """

    act_bits: int = 8
    weight_bits: int = 8
    lane_bits: int = 5
    acc_bits: int = 32
    lanes: int = 4
    pes: int = 8
    scan_width: int = 32
    dispatch_groups: int = 2
    dispatch_depth: int = 4
    weight_depth: int = 1152
    max_rows: int = 1024
    max_reduction: int = 8192
    act_classify: bool = True
    dense_macs: int = 2
    defo_entries: int = 512
    defo_cycle_bits: int = 32
    onchip_bytes: int = 192 * 2**20
    dram_mbps: int = 25_600
    clock_mhz: int = 500
    name: str = "custom"

    def __post_init__(self):
        def fail(field, reason):
            raise ConfigError(f"{field}={getattr(self, field)!r}: {reason}")

        for field in ("act_bits", "weight_bits", "lane_bits", "acc_bits", "lanes", "pes",
                      "scan_width", "dispatch_groups", "dispatch_depth", "weight_depth",
                      "max_rows", "max_reduction", "dense_macs", "defo_entries",
                      "defo_cycle_bits", "dram_mbps", "clock_mhz"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fail(field, "must be a positive integer")
        if (not isinstance(self.onchip_bytes, int) or isinstance(self.onchip_bytes, bool)
                or self.onchip_bytes < 0):
            fail("onchip_bytes", "must be a whole number of bytes, 0 or more")
        if self.act_bits != 8:
            fail("act_bits", "only 8-bit activations are implemented")
        if self.weight_bits != 8:
            fail("weight_bits", "only 8-bit weights are implemented")
        if 2 * self.lane_bits < self.act_bits + 2:
            fail("lane_bits", f"a difference of two {self.act_bits}-bit activations needs "
                 f"{self.act_bits + 1} bits; two {self.lane_bits}-bit signed lanes cannot "
                 f"represent it exactly (need lane_bits >= {(self.act_bits + 3) // 2})")
        if self.lane_bits > self.act_bits + 1:
            fail("lane_bits", f"wider than a {self.act_bits + 1}-bit difference; "
                 "nothing would ever need two lanes")
        if self.lanes % 2:
            fail("lanes", "lanes come in pairs (a shift-capable lane and a plain one)")
        if self.dispatch_depth < self.dispatch_groups:
            fail("dispatch_depth", f"must be >= dispatch_groups={self.dispatch_groups}: the "
                 "FIFO must take a whole cycle's push")
        if self.dense_macs % 2:
            fail("dense_macs", "must be even: DenseCore PEs reuse the paired-lane compute unit")
        if self.weight_depth > self.max_reduction:
            fail("weight_depth", f"larger than max_reduction={self.max_reduction}")
        if not isinstance(self.act_classify, bool):
            fail("act_classify", "must be True or False")
        need = self.max_partial_sum
        lo, hi = _signed_range(self.acc_bits)
        if need > hi:
            fail("acc_bits", f"cannot hold the largest partial sum {need} "
                 f"(max_reduction={self.max_reduction} x max |difference x weight| "
                 f"{self.max_difference_product}); need acc_bits >= {need.bit_length() + 1}")
        if not self.name or not all(c.isalnum() or c in "-_" for c in self.name):
            fail("name", "must be a non-empty word of letters, digits, '-' or '_'")

    # ---- derived number formats -------------------------------------------------------
    @property
    def act_range(self) -> tuple[int, int]:
        """Inclusive range of a quantized activation."""
        return _signed_range(self.act_bits)

    @property
    def weight_range(self) -> tuple[int, int]:
        return _signed_range(self.weight_bits)

    @property
    def diff_bits(self) -> int:
        """Bits of a difference of two activations."""
        return self.act_bits + 1

    @property
    def lane_range(self) -> tuple[int, int]:
        """Inclusive range of a LOW value: what one signed lane holds."""
        return _signed_range(self.lane_bits)

    @property
    def split_shift(self) -> int:
        """A FULL value splits as ``(h << split_shift) + l``; ``l`` is unsigned."""
        return self.lane_bits - 1

    @property
    def acc_range(self) -> tuple[int, int]:
        return _signed_range(self.acc_bits)

    @property
    def dram_bytes_per_cycle(self) -> float:
        """Off-chip bytes per core cycle: ``dram_mbps`` over ``clock_mhz``."""
        return self.dram_mbps / self.clock_mhz

    @property
    def max_difference_product(self) -> int:
        """Largest |difference x weight|: (2**act_bits - 1) * 2**(weight_bits - 1)."""
        return ((1 << self.act_bits) - 1) * (1 << (self.weight_bits - 1))

    @property
    def max_partial_sum(self) -> int:
        """Largest |partial sum| over ``max_reduction`` products of differences."""
        return self.max_reduction * self.max_difference_product

    @property
    def product_bits(self) -> int:
        """Signed width of one lane product (lane operand x weight, before the shift)."""
        return self.lane_bits + self.weight_bits

    # ---- derived microarchitecture -------------------------------------------------------
    @property
    def shift_lanes(self) -> int:
        """Shift-capable lanes per PE: the first lane of each pair."""
        return self.lanes // 2

    @property
    def max_beat_operands(self) -> int:
        """Most lane operands in the packer at once: a carry of ``lanes - 1`` operands plus
        a beat of FULL elements."""
        return self.lanes - 1 + 2 * self.scan_width

    @property
    def cost_blocks(self) -> tuple[range, ...]:
        """The blocks of a beat's elements over which the encoder sums the lane costs (the
        first levels of the dispatcher's prefix sums): ``E / 4`` elements from ``E = 64``
        on, else 8 (the whole beat below), rounded up to an even number, so that a beat has
        at most four blocks and no pair of elements straddles two."""
        block = max(min(8, self.scan_width), self.scan_width // 4)
        block += block % 2
        return tuple(range(start, min(start + block, self.scan_width))
                     for start in range(0, self.scan_width, block))

    @property
    def weight_addr_bits(self) -> int:
        return max(1, (self.weight_depth - 1).bit_length())

    @property
    def row_addr_bits(self) -> int:
        return max(1, (self.max_rows - 1).bit_length())

    # Pipeline latencies: sums of the stage latencies declared in ``ditto.pipeline``.
    @property
    def front_latency(self) -> int:
        """DittoCore: cycles from a beat's transfer on ``act`` to the first cycle the packer
        can push its groups (encoder register, then the packer's prefix-sum register)."""
        return pipeline.ENCODER + pipeline.PACKER

    @property
    def drain_latency(self) -> int:
        """Cycles from a row's last lane group entering the group stage (DittoCore: leaving
        the dispatch FIFO; DenseCore: its last activation beat) to that row's output beat:
        weight read, PE, accumulation read-modify-write. Both cores share this back end."""
        return pipeline.WEIGHT_READ + pipeline.PE + pipeline.ACCUMULATOR

    @property
    def slug(self) -> str:
        """Short name for build directories, test ids and report rows: the name and the
        fields most often varied; when another field differs from the preset of that name
        (or from the defaults), a hash of all hardware fields follows, so two different
        designs never share a build directory. The memory-system fields
        (:data:`MEMORY_FIELDS`) change no hardware and are left out."""
        mode = "" if self.act_classify else "-paperact"
        slug = (f"{self.name}-p{self.pes}e{self.scan_width}l{self.lane_bits}"
                f"g{self.dispatch_groups}q{self.dispatch_depth}a{self.acc_bits}{mode}")
        shown = {"name", "pes", "scan_width", "lane_bits", "dispatch_groups",
                 "dispatch_depth", "acc_bits", "act_classify"}
        reference = PRESETS.get(self.name, DittoConfig()).as_dict()
        hardware = {field: value for field, value in self.as_dict().items()
                    if field not in MEMORY_FIELDS}
        if any(value != reference[field] for field, value in hardware.items()
               if field not in shown):
            text = json.dumps(hardware, sort_keys=True)
            slug += "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
        return slug

    def replace(self, **changes) -> DittoConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


PRESETS: dict[str, DittoConfig] = {
    "tiny": DittoConfig(name="tiny", pes=2, scan_width=8, weight_depth=64, max_rows=16,
                        max_reduction=1024),
    "default": DittoConfig(name="default"),
    # 32 PEs share one front end that scans 64 elements a cycle (docs/synthesis.md: the
    # front end amortises over P, and the wider scan pays at every P measured).
    "wide": DittoConfig(name="wide", pes=32, scan_width=64),
    # The paper's ACT mode (every activation two lanes) and 16 PEs.
    "paper": DittoConfig(name="paper", pes=16, act_classify=False),
    # A chip-sized design for the roofline (docs/evaluation.md): 512 PEs at 1 GHz on one
    # HBM2 stack (256 GB/s).
    "scaled": DittoConfig(name="scaled", pes=512, clock_mhz=1000, dram_mbps=256_000),
}


def preset(name: str) -> DittoConfig:
    """The preset called ``name``; a clear error lists the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown config preset {name!r}; choose one of "
                          f"{', '.join(PRESETS)} or give a .toml or .json file") from None


_FIELDS = {field.name: field.type for field in dataclasses.fields(DittoConfig)}


def field_value(field: str, value, source: str):
    """``value`` for ``field`` as the field's type: ints and bools from TOML or JSON as
    they are, or parsed from the text of ``--set``."""
    if field not in _FIELDS:
        raise ConfigError(f"{source}: unknown field {field!r}; the fields are "
                          f"{', '.join(_FIELDS)}")
    kind = _FIELDS[field]
    if not isinstance(value, str) or kind == "str":
        return value
    text = value.strip()
    if kind == "bool":
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ConfigError(f"{source}: {field}={value!r}: must be true or false")
    try:
        return int(text, 0)
    except ValueError:
        raise ConfigError(f"{source}: {field}={value!r}: must be an integer") from None


def _read_config_file(path: Path) -> dict:
    """The fields in a TOML or JSON config file (a ``preset`` key names the starting point)."""
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config file ({error.strerror})") from None
    try:
        if path.suffix == ".json":
            fields = json.loads(text)
        else:
            fields = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise ConfigError(f"{path}: not valid {kind}: {error}") from None
    if not isinstance(fields, dict):
        raise ConfigError(f"{path}: must hold a table of DittoConfig fields")
    return fields


def load_config(spec: str = "default", sets: Iterable[str] = ()) -> DittoConfig:
    """The config that ``--config SPEC`` and ``--set FIELD=VALUE`` ask for.

    ``spec`` is a preset name or a ``.toml``/``.json`` file of ``DittoConfig`` fields, in
    which an optional ``preset`` key gives the preset the file starts from (default: the
    defaults) and ``name`` defaults to the file's stem. Each ``sets`` item then changes one
    field. The result is validated once, as a whole; every error is a :class:`ConfigError`
    that names the source, the field, the value and the rule.
    """
    path = Path(spec)
    if spec in PRESETS:
        base, fields, source = PRESETS[spec], {}, f"preset {spec}"
    elif path.suffix in (".toml", ".json"):
        fields = _read_config_file(path)
        source = str(path)
        base_name = fields.pop("preset", None)
        base = DittoConfig() if base_name is None else preset(str(base_name))
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in path.stem)
        fields.setdefault("name", base.name if base_name is not None else stem)
    else:
        preset(spec)  # the unknown-preset error
    fields = {field: field_value(field, value, source) for field, value in fields.items()}
    for item in sets:
        field, equals, value = item.partition("=")
        if not equals:
            raise ConfigError(f"--set {item!r}: write FIELD=VALUE, for example pes=16")
        fields[field.strip()] = field_value(field.strip(), value, "--set")
    return base.replace(**fields) if fields else base


def config_toml(config: DittoConfig) -> str:
    """``config`` as a TOML file that :func:`load_config` reads back to the same config."""
    lines = [f"# DittoConfig {config.slug}"]
    for field, value in config.as_dict().items():
        text = (f'"{value}"' if isinstance(value, str)
                else str(value).lower() if isinstance(value, bool) else str(value))
        lines.append(f"{field} = {text}")
    return "\n".join(lines) + "\n"
