"""Ditto-HW: temporal-difference acceleration for diffusion models.

Subpackages: ``ditto.sim`` (reference and cycle model), ``ditto.hdl`` (Amaranth generator),
``ditto.verif`` (cocotb testbenches), ``ditto.boards`` (FPGA targets).
"""

from .config import PRESETS, ConfigError, DittoConfig, preset

__all__ = ["PRESETS", "ConfigError", "DittoConfig", "preset"]
