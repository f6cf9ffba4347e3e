"""Compute unit (processing element): lane multipliers, a two-level adder tree and an
output-stationary partial-sum register, in three pipeline stages.

One lane multiplies a signed ``lane_bits`` operand by a signed int8 weight; the first lane of
each pair (the even lanes) can shift its product left by ``split_shift``, which is how the
high part of a FULL value is weighted. The arithmetic core (:func:`lane_products` and
:func:`adder_tree`) is shared by the pipelined :class:`ComputeUnit` and the combinational
:class:`LaneGroupSum` that the test suite proves equal to plain arithmetic with Yosys.
"""

import operator
from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ditto import pipeline
from ditto.config import DittoConfig

from ._params import check_instance

__all__ = ["ComputeUnit", "LaneGroupSum", "PeShape", "adder_tree", "balanced_tree",
           "lane_group_layout", "lane_layout", "lane_products", "pe_output_layout"]


@dataclass(frozen=True, kw_only=True)
class PeShape:
    """The shape of one compute unit: its lanes, their operand and weight widths, and the
    width of its partial sum. DittoCore's PE is :meth:`ditto`, DenseCore's :meth:`dense`;
    a PE is a leaf and needs nothing else of the configuration."""

    lanes: int
    lane_bits: int
    weight_bits: int
    acc_bits: int

    def __post_init__(self):
        for field in ("lanes", "lane_bits", "weight_bits", "acc_bits"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TypeError(f"PeShape {field}={value!r}: must be a positive integer")
        if self.lanes % 2:
            raise TypeError(f"PeShape lanes={self.lanes}: lanes come in pairs")

    @classmethod
    def ditto(cls, config: DittoConfig) -> "PeShape":
        """DittoCore's PE: ``config.lanes`` lanes of ``config.lane_bits``."""
        return cls(lanes=config.lanes, lane_bits=config.lane_bits,
                   weight_bits=config.weight_bits, acc_bits=config.acc_bits)

    @classmethod
    def dense(cls, config: DittoConfig) -> "PeShape":
        """DenseCore's PE: ``config.dense_macs`` lanes of whole activations."""
        return cls(lanes=config.dense_macs, lane_bits=config.act_bits,
                   weight_bits=config.weight_bits, acc_bits=config.acc_bits)

    @property
    def split_shift(self) -> int:
        """The even lanes' shift: a FULL value is ``(h << split_shift) + l``."""
        return self.lane_bits - 1



def lane_layout(shape: PeShape) -> data.StructLayout:
    """One lane: ``operand`` signed(lane_bits), ``shift`` 1 bit, ``weight`` signed(8).

    ``shift`` multiplies the product by ``2**split_shift``; only even lanes have a shifter,
    the ``shift`` bit of an odd lane is ignored (drivers keep it 0).
    """
    return data.StructLayout({
        "operand": signed(shape.lane_bits),
        "shift": unsigned(1),
        "weight": signed(shape.weight_bits),
    })


def lane_group_layout(shape: PeShape) -> data.StructLayout:
    """Payload of the PE's input stream: one lane group.

    Fields
    ------
    lanes : ArrayLayout(lane_layout(shape), lanes)
        The lane operands and their weights. An idle lane has operand 0.
    first : 1
        This group starts a row: the partial sum restarts from 0.
    last : 1
        This group ends a row: the row's sum is emitted.
    """
    return data.StructLayout({
        "lanes": data.ArrayLayout(lane_layout(shape), shape.lanes),
        "first": unsigned(1),
        "last": unsigned(1),
    })


def pe_output_layout(shape: PeShape) -> data.StructLayout:
    """Payload of the PE's output stream: ``sum`` signed(acc_bits), one beat per row."""
    return data.StructLayout({"sum": signed(shape.acc_bits)})


def lane_products(lanes, shape: PeShape) -> list[Value]:
    """The lane products of a group, the even lanes' shifted by ``split_shift`` if asked.

    Exact: the values have the natural widths of the products (no truncation).
    """
    products = []
    for index in range(shape.lanes):
        lane = lanes[index]
        product = lane.operand * lane.weight
        if index % 2 == 0:
            product = Mux(lane.shift, product << shape.split_shift, product)
        products.append(product)
    return products


def balanced_tree(values: list, combine) -> Value:
    """``values`` combined pairwise, level by level (for 4 values: two pairs, then their
    pair), so the depth is ``ceil(log2(len(values)))``."""
    while len(values) > 1:
        pairs = [combine(values[i], values[i + 1]) for i in range(0, len(values) - 1, 2)]
        values = pairs + values[len(pairs) * 2:]
    return values[0]


def adder_tree(values: list[Value]) -> Value:
    """Balanced binary sum (for 4 lanes: two pair sums, then their sum), exact widths."""
    return balanced_tree(values, operator.add)


class LaneGroupSum(wiring.Component):
    """Combinational arithmetic core of a PE: the exact sum of one lane group's products.

    ``sum = sum_j operand_j * weight_j * (2**split_shift if j is even and shift_j else 1)``,
    computed by the same :func:`lane_products` and :func:`adder_tree` as
    :class:`ComputeUnit` (which registers the products and the tree's sum) and
    sign-extended to ``acc_bits``. Used for the formal equivalence proof; no clock.

    Parameters
    ----------
    shape : PeShape
        ``lanes``, ``lane_bits``, ``weight_bits``, ``acc_bits``.

    Members
    -------
    lanes : In(ArrayLayout(lane_layout(shape), lanes))
        The group.
    sum : Out(signed(acc_bits))
        Its exact sum (wide enough for any group: ``acc_bits`` holds a full-reduction sum).
    """

    def __init__(self, *, shape: PeShape):
        self._shape = check_instance(self, "shape", shape, PeShape)
        super().__init__({
            "lanes": In(data.ArrayLayout(lane_layout(shape), shape.lanes)),
            "sum": Out(signed(shape.acc_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.sum.eq(adder_tree(lane_products(self.lanes, self._shape)))
        return m


class ComputeUnit(wiring.Component):
    """One processing element: multiply a lane group by its weights, reduce it, accumulate
    a row's groups into a partial sum of ``acc_bits`` and emit it at the row's end.

    Pipeline: four stages of one register each, hence :data:`ditto.pipeline.PE`:

    1. *operands*: the group (operands, shifts, weights, ``first``, ``last``) registered as
       it arrives;
    2. *products*: the lane multipliers and the even lanes' shifts (:func:`lane_products`),
       into the product registers;
    3. *group sum*: the two-level adder tree (:func:`adder_tree`) of the registered
       products, into the group-sum register (the tree's exact width, not ``acc_bits``);
    4. *accumulate*: the group sum added to the partial sum (or to 0 on ``first``), into
       the partial-sum register, which is also the output register.

    The operand register gives each PE its own copy of the group, placed beside its own
    multipliers: on the ECP5 the hard multipliers sit in a few rows, and a register shared
    by the PEs, or one beside the weight buffer, was a long wire away from most of them
    (the default DittoCore's critical path). Registering the tree's sum keeps the adder
    tree and the ``acc_bits`` accumulation add out of one cycle (on an iCE40 HX8K, the two
    in one stage were the critical path).
    Arithmetic is exact signed arithmetic; the partial sum wraps modulo ``2**acc_bits``
    only beyond the range the config guarantees (``max_reduction`` elements of int8
    differences times int8 weights).

    Function, timing and handshake
    ------------------------------
    - Latency: :attr:`LATENCY` = ``pipeline.PE`` cycles, one per stage. If the group
      carrying ``last`` is transferred in cycle ``t``, the row's ``sum`` is valid on ``o``
      in cycle ``t + LATENCY``.
    - Throughput: one group per cycle while ``o`` is ready (or not holding a beat).
    - Backpressure: while an output beat waits (``o.valid & ~o.ready``) the whole pipeline
      holds and ``i.ready`` is low: ``i.ready = ~o.valid | o.ready``.
    - Rows: a row is the groups up to one with ``last`` (one group may carry ``first`` and
      ``last``). A group with ``first`` starts from 0, a group without adds to the running
      partial sum, which the register keeps after a row's output: a row whose first group
      has no ``first`` continues from the previous row's sum (DittoCore's SPATIAL chain).
    - Reset: clears the pipeline's valid bits; the partial sum is cleared by the next
      ``first``.

    Parameters
    ----------
    shape : PeShape
        ``lanes``, ``lane_bits``, ``weight_bits``, ``acc_bits`` (``PeShape.ditto(config)``
        in DittoCore, ``PeShape.dense(config)`` in DenseCore).

    Members
    -------
    i : In(stream.Signature(lane_group_layout(shape)))
        Lane groups.
    o : Out(stream.Signature(pe_output_layout(shape)))
        One beat per row: the row's sum.
    """

    #: Cycles from the transfer of a row's ``last`` group to the row's output beat.
    LATENCY = pipeline.PE

    def __init__(self, *, shape: PeShape):
        self._shape = check_instance(self, "shape", shape, PeShape)
        super().__init__({
            "i": In(stream.Signature(lane_group_layout(shape))),
            "o": Out(stream.Signature(pe_output_layout(shape))),
        })

    @property
    def shape(self) -> PeShape:
        return self._shape

    def elaborate(self, platform):
        shape = self._shape
        m = Module()
        group = self.i.payload
        # One stall signal for the whole pipeline: the partial-sum register is the output
        # register, so nothing may move while an output beat waits.
        advance = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(advance)

        # Stage 1: the group, registered in this PE. Each PE has its own copy of the
        # operands, so that the register can sit beside this PE's multipliers (on an FPGA
        # the hard multipliers are few and far apart).
        operands = Signal.like(group, name="operands", reset_less=True)
        o_valid = Signal()
        with m.If(advance):
            m.d.sync += [o_valid.eq(self.i.valid), operands.eq(group)]

        # Stage 2: the lane products.
        products = lane_products(operands.lanes, shape)
        held = [Signal.like(p, name=f"product_{j}") for j, p in enumerate(products)]
        p_valid = Signal()
        p_first = Signal()
        p_last = Signal()
        with m.If(advance):
            m.d.sync += [
                p_valid.eq(o_valid),
                p_first.eq(operands.first),
                p_last.eq(operands.last),
                *(h.eq(p) for h, p in zip(held, products, strict=True)),
            ]

        # Stage 3: the group's sum.
        tree = adder_tree(held)
        group_sum = Signal.like(tree, name="group_sum")
        s_valid = Signal()
        s_first = Signal()
        s_last = Signal()
        with m.If(advance):
            m.d.sync += [
                s_valid.eq(p_valid),
                s_first.eq(p_first),
                s_last.eq(p_last),
                group_sum.eq(tree),
            ]

        # Stage 4: the row's partial sum, also the output register.
        partial = self.o.payload.sum
        base = Mux(s_first, 0, partial)
        with m.If(advance):
            with m.If(s_valid):
                m.d.sync += partial.eq(base + group_sum)
            m.d.sync += self.o.valid.eq(s_valid & s_last)
        return m
