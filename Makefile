# Ditto-HW: the commands users run. `make demo` and `make test` install what is missing first.
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install demo test lint check-wheel bench bench-trace bench-sim regress train-dit clean

$(STAMP): pyproject.toml scripts/install.sh
	bash scripts/install.sh
	touch $(STAMP)

install: $(STAMP)

# The main job: real trajectory -> Verilog -> evaluation with synthesis and an RTL sample.
demo: install
	bash scripts/demo.sh

lint: install
	$(BIN)/ruff check .

# The suite on every core (pytest-xdist), one test file per worker at a time: a file's
# module fixtures (a captured trace, a built model) are made once.
test: install lint
	$(BIN)/pytest -n auto --dist loadfile $(PYTEST_ARGS)
	bash scripts/check_wheel.sh

# The wheel on its own, in a fresh virtual environment (part of 'make test').
check-wheel: install
	bash scripts/check_wheel.sh

bench: install
	$(BIN)/ditto bench

# Simulated cycles per second of the default DittoCore on the real-trace tiles, one tier
# after another (each ends with a line 'simulated cycles/s: N'): cocotb on Icarus, cocotb on
# Verilator, the Verilator bulk tier.
bench-sim: install
	$(BIN)/ditto regress --config default -k ditto_core_real_tiles --sim icarus
	$(BIN)/ditto regress --config default -k ditto_core_real_tiles --sim verilator
	$(BIN)/ditto regress --config default -k ditto_core_bulk

regress: install
	$(BIN)/ditto regress

# Capture + analysis of a 20-step real trajectory (all layers), timed, then the exactness
# check over every layer and step.
bench-trace: install
	bash scripts/bench_trace.sh

# Train the small class-conditional DiT on scikit-learn's digits (JAX, CPU, about 10 minutes)
# and export it to sim/models/dit_digits.onnx, with its sample grid and quality figure.
train-dit: install
	$(BIN)/python -m pip install -q -e '.[dev,trace,train]'
	$(BIN)/python scripts/train_dit.py

clean:
	rm -rf build .pytest_cache .ruff_cache .hypothesis
