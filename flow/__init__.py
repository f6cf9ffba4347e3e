"""Tool flows (``ditto.flow``): synthesis and place and route with the yowasp tools, area
and equal-area figures, the design-space sweep and the one tool runner. They sit above the
model (``ditto.sim``) and the generator (``ditto.hdl``) and may use both."""
