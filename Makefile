# Ditto-HW: the commands users run. `make demo` and `make test` install what is missing first.
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install demo test lint check-wheel bench bench-trace bench-sim regress clean

$(STAMP): pyproject.toml scripts/install.sh
	bash scripts/install.sh
	touch $(STAMP)

install: $(STAMP)

# The main job: real trajectory -> Verilog -> evaluation with synthesis and an RTL sample.
demo: install
	bash scripts/demo.sh

lint: install
	$(BIN)/ruff check .

test: install lint
	$(BIN)/pytest $(PYTEST_ARGS)
	bash scripts/check_wheel.sh

# The wheel on its own, in a fresh virtual environment (part of 'make test').
check-wheel: install
	bash scripts/check_wheel.sh

bench: install
	$(BIN)/ditto bench

# Simulated cycles per second of DittoCore (real-trace tiles), Icarus and Verilator.
bench-sim: install
	$(BIN)/ditto regress --config default -k ditto_core --sim icarus
	$(BIN)/ditto regress --config default -k ditto_core --sim verilator

regress: install
	$(BIN)/ditto regress

# Capture + analysis of a 20-step real trajectory (all layers), timed, then the exactness
# check over every layer and step.
bench-trace: install
	bash scripts/bench_trace.sh

clean:
	rm -rf build .pytest_cache .ruff_cache .hypothesis
