"""The Amaranth generator of the Ditto hardware (``ditto.hdl``).

The parameter checks and the two Amaranth helpers below are public so that designs built
on these components (the FPGA self-test in ``ditto.boards``) and the tests use them too.
"""

from ._amaranth import never_elaborated, tool_env_var
from ._params import HasConfig, check_config, check_flag, check_instance

__all__ = ["HasConfig", "check_config", "check_flag", "check_instance", "never_elaborated",
           "tool_env_var"]
