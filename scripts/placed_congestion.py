"""Estimate where a *placed* ECP5 design needs the most routing, and which component needs it.

A congested design keeps nextpnr's router1 busy for hours without saying where. This
diagnostic reads the placed netlist that ``nextpnr-ecp5 ... --no-route --write placed.json``
writes and computes a RUDY estimate (rectangular uniform wire density): each net spreads its
half-perimeter wirelength evenly over its bounding box, and a tile's demand is the sum over
the nets whose boxes cover it, in wire-tiles per tile. It prints the hottest tiles, the
components whose nets make their demand (a net belongs to the component of its driver), and
where each component's cells sit. The figures compare regions of one design; they are not
nextpnr's routing resources.

Usage: ``python scripts/placed_congestion.py placed.json [N]`` (N hottest tiles, default 15).
"""

import collections
import json
import re
import sys

#: Nets with more sinks than this (the clock, resets) are left out: global or dedicated.
MAX_FANOUT = 2000


def component(cell_name: str) -> str:
    """The wrapped core's submodule a cell belongs to (``dispatcher``, ``pe_3``...), or
    ``core`` for the core's own logic and the I/O harness."""
    parts = cell_name.removeprefix("inner.").split(".")
    return parts[0] if len(parts) > 1 else "core"


def main(path: str, shown: int) -> None:
    design = json.load(open(path))
    top = next(module for module in design["modules"].values() if module["cells"])
    location, driver_of, pins = {}, {}, collections.defaultdict(list)
    for name, cell in top["cells"].items():
        found = re.match(r"X(\d+)/Y(\d+)", cell["attributes"].get("NEXTPNR_BEL", ""))
        if found is None:
            sys.exit(f"{path}: cell {name} has no placement; write the netlist with "
                     f"nextpnr's --write after placement (--no-route)")
        location[name] = int(found.group(1)), int(found.group(2))
        for port, bits in cell["connections"].items():
            output = cell.get("port_directions", {}).get(port) == "output"
            for bit in bits:
                if isinstance(bit, int):
                    pins[bit].append(name)
                    if output:
                        driver_of[bit] = name

    demand = collections.Counter()
    by_component = collections.defaultdict(collections.Counter)
    for bit, cells in pins.items():
        if not 2 <= len(cells) <= MAX_FANOUT or bit not in driver_of:
            continue
        xs = [location[cell][0] for cell in cells]
        ys = [location[cell][1] for cell in cells]
        width, height = max(xs) - min(xs) + 1, max(ys) - min(ys) + 1
        density = (width + height) / (width * height)
        owner = component(driver_of[bit])
        for x in range(min(xs), max(xs) + 1):
            for y in range(min(ys), max(ys) + 1):
                demand[x, y] += density
                by_component[x, y][owner] += density

    print(f"hottest tiles of {len(demand)} (demand in wire-tiles per tile; the components "
          f"whose nets make most of it):")
    for tile, value in demand.most_common(shown):
        parts = ", ".join(f"{name} {share:.0f}" for name, share
                          in by_component[tile].most_common(3))
        print(f"  {tile}  {value:6.1f}  {parts}")
    print("tiles by demand, per band of 20:", ", ".join(
        f"{band}-{band + 19}: {count}" for band, count in
        sorted(collections.Counter(int(v // 20) * 20 for v in demand.values()).items())))
    print("components: cells, and the x and y spans of their middle 80 %:")
    cells_of = collections.defaultdict(list)
    for name, tile in location.items():
        cells_of[component(name)].append(tile)
    for name, tiles in sorted(cells_of.items(), key=lambda item: -len(item[1])):
        xs, ys = sorted(t[0] for t in tiles), sorted(t[1] for t in tiles)
        low, high = len(tiles) // 10, (len(tiles) * 9) // 10
        print(f"  {name:24} {len(tiles):6}  x {xs[low]}-{xs[min(high, len(xs) - 1)]}"
              f"  y {ys[low]}-{ys[min(high, len(ys) - 1)]}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 15)
