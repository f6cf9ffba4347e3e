#!/usr/bin/env bash
# The wheel works on its own: build it, install it into a fresh virtual environment, and
# run 'ditto generate' and 'ditto evaluate' from there, outside the source tree (so nothing
# is imported from the checkout). Part of 'make test'.
set -euo pipefail
cd "$(dirname "$0")/.."
work=build/wheel-check
rm -rf "$work"
mkdir -p "$work"
echo "check-wheel: building the wheel"
.venv/bin/python -m pip wheel -q --no-deps -w "$work/dist" .
wheel=$(ls "$work"/dist/ditto_hw-*.whl)
echo "check-wheel: installing $wheel into a fresh virtual environment"
.venv/bin/python -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "$wheel"
cd "$work"
echo "check-wheel: ditto generate --config tiny"
venv/bin/ditto generate --config tiny --out rtl >/dev/null
test -s rtl/manifest.json
echo "check-wheel: ditto evaluate --config tiny (the packaged fixture)"
venv/bin/ditto evaluate --config tiny --json eval.json >/dev/null
venv/bin/python - <<'PY'
import json
result = json.load(open("eval.json"))
assert result["workload"]["source"] == "fixture", result["workload"]
assert result["config"]["name"] == "tiny"
# The bulk tier's harness is built from the installed package's copy.
from ditto.verif.bulk import HARNESS
assert HARNESS.is_file(), HARNESS
# The sampler specs, the DiT's model file and both real-trace fixtures are package data.
from ditto.sim.fixtures import FIXTURES
from ditto.sim.spec import BUILTIN_SPECS, load_spec
assert set(BUILTIN_SPECS) == {"terrain", "dit-digits"}, BUILTIN_SPECS
assert load_spec("dit-digits").model_path().is_file()
assert all(path.is_file() for path in FIXTURES), FIXTURES
PY
echo "check-wheel: passed"
