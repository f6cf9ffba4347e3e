"""Parameter checks shared by the components."""

from ditto.config import DittoConfig

from ._amaranth import never_elaborated

__all__ = ["HasConfig", "check_config", "check_flag", "check_instance"]


def check_instance(owner, name: str, value, cls: type):
    """``value`` if it is a ``cls``, else a TypeError naming the parameter and the value."""
    if not isinstance(value, cls):
        never_elaborated(owner)  # half built: it raises here
        raise TypeError(f"{name} must be a {cls.__name__}, not {value!r}")
    return value


def check_config(owner, config) -> DittoConfig:
    """``config`` if it is a :class:`DittoConfig`, else a TypeError naming the value."""
    return check_instance(owner, "config", config, DittoConfig)


def check_flag(owner, name: str, value) -> bool:
    """``value`` if it is a bool, else a TypeError naming the parameter and the value."""
    if not isinstance(value, bool):
        never_elaborated(owner)
        raise TypeError(f"{name} must be a bool, not {value!r}")
    return value


class HasConfig:
    """Mixin of the components built for one :class:`DittoConfig`: ``config`` is the
    config they were built for (which their constructor checked into ``_config``)."""

    @property
    def config(self) -> DittoConfig:
        return self._config
