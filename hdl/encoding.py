"""Encoding unit: forms the values of a beat (differences or activations), classifies them
ZERO / LOW / FULL and splits them into lane operands.

The arithmetic is exactly that of :func:`ditto.sim.encoding.encode`; the tests hold the two
equal on every int8 pair.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ditto import pipeline
from ditto.config import DittoConfig
from ditto.enums import DiffClass, Mode

from ._params import HasConfig, check_config
from .compute_unit import adder_tree

__all__ = ["EncodingUnit", "encoder_input_layout", "encoder_output_layout"]


def _classified_fields(config: DittoConfig) -> dict:
    """The per-element fields of a classified beat, as both encoder registers hold them
    (see :func:`encoder_output_layout`)."""
    lane = signed(config.lane_bits)
    return {
        "cls": data.ArrayLayout(DiffClass, config.scan_width),
        "high": data.ArrayLayout(lane, config.scan_width),
        "low": data.ArrayLayout(lane, config.scan_width),
    }


def _classified_layout(config: DittoConfig) -> data.StructLayout:
    """The encoder's first register: the classified beat and the lane costs of its pairs
    of elements (a missing last element costs 0)."""
    return data.StructLayout({
        **_classified_fields(config),
        "pair_costs": data.ArrayLayout(unsigned(3), -(-config.scan_width // 2)),
        "last": unsigned(1),
    })


def encoder_input_layout(config: DittoConfig) -> data.StructLayout:
    """Payload of the encoder's input stream: one beat of ``scan_width`` elements.

    Fields
    ------
    x_cur, x_prev : ArrayLayout(signed(act_bits), scan_width)
        Current and previous activations: the previous step's (DIFF) or the previous row's
        (SPATIAL); ``x_prev`` is ignored in ACT mode.
    valid : unsigned(scan_width)
        Bit ``n`` set when element ``n`` is real; clear bits are padding (the end of a row)
        and encode as ZERO with zero operands.
    last : 1
        This beat is the last of its row.
    """
    element = signed(config.act_bits)
    return data.StructLayout({
        "x_cur": data.ArrayLayout(element, config.scan_width),
        "x_prev": data.ArrayLayout(element, config.scan_width),
        "valid": unsigned(config.scan_width),
        "last": unsigned(1),
    })


def encoder_output_layout(config: DittoConfig) -> data.StructLayout:
    """Payload of the encoder's output stream: the classified beat and the sums of its lane
    costs (ZERO 0, LOW 1, FULL 2 per element) over ``config.cost_blocks``, from
    which the dispatcher forms each element's place.

    Fields
    ------
    cls : ArrayLayout(DiffClass, scan_width)
        Class of each element.
    high : ArrayLayout(signed(lane_bits), scan_width)
        Operand of the shifted lane: ``v >> split_shift`` for FULL, 0 otherwise.
    low : ArrayLayout(signed(lane_bits), scan_width)
        Operand of the unshifted lane: ``v & (2**split_shift - 1)`` for FULL, ``v`` for LOW,
        0 for ZERO.
    within : ArrayLayout(unsigned, scan_width)
        The lane costs of the elements before element ``n`` in its block (0 for a block's
        first element).
    block_costs : ArrayLayout(unsigned, blocks)
        The lane costs of each block.
    block_pair_costs : ArrayLayout(unsigned, ceil(blocks / 2))
        The lane costs of blocks ``2j`` and ``2j + 1`` together.
    last : 1
        Copied from the input beat.
    """
    blocks = config.cost_blocks
    block = len(blocks[0])
    return data.StructLayout({
        **_classified_fields(config),
        "within": data.ArrayLayout(range(2 * block - 1), config.scan_width),
        "block_costs": data.ArrayLayout(range(2 * block + 1), len(blocks)),
        "block_pair_costs": data.ArrayLayout(range(2 * min(2 * block, config.scan_width) + 1),
                                             -(-len(blocks) // 2)),
        "last": unsigned(1),
    })


class EncodingUnit(HasConfig, wiring.Component):
    """Classify a beat of ``scan_width`` elements and split it into lane operands.

    Per element ``n`` whose ``valid`` bit is set, the encoded value is
    ``v = x_cur[n] - x_prev[n]`` in DIFF and SPATIAL mode (the encoder does not know whether
    ``x_prev`` is the previous step or the previous row) and ``v = x_cur[n]`` in ACT mode,
    and

    - ZERO if ``v == 0``: ``high = low = 0``;
    - LOW if ``v`` fits a signed ``lane_bits`` lane: ``high = 0``, ``low = v``;
    - FULL otherwise: ``high = v >> split_shift`` (arithmetic), ``low = v & (2**split_shift
      - 1)``, so that ``v == (high << split_shift) + low``.

    In ACT mode with ``config.act_classify == False`` (the paper's ACT mode) every valid
    element is FULL, zeros included. Elements whose ``valid`` bit is clear are padding: ZERO
    with zero operands, in every mode.

    Each element's lane cost is its class's value (ZERO 0, LOW 1, FULL 2); the output also
    carries their sums over the blocks of ``config.cost_blocks`` (``within``, ``block_costs``,
    ``block_pair_costs``), the first levels of the dispatcher's prefix sums.

    Function, timing and handshake
    ------------------------------
    - Two registers: the classified beat with the costs of its pairs of elements (one adder
      level after the classification), then the output register with the sums over blocks
      (two adder levels more from the pair costs in a block of eight elements, three for a
      pair of blocks). The sums take a stage of their own because they were the default
      DittoCore's critical path on ECP5 while the dispatcher formed them
      (docs/synthesis.md).
    - Latency: :attr:`LATENCY` = 2 cycles. A beat transferred on ``i`` in cycle ``t`` is
      valid on ``o`` in cycle ``t + 2`` (no combinational path from ``i`` to ``o``).
    - Throughput: one beat per cycle, also under backpressure: each register is refilled
      in the cycle it is emptied; ``i.ready`` is high while the first register is empty or
      moves on (``o.ready`` through two gates).
    - Backpressure: ``o.valid`` and ``o.payload`` hold until ``o.ready``.
    - Reset: clears the valid bits; the data registers have no reset (each is read only
      while its valid bit is high, and a reset would take an input on each flip-flop).
    - ``mode`` is sampled with each input beat; hold it stable during a tile.

    Parameters
    ----------
    config : DittoConfig
        Widths: ``act_bits``, ``lane_bits``, ``scan_width``; ``act_classify``.

    Members
    -------
    mode : In(Mode)
        ACT, or DIFF or SPATIAL (both encode differences).
    i : In(stream.Signature(encoder_input_layout(config)))
        Input beats.
    o : Out(stream.Signature(encoder_output_layout(config)))
        Classified beats, one per input beat, in order.
    """

    #: Cycles from the input transfer of a beat to its output beat being valid.
    LATENCY = pipeline.ENCODER

    def __init__(self, *, config: DittoConfig):
        self._config = check_config(self, config)
        super().__init__({
            "mode": In(Mode),
            "i": In(stream.Signature(encoder_input_layout(config))),
            "o": Out(stream.Signature(encoder_output_layout(config))),
        })

    def elaborate(self, platform):
        config = self._config
        m = Module()
        shift = config.split_shift
        beat = self.i.payload
        # DIFF and SPATIAL differ only in what the feeder sends as ``x_prev``.
        diff = self.mode != Mode.ACT
        # The configuration decides whether ACT mode classifies at elaboration time.
        classify = diff | int(config.act_classify)

        # Stage 1: the classified beat and the costs of pairs of its elements.
        classified = Signal(_classified_layout(config), reset_less=True)
        classified_valid = Signal()
        # Stage 2 (the output register) takes stage 1's beat where it is empty or emptied.
        moves = classified_valid & (~self.o.valid | self.o.ready)
        transfer = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(~classified_valid | moves)
        with m.If(transfer):
            m.d.sync += classified_valid.eq(1)
        with m.Elif(moves):
            m.d.sync += classified_valid.eq(0)
        with m.If(moves):
            m.d.sync += self.o.valid.eq(1)
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        def fits_lane(value):
            # Fits a signed lane: the bits from the lane's sign bit up are all equal (a
            # comparison of a few bits, where a range check would take two adders).
            top = value[config.lane_bits - 1:]
            return (top == 0) | (top == (1 << len(top)) - 1)

        costs = []  # per element: its class, whose value is its lane cost
        for n in range(config.scan_width):
            x_cur, x_prev = beat.x_cur[n], beat.x_prev[n]
            difference = Signal(signed(config.diff_bits), name=f"difference_{n}")
            m.d.comb += difference.eq(x_cur - x_prev)
            value = Mux(diff, difference, x_cur)
            real = beat.valid[n]
            # Each condition is formed on both values and chosen by the mode last, and zero
            # is an equality of the inputs: only ``small`` waits for the subtraction.
            is_zero = Mux(diff, x_cur == x_prev, x_cur == 0)
            small = Signal(name=f"small_{n}")  # classified and fits a lane: ZERO or LOW
            m.d.comb += small.eq(classify & Mux(diff, fits_lane(difference), fits_lane(x_cur)))
            cls = Signal(DiffClass, name=f"cls_{n}")
            with m.If(~real | (classify & is_zero)):
                m.d.comb += cls.eq(DiffClass.ZERO)
            with m.Elif(small):
                m.d.comb += cls.eq(DiffClass.LOW)
            with m.Else():
                m.d.comb += cls.eq(DiffClass.FULL)
            costs.append(cls.as_value())
            # The operands depend on ``real`` and ``small``, not on the whole class: a ZERO
            # value is 0, so it needs no case of its own. ``low``'s bits under the split are
            # the value's in every class; above it they are the value's (LOW) or 0 (FULL: the
            # low part is an unsigned field that reads as 0..2**shift - 1 in the signed lane).
            full = real & ~small
            with m.If(transfer):
                m.d.sync += [
                    classified.cls[n].eq(cls),
                    classified.high[n].eq(Mux(full, value >> shift, 0)),
                    classified.low[n].eq(Cat(Mux(real, value[:shift], 0),
                                             Mux(real & small, value[shift:config.lane_bits],
                                                 0))),
                ]
        # The costs of pairs of elements, one adder level after the classification (a
        # second level here, the quads, was `tiny`'s critical path on ECP5).
        with m.If(transfer):
            m.d.sync += [classified.last.eq(beat.last),
                         *(classified.pair_costs[j].eq(sum(costs[2 * j:2 * j + 2]))
                           for j in range(len(classified.pair_costs)))]

        # Stage 2: the sums over blocks, balanced trees over the pair costs (at most four
        # terms, two adder levels, in a block of eight elements; Yosys shares the common
        # subtrees): an element's sum within its block is the pairs before its own and,
        # when it is odd, its even partner; a block's cost, and a pair of blocks', the sum
        # of their pairs.
        out = Signal.like(self.o.payload, reset_less=True)
        m.d.comb += self.o.payload.eq(out)
        pairs = classified.pair_costs
        blocks = config.cost_blocks

        def pairs_of(elements):
            return [pairs[j] for j in range(elements.start // 2, (elements.stop + 1) // 2)]

        sums = []
        for members in blocks:
            for n in members:
                terms = [*pairs_of(range(members.start, n - n % 2)),
                         *([classified.cls[n - 1].as_value()] if n % 2 else [])]
                sums.append(out.within[n].eq(adder_tree(terms) if terms else 0))
        sums += [out.block_costs[b].eq(adder_tree(pairs_of(members)))
                 for b, members in enumerate(blocks)]
        sums += [out.block_pair_costs[j].eq(adder_tree(pairs_of(range(
                     blocks[2 * j].start, blocks[min(2 * j + 1, len(blocks) - 1)].stop))))
                 for j in range(len(out.block_pair_costs))]
        with m.If(moves):
            m.d.sync += [out.cls.eq(classified.cls), out.high.eq(classified.high),
                         out.low.eq(classified.low), out.last.eq(classified.last), *sums]
        return m
