"""The top levels: ``DittoCore`` and the dense int8 baseline ``DenseCore``.

Both run one *tile* per command (docs/model.md §3): ``rows`` output rows of ``pes`` channels
over a reduction of ``k`` elements, with the same command, weight and output streams, the
same weight buffer, accumulation buffer and counters. They differ in the front end: DittoCore
encodes ``scan_width`` elements a cycle and dispatches only their nonzero lane operands;
DenseCore feeds ``dense_macs`` int8 activations a cycle straight to its multipliers.
``ditto.sim.cycles`` predicts both cores' cycle counts exactly.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ditto.config import DittoConfig
from ditto.enums import DiffClass, Mode

from ._params import HasConfig, check_config, check_flag
from .accumulator import AccumulationBuffer, accumulator_output_layout
from .compute_unit import ComputeUnit, PeShape, adder_tree
from .dispatch import ZeroSkipDispatcher, dispatch_group_layout, weight_row
from .encoding import EncodingUnit
from .sram import add_memory

__all__ = ["DenseCore", "DittoCore", "command_layout", "counters_layout"]

COUNTER_BITS = 40


def command_layout(config: DittoConfig) -> data.StructLayout:
    """Payload of the command stream: one tile.

    Fields
    ------
    mode : Mode
        ACT: encode the activations ``x_cur``; DIFF: encode ``x_cur - x_prev``, the
        difference to the previous step; SPATIAL: encode ``x_cur - x_prev`` with ``x_prev``
        the tile's previous row (0 for its first row), and chain the rows in the PEs: each
        row's sum starts from the previous row's, so that row ``i`` sums to ``x_i W``.
        (DenseCore has no difference mode and multiplies ``x`` in every mode.)
    rows : 1 .. max_rows
    row_base : 0 .. max_rows - rows
        First accumulation-buffer row of the tile (tiles may keep outputs side by side).
    k : 1 .. weight_depth
        Reduction length; a row is ``ceil(k / beat width)`` activation beats.
    load_weights : 1
        Load ``k`` weight rows before the activations (0: reuse the loaded ones).
    accumulate : 1
        1: add each row's sums to the stored row (a DIFF step, or a later reduction chunk);
        0: store ``bias + sums`` (an ACT or SPATIAL step's first chunk, or a standalone
        product).
    bias : ArrayLayout(signed(acc_bits), pes)
        Added to each row's outputs when they are stored (not accumulated).
    """
    return data.StructLayout({
        "mode": Mode,
        "rows": unsigned((config.max_rows).bit_length()),
        "row_base": unsigned(config.row_addr_bits),
        "k": unsigned((config.weight_depth).bit_length()),
        "load_weights": unsigned(1),
        "accumulate": unsigned(1),
        "bias": data.ArrayLayout(signed(config.acc_bits), config.pes),
    })


def weight_layout(config: DittoConfig) -> data.ArrayLayout:
    """One weight beat: the ``pes`` weights of one reduction index."""
    return data.ArrayLayout(signed(config.weight_bits), config.pes)


def counters_layout() -> data.StructLayout:
    """Performance counters of the last (or current) tile, cleared by each command.

    ``cycles``: from the command's cycle to the last output beat, inclusive (what the cycle
    model predicts); ``elements``: activations encoded (padding excluded); ``zero``, ``low``,
    ``full``: their classes (DenseCore: all zero counts, every element counted as full);
    ``lane_slots``: lane operands issued to the PEs (``low + 2 * full``); ``groups``: lane
    groups (DenseCore: MAC beats) issued; ``stall_cycles``: cycles the dispatcher's packer
    held groups that found no room in the dispatch FIFO.
    """
    return data.StructLayout({name: unsigned(COUNTER_BITS) for name in (
        "cycles", "elements", "zero", "low", "full", "lane_slots", "groups",
        "stall_cycles")})


def _popcount(bits) -> Value:
    """Number of set bits, as a balanced adder tree."""
    return adder_tree([Value.cast(bit) for bit in bits])


class _TileCore(HasConfig, wiring.Component):
    """Command decoding, weight buffer, PEs, accumulation buffer and counters shared by both
    cores; subclasses provide the front end (``_front_end``) that turns activation beats
    into lane groups with weight addresses."""

    #: Data dependent: ``ditto.sim.cycles`` gives a tile's exact cycle count.
    LATENCY = None
    #: A skid register in front of the group stage, so that the front end sees a registered
    #: ready (below).
    GROUP_SKID = False
    #: SPATIAL commands chain a tile's rows in the PEs (below); otherwise they run as ACT.
    CHAIN_ROWS = False

    def __init__(self, *, config: DittoConfig, beat_layout, pe_shape: PeShape, asic: bool):
        self._config = check_config(self, config)
        self._asic = check_flag(self, "asic", asic)
        self._pe_shape = pe_shape
        super().__init__({
            "cmd": In(stream.Signature(command_layout(config))),
            "weights": In(stream.Signature(weight_layout(config))),
            "act": In(stream.Signature(beat_layout)),
            "out": Out(stream.Signature(accumulator_output_layout(config))),
            "counters": Out(counters_layout()),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        config = self._config
        m = Module()
        cmd = Signal(command_layout(config))
        counters = Signal(counters_layout())
        m.d.comb += [self.counters.eq(counters),
                     self.counters.zero.eq(counters.elements - counters.low - counters.full)]

        # ---- control: IDLE -> (LOAD) -> SCAN -> DRAIN -> IDLE --------------------------
        # Per-tile constants are registered when the command is taken, and the row position
        # is a countdown, so no arithmetic on the command lies on a per-beat path.
        width = self._beat_width
        weight_row = Signal(range(config.weight_depth + 1))
        rows_left = Signal(range(config.max_rows + 1))       # output rows still to come
        scan_rows_left = Signal(range(config.max_rows + 1))  # rows still to scan
        last_beat_index = Signal(range(-(-config.weight_depth // width)))  # beats a row - 1
        last_beat_real = Signal(range(1, width + 1))  # real elements in a row's last beat
        # Which elements of a row's last beat are real, one bit each.
        last_beat_mask = Signal(width)
        beat_in_row = Signal.like(last_beat_index)
        # The next beat is its row's last: a register kept beside ``beat_in_row``, so that the
        # real elements of the next beat (``real``, ``real_mask``) are a select of registers.
        last = Signal()
        real = Signal(range(width + 1))  # real elements in the next beat
        real_mask = Signal(width)        # bit n: element n of the next beat is real
        # In SCAN with rows still to scan: a register, set on entering SCAN and cleared by
        # the last beat of the last row, so that the activation handshake starts at it.
        scanning = Signal()
        m.d.comb += [real.eq(Mux(last, last_beat_real, width)),
                     real_mask.eq(Mux(last, last_beat_mask, (1 << width) - 1))]

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.cmd.valid):
                    k_minus_1 = self.cmd.payload.k - 1
                    m.d.sync += [cmd.eq(self.cmd.payload), weight_row.eq(0),
                                 rows_left.eq(self.cmd.payload.rows),
                                 scan_rows_left.eq(self.cmd.payload.rows),
                                 last_beat_index.eq(k_minus_1 // width),
                                 last_beat_real.eq(k_minus_1 % width + 1),
                                 # Element 0 is always real (k >= 1).
                                 last_beat_mask.eq(Cat(Const(1, 1), *(n <= k_minus_1 % width
                                                            for n in range(1, width)))),
                                 beat_in_row.eq(0), last.eq(self.cmd.payload.k <= width),
                                 *(getattr(counters, name).eq(0) for name in
                                   counters_layout().members),
                                 counters.cycles.eq(1)]
                    with m.If(self.cmd.payload.load_weights):
                        m.next = "LOAD"
                    with m.Else():
                        m.d.sync += scanning.eq(self.cmd.payload.rows != 0)
                        m.next = "SCAN"
            with m.State("LOAD"):
                with m.If(self.weights.valid):
                    m.d.sync += weight_row.eq(weight_row + 1)
                    with m.If(weight_row + 1 == cmd.k):
                        m.d.sync += scanning.eq(scan_rows_left != 0)
                        m.next = "SCAN"
            with m.State("SCAN"):
                with m.If(scan_rows_left == 0):
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If(rows_left == 0):
                    m.next = "IDLE"
        # Outputs as plain expressions of the state (not assignments inside the states):
        # Verilog simulators then evaluate them from time zero, whatever the state does.
        m.d.comb += [self.cmd.ready.eq(fsm.ongoing("IDLE")),
                     self.weights.ready.eq(fsm.ongoing("LOAD"))]
        busy = ~fsm.ongoing("IDLE")
        m.d.comb += self.busy.eq(busy)
        with m.If(busy & (rows_left != 0)):
            m.d.sync += counters.cycles.eq(counters.cycles + 1)
        with m.If(self.act.valid & self.act.ready):
            m.d.sync += [beat_in_row.eq(Mux(last, 0, beat_in_row + 1)),
                         last.eq(Mux(last, last_beat_index == 0,
                                     beat_in_row + 1 == last_beat_index)),
                         scan_rows_left.eq(scan_rows_left - last),
                         scanning.eq(~last | (scan_rows_left != 1)),
                         counters.elements.eq(counters.elements + real)]

        # ---- weight buffer ------------------------------------------------------------------
        weight_write, reads = add_memory(m, "weight_buffer", shape=weight_layout(config),
                                         depth=config.weight_depth,
                                         read_ports=self._pe_shape.lanes, asic=self._asic)
        m.d.comb += [weight_write.addr.eq(weight_row), weight_write.data.eq(self.weights.payload),
                     weight_write.en.eq(self.weights.valid & self.weights.ready)]

        # ---- front end: activation beats -> lane groups with weight addresses ---------------
        group_valid, group, group_ready = self._front_end(m, cmd, scanning, beat_in_row, last,
                                                          real, real_mask, counters)

        # ---- group stage (pipeline.WEIGHT_READ): the weight rows are read while the group
        # waits a cycle, then the read weights are registered beside it, so that the weight
        # buffer's outputs need not reach the PEs in the cycle of the read. Each PE then
        # registers the group and its own weights again (its first stage), beside its own
        # multipliers.
        m.submodules.accumulator = accumulator = AccumulationBuffer(config=config,
                                                                    asic=self._asic)
        pes = [ComputeUnit(shape=self._pe_shape) for _ in range(config.pes)]
        for index, pe in enumerate(pes):
            m.submodules[f"pe_{index}"] = pe
        advance = ~pes[0].i.valid | pes[0].i.ready
        # With ``GROUP_SKID``, a skid register in front of the stage, so that the ready the
        # front end sees is a register (``~skid_valid``): the output's ready chain through
        # the accumulation buffer, the PEs and this stage ends here instead of running on
        # into the front end (into the dispatcher's FIFO it was DittoCore's worst path on
        # ECP5, docs/synthesis.md). A group the stage cannot take waits in the skid. With
        # ``out`` always ready the stage always advances and the skid stays empty, so the
        # timing does not change.
        if self.GROUP_SKID:
            skid = Signal.like(group, reset_less=True)
            skid_valid = Signal()
            arriving_valid = Signal()
            m.d.comb += arriving_valid.eq(skid_valid | group_valid)
            arriving = Signal.like(group)
            m.d.comb += arriving.eq(Mux(skid_valid, skid, group))
            m.d.comb += group_ready.eq(~skid_valid)
            m.d.sync += skid_valid.eq(arriving_valid & ~advance)
            with m.If(~skid_valid):
                m.d.sync += skid.eq(group)
        else:
            arriving_valid, arriving = group_valid, group
            m.d.comb += group_ready.eq(advance)
        # The data registers have no reset: each is read only behind its valid bit.
        staged = Signal.like(group, reset_less=True)
        staged_valid = Signal()
        weighed = Signal.like(group, reset_less=True)
        weighed_valid = Signal()
        weights = [Signal.like(read.data, name=f"weights_{lane}", reset_less=True)
                   for lane, read in enumerate(reads)]
        for lane, read in enumerate(reads):
            m.d.comb += [read.addr.eq(arriving.lanes[lane].k), read.en.eq(advance)]
        with m.If(advance):
            m.d.sync += [staged_valid.eq(arriving_valid), staged.eq(arriving),
                         weighed_valid.eq(staged_valid), weighed.eq(staged),
                         *(w.eq(read.data) for w, read in zip(weights, reads, strict=True))]
        # SPATIAL rows chain in the PEs' partial-sum registers, which keep a row's sum after
        # its output: only the tile's first row clears them (``first``), each later row
        # starts from the sum of the row before it, ``y_i = y_{i-1} + (x_i - x_{i-1}) W``.
        # ``restart`` is a register, set by the command and after each row, so the PEs'
        # ``first`` stays one gate after registers.
        first = weighed.first
        if self.CHAIN_ROWS:
            restart = Signal()  # the next row to reach the PEs starts from 0
            with m.If(weighed_valid & pes[0].i.ready & weighed.last):
                m.d.sync += restart.eq(cmd.mode != Mode.SPATIAL)
            with m.If(self.cmd.valid & self.cmd.ready):
                m.d.sync += restart.eq(1)
            first = weighed.first & restart
        for index, pe in enumerate(pes):
            m.d.comb += [pe.i.valid.eq(weighed_valid), pe.i.payload.first.eq(first),
                         pe.i.payload.last.eq(weighed.last)]
            for lane, weight in enumerate(weights):
                m.d.comb += [pe.i.payload.lanes[lane].operand.eq(weighed.lanes[lane].operand),
                             pe.i.payload.lanes[lane].shift.eq(weighed.lanes[lane].shift),
                             pe.i.payload.lanes[lane].weight.eq(weight[index])]
        with m.If(group_valid & group_ready):
            m.d.sync += counters.groups.eq(counters.groups + 1)

        # ---- PEs -> accumulation buffer -> output -----------------------------------------
        out_row = Signal(config.row_addr_bits)
        m.d.comb += [accumulator.bias.eq(cmd.bias), accumulator.i.valid.eq(pes[0].o.valid),
                     accumulator.i.payload.row.eq(out_row),
                     accumulator.i.payload.accumulate.eq(cmd.accumulate)]
        for index, pe in enumerate(pes):
            m.d.comb += [accumulator.i.payload.sums[index].eq(pe.o.payload.sum),
                         pe.o.ready.eq(accumulator.i.ready)]
        with m.If(accumulator.i.valid & accumulator.i.ready):
            m.d.sync += out_row.eq(out_row + 1)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += out_row.eq(self.cmd.payload.row_base)
        wiring.connect(m, accumulator.o, wiring.flipped(self.out))
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += rows_left.eq(rows_left - 1)
        return m


class DittoCore(_TileCore):
    """The Ditto core: encoding unit -> zero-skipping dispatcher -> ``pes`` compute units ->
    accumulation buffer, behind stream interfaces.

    Function, timing and handshake
    ------------------------------
    - A command (``cmd``) runs one tile: ``k`` weight beats on ``weights`` (if
      ``load_weights``), then ``rows * ceil(k / scan_width)`` activation beats on ``act``
      (row after row; a row's last beat holds ``k mod scan_width`` real elements, the rest
      is ignored), then ``rows`` output beats on ``out``, in row order. The next command is
      accepted from the second cycle after the last output beat. ``rows >= 1``,
      ``1 <= k <= weight_depth``.
    - Timing: with ``act`` and ``weights`` always valid and ``out`` always ready,
      ``counters.cycles`` equals ``ditto.sim.cycles.ditto_tile_cycles`` exactly. Any
      stream may stall; the values stay exact, only the cycles grow.
    - Values: ``out.y`` of a row is ``s`` plus ``bias`` (``accumulate`` = 0) or plus the
      stored row (``accumulate`` = 1), exactly, in ``acc_bits``: in ACT and DIFF mode
      ``s = v @ W`` with ``v = x_cur`` (ACT) or ``x_cur - x_prev`` (DIFF); in SPATIAL mode
      ``s`` is the running sum of ``(x_cur - x_prev) @ W`` over the tile's rows up to this
      one, which is ``x_cur @ W`` when the feeder sends, as ``x_prev``, the row before
      (0 for the tile's first row). The rows' classes, lane operands and cycles are those
      of ``x_cur - x_prev`` in DIFF and SPATIAL mode alike.

    Parameters
    ----------
    config : DittoConfig
    asic : bool
        Build the weight buffer and the accumulation buffer's memory as SRAM macro
        instances (``ditto.hdl.sram``, docs/asic.md); the behaviour is the same.

    Members
    -------
    cmd : In(stream.Signature(command_layout(config)))
    weights : In(stream.Signature(ArrayLayout(signed(8), pes)))
    act : In(stream.Signature(StructLayout({x_cur, x_prev: ArrayLayout(signed(8), scan_width)})))
    out : Out(stream.Signature(accumulator_output_layout(config)))
    counters : Out(counters_layout())
    busy : Out(1)
    """

    # The output's ready chain would run on into the dispatcher's pop and FIFO pointers.
    # DenseCore's front end is its input handshake; a skid there bought nothing on ECP5
    # and cost 9,650 transistors (docs/synthesis.md).
    GROUP_SKID = True
    CHAIN_ROWS = True

    def __init__(self, *, config: DittoConfig, asic: bool = False):
        self._beat_width = config.scan_width
        element = signed(config.act_bits)
        beat = data.StructLayout({"x_cur": data.ArrayLayout(element, config.scan_width),
                                  "x_prev": data.ArrayLayout(element, config.scan_width)})
        super().__init__(config=config, beat_layout=beat, pe_shape=PeShape.ditto(config),
                         asic=asic)

    def _front_end(self, m, cmd, scanning, beat_in_row, last, real, real_mask, counters):
        config = self._config
        width = config.scan_width
        m.submodules.encoder = encoder = EncodingUnit(config=config)
        m.submodules.dispatcher = dispatcher = ZeroSkipDispatcher(config=config)
        wiring.connect(m, encoder.o, dispatcher.i)
        m.d.comb += encoder.mode.eq(cmd.mode)
        m.d.comb += [encoder.i.valid.eq(self.act.valid & scanning),
                     self.act.ready.eq(encoder.i.ready & scanning),
                     encoder.i.payload.x_cur.eq(self.act.payload.x_cur),
                     encoder.i.payload.x_prev.eq(self.act.payload.x_prev),
                     encoder.i.payload.last.eq(last)]
        for n in range(width):
            m.d.comb += encoder.i.payload.valid[n].eq(real_mask[n])

        # Class counters, at the dispatcher's input (padding elements are ZERO and not
        # counted). Each block of elements (``config.cost_blocks``) is counted into a
        # register, the blocks are summed into the beat's counts a cycle later, and those
        # are added to the counters a cycle after that: a popcount of the whole beat into one
        # register was DittoCore's worst path on an ECP5 seed (docs/synthesis.md), and a
        # tile's counts are complete long before its last output.
        beat = dispatcher.i.payload
        blocks = config.cost_blocks

        def count_in_blocks(cls):
            per_block = [Signal(range(len(block) + 1), name=f"block_{cls.name.lower()}_{b}",
                                reset_less=True) for b, block in enumerate(blocks)]
            total = Signal(range(width + 1), name=f"beat_{cls.name.lower()}",
                           reset_less=True)
            m.d.sync += [*(count.eq(_popcount(beat.cls[n] == cls for n in block))
                           for count, block in zip(per_block, blocks, strict=True)),
                         total.eq(adder_tree(per_block))]
            return total

        beat_low, beat_full = count_in_blocks(DiffClass.LOW), count_in_blocks(DiffClass.FULL)
        blocks_counted, counted = Signal(), Signal()  # the block counts, the beat's counts
        m.d.sync += [blocks_counted.eq(dispatcher.i.valid & dispatcher.i.ready),
                     counted.eq(blocks_counted)]
        with m.If(counted):
            m.d.sync += [counters.low.eq(counters.low + beat_low),
                         counters.full.eq(counters.full + beat_full),
                         counters.lane_slots.eq(counters.lane_slots + beat_low
                                                + 2 * beat_full)]
        with m.If(dispatcher.stalled):
            m.d.sync += counters.stall_cycles.eq(counters.stall_cycles + 1)

        group_ready = Signal()
        m.d.comb += dispatcher.o.ready.eq(group_ready)
        return dispatcher.o.valid, dispatcher.o.payload, group_ready


class DenseCore(_TileCore):
    """The dense int8 baseline ("ITC"): ``dense_macs`` int8 x int8 multiply-accumulates per
    PE and cycle, no classification or skipping; otherwise the same tile protocol,
    command, weight and output streams, accumulation buffer and counters as
    :class:`DittoCore` (DIFF and SPATIAL commands run as ACT: a dense core has no
    difference mode, and its PEs never chain rows; its feeder sends the plain rows).

    Timing: with ``act`` and ``weights`` always valid and ``out`` always ready,
    ``counters.cycles`` equals ``ditto.sim.cycles.dense_tile_cycles`` exactly.

    Parameters: as :class:`DittoCore` (``config``, ``asic``).

    Members
    -------
    act : In(stream.Signature(StructLayout({x: ArrayLayout(signed(8), dense_macs)})))
        Row after row, ``ceil(k / dense_macs)`` beats a row.
    (the other members as :class:`DittoCore`)
    """

    def __init__(self, *, config: DittoConfig, asic: bool = False):
        self._beat_width = config.dense_macs
        beat = data.StructLayout({"x": data.ArrayLayout(signed(config.act_bits),
                                                        config.dense_macs)})
        super().__init__(config=config, beat_layout=beat, pe_shape=PeShape.dense(config),
                         asic=asic)

    def _front_end(self, m, cmd, scanning, beat_in_row, last, real, real_mask, counters):
        config = self._config
        macs = config.dense_macs
        group = Signal(dispatch_group_layout(config, self._pe_shape))
        group_ready = Signal()
        for lane in range(macs):
            m.d.comb += [group.lanes[lane].operand.eq(Mux(real_mask[lane],
                                                          self.act.payload.x[lane], 0)),
                         group.lanes[lane].k.eq(weight_row(beat_in_row, lane, macs))]
        m.d.comb += [group.first.eq(beat_in_row == 0), group.last.eq(last),
                     self.act.ready.eq(group_ready & scanning)]
        with m.If(self.act.valid & self.act.ready):
            m.d.sync += [counters.full.eq(counters.full + real),
                         counters.lane_slots.eq(counters.lane_slots + macs)]
        return self.act.valid & scanning, group, group_ready
