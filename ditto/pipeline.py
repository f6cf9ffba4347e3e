"""Pipeline latencies of the reference microarchitecture, each declared once, here.

Each hardware stage reads its own latency from this module (its ``LATENCY`` attribute), and
everything that needs a total adds these up: ``DittoConfig.front_latency`` and
``drain_latency``, hence the cycle model (``ditto.sim.cycles``) and the tests. This module
sits below both the model and the gateware so that neither has to import the other.

Each figure is the number of cycles from a beat's transfer into the stage to the stage's
output being valid (for the dispatch FIFO: from a group's push to the first cycle it may
leave).
"""

__all__ = ["ACCUMULATOR", "DISPATCH_FIFO", "ENCODER", "PACKER", "PE", "WEIGHT_READ"]

#: EncodingUnit: the register of classified beats (with the lane costs of pairs of
#: elements), then the output register with the costs summed over blocks of elements
#: (the first levels of the dispatcher's prefix sums, the default DittoCore's critical path
#: on ECP5 while the dispatcher formed them in its own first stage).
ENCODER = 2
#: ZeroSkipDispatcher's input stages: the beat and its prefix sums, then the packer's
#: register (the beat and the slot of each element), from which the packer pushes.
PACKER = 2
#: Dispatch FIFO: groups pushed in cycle t can leave from cycle t + DISPATCH_FIFO.
DISPATCH_FIFO = 1
#: Group stage of both cores: the weight buffer's synchronous read of the group's rows,
#: then a register of the read weights beside the block RAMs (their outputs into the PEs'
#: registers were the default DittoCore's critical path on ECP5 without it).
WEIGHT_READ = 2
#: ComputeUnit: the group's register (each PE's own copy, beside its multipliers), products
#: register, adder tree into the group-sum register, then the accumulation add into the
#: partial-sum register (the tree and the add in one cycle were the PE's critical path on
#: the iCE40 HX8K).
PE = 4
#: AccumulationBuffer: read, a register of the read row (the block RAM's output was both
#: cores' critical path on ECP5 once the weights were registered), add-and-write, then the
#: output register.
ACCUMULATOR = 3
