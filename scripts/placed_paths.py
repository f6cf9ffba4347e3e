"""Rank the register-to-register paths of a *placed* (not routed) ECP5 design.

nextpnr prints only a post-placement Fmax, not the path behind it, and a congested design can
keep its router busy for hours. This diagnostic reads the placed netlist that ``nextpnr-ecp5
... --no-route --write placed.json`` writes, and ranks the paths by a rough delay: 0.45 ns a
LUT, 0.06 ns a carry step (dedicated carry wiring, no net delay), 0.5 ns clock-to-output
(4 ns from a block RAM, 2 ns from a multiplier), and a net delay growing with the Manhattan
distance between the two cells (0.12 ns per unit, as nextpnr's ECP5 estimate: 3 + twice the
first 5 tiles in x and y + the tiles beyond). The figures are for *ranking* only, not an
Fmax: they do not match nextpnr's timing model.

Usage: ``python scripts/placed_paths.py placed.json [N]`` prints the N worst endpoints (one
per register bank) with the cells of their paths: arrival, tile (x, y), cell type, net.
"""

import json
import re
import sys

#: Cells whose outputs start paths and whose inputs end them.
SEQUENTIAL = {"TRELLIS_FF": 0.5, "DP16KD": 4.0, "MULT18X18D": 2.0, "TRELLIS_IO": 0.0,
              "ALU54B": 2.0, "TRELLIS_RAMW": 0.5, "DCCA": 0.0}
LUT_DELAY, CARRY_DELAY, SETUP = 0.45, 0.06, 0.1
CLOCK_PORTS = {"CLK", "CLKA", "CLKB"}


def net_delay(a: tuple[int, int], b: tuple[int, int]) -> float:
    dx, dy = abs(a[0] - b[0]), abs(a[1] - b[1])
    return 0.12 * (3 + max(dx - 5, 0) + max(dy - 5, 0) + 2 * (min(dx, 5) + min(dy, 5)))


def main(path: str, shown: int) -> None:
    design = json.load(open(path))
    top = next(module for module in design["modules"].values() if module["cells"])
    cells = top["cells"]
    names: dict[int, str] = {}
    for name, net in top.get("netnames", {}).items():
        for bit in net["bits"]:
            if isinstance(bit, int) and (bit not in names or len(name) < len(names[bit])):
                names[bit] = name

    def location(cell: dict) -> tuple[int, int]:
        found = re.match(r"X(\d+)/Y(\d+)", cell["attributes"].get("NEXTPNR_BEL", ""))
        if found is None:
            sys.exit(f"{path}: cell without a placement; write it with nextpnr's --write "
                     f"after placement (--no-route)")
        return int(found.group(1)), int(found.group(2))

    def is_output(cell: dict, port: str) -> bool:
        return cell.get("port_directions", {}).get(port) == "output"

    driver: dict[int, tuple[str, str]] = {}
    for cell_name, cell in cells.items():
        for port, bits in cell["connections"].items():
            if is_output(cell, port):
                for bit in bits:
                    if isinstance(bit, int):
                        driver[bit] = (cell_name, port)

    arrival: dict[int, float] = {}
    previous: dict[int, int | None] = {}
    for bit, (cell_name, _port) in driver.items():
        cell_type = cells[cell_name]["type"]
        if cell_type in SEQUENTIAL or "PACKER_" in names.get(bit, ""):
            arrival[bit] = SEQUENTIAL.get(cell_type, 0.0)
            previous[bit] = None

    def inputs_of(bit: int) -> list[tuple[str, int]]:
        cell = cells[driver[bit][0]]
        return [(port, b) for port, bits in cell["connections"].items()
                if not is_output(cell, port) for b in bits if isinstance(b, int) and b in driver]

    def arrive(bit: int) -> float:
        # Iterative depth-first evaluation: combinational depth exceeds Python's stack.
        stack, visiting = [(bit, False)], set()
        while stack:
            current, expanded = stack.pop()
            if current in arrival:
                continue
            if not expanded:
                if current in visiting:  # its evaluation is pending further down the stack
                    sys.exit(f"{path}: combinational loop through {names.get(current)}")
                visiting.add(current)
                stack.append((current, True))
                stack.extend((b, False) for _, b in inputs_of(current) if b not in arrival)
                continue
            cell_name, port = driver[current]
            best, best_input = 0.0, None
            for q, b in inputs_of(current):
                carry = q == "FCI" and port == "FCO"
                wire = 0.0 if q == "FCI" else net_delay(location(cells[driver[b][0]]),
                                                       location(cells[cell_name]))
                t = arrival[b] + wire + (CARRY_DELAY if carry else LUT_DELAY)
                if t > best:
                    best, best_input = t, b
            arrival[current], previous[current] = best, best_input
        return arrival[bit]

    endpoints = []
    for cell_name, cell in cells.items():
        if cell["type"] not in SEQUENTIAL:
            continue
        for port, bits in cell["connections"].items():
            if is_output(cell, port) or port in CLOCK_PORTS:
                continue
            for bit in bits:
                if isinstance(bit, int) and bit in driver:
                    t = arrive(bit) + net_delay(location(cells[driver[bit][0]]),
                                                location(cell)) + SETUP
                    endpoints.append((t, cell_name, port, bit))
    endpoints.sort(reverse=True)

    banks = set()
    for t, cell_name, port, bit in endpoints:
        bank = cell_name.split("_TRELLIS")[0]
        if bank in banks:
            continue
        banks.add(bank)
        print(f"\n{t:6.2f}  -> {cell_name}.{port}")
        while bit is not None:
            source, source_port = driver[bit]
            print(f"  {arrival[bit]:6.2f}  {location(cells[source])}  {cells[source]['type']}"
                  f".{source_port}  {names.get(bit, '?')[:100]}")
            bit = previous.get(bit)
        if len(banks) >= shown:
            break


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 10)
