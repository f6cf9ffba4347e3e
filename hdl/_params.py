"""Parameter checks shared by the components."""

from ditto.config import DittoConfig

__all__ = ["check_config", "check_flag"]


def check_config(owner, config) -> DittoConfig:
    """``config`` if it is a :class:`DittoConfig`, else a TypeError naming the value."""
    if not isinstance(config, DittoConfig):
        # The half-built component will never be elaborated; without this Amaranth would
        # add a misleading "created but never used" warning to the TypeError.
        owner._MustUse__silence = True
        raise TypeError(f"config must be a DittoConfig, not {config!r}")
    return config


def check_flag(owner, name: str, value) -> bool:
    """``value`` if it is a bool, else a TypeError naming the parameter and the value."""
    if not isinstance(value, bool):
        owner._MustUse__silence = True
        raise TypeError(f"{name} must be a bool, not {value!r}")
    return value
