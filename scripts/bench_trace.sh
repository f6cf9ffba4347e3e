#!/usr/bin/env bash
# Benchmark: capture and analyse a real 20-step trajectory on the default config, print the
# times, then check exactness (DIFF == plain integer product) on every layer and step.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-20}
TRACE=build/traces/terrain-$STEPS.npz
t0=$(date +%s.%N)
.venv/bin/ditto trace --steps "$STEPS" --out "$TRACE"
t1=$(date +%s.%N)
.venv/bin/ditto analyze "$TRACE" --json "build/terrain-$STEPS.json" --report "build/terrain-$STEPS.md" | tail -3
t2=$(date +%s.%N)
.venv/bin/ditto exactness "$TRACE"
t3=$(date +%s.%N)
python3 - "$t0" "$t1" "$t2" "$t3" "$STEPS" <<'PY'
import sys
t0, t1, t2, t3 = map(float, sys.argv[1:5])
print(f"capture {t1 - t0:.1f} s + analysis {t2 - t1:.1f} s = {t2 - t0:.1f} s "
      f"for {sys.argv[5]} steps, all layers, batch 1; exactness check {t3 - t2:.1f} s")
PY
