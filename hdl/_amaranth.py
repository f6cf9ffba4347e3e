"""The Amaranth 0.5 internals this project uses, each in one place with the reason; every
other module uses public API only. Check these first when Amaranth is upgraded."""

from amaranth._toolchain import tool_env_var as _tool_env_var
from amaranth.hdl._ir import PortDirection

__all__ = ["PortDirection", "never_elaborated", "tool_env_var"]

# PortDirection: the port directions ``rtlil.convert_fragment`` takes with each port when a
# design is converted from an already elaborated fragment (ASIC output inspects the
# fragment for SRAM macros first); amaranth.hdl does not re-export it in 0.5.


def never_elaborated(component) -> None:
    """Tell Amaranth that ``component`` is deliberately never elaborated (a constructor
    that raises, or an object built only to read its ports), so that it does not add a
    misleading "created but never used" warning. Amaranth 0.5 has no public switch for
    this; ``_MustUse__silence`` is the attribute its ``MustUse`` check reads."""
    component._MustUse__silence = True


def tool_env_var(tool: str) -> str:
    """The environment variable through which Amaranth's build scripts find ``tool``
    (``yosys`` -> ``YOSYS``, ``nextpnr-ice40`` -> ``NEXTPNR_ICE40``), as the build plan's
    scripts read it; Amaranth keeps the function private."""
    return _tool_env_var(tool)
