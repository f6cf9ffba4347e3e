"""Parameter checks shared by the components."""

from ditto.config import DittoConfig

__all__ = ["check_config"]


def check_config(owner, config) -> DittoConfig:
    """``config`` if it is a :class:`DittoConfig`, else a TypeError naming the value."""
    if not isinstance(config, DittoConfig):
        # The half-built component will never be elaborated; without this Amaranth would
        # add a misleading "created but never used" warning to the TypeError.
        owner._MustUse__silence = True
        raise TypeError(f"config must be a DittoConfig, not {config!r}")
    return config
