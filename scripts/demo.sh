#!/usr/bin/env bash
# The main job on the default configuration: capture a short real trajectory of the
# pretrained terrain U-Net (or fall back to the committed real-trace fixture), generate the
# Verilog, then evaluate: whole trajectory through both cores' cycle models, a generic
# synthesis of both cores for the equal-area speedup, one random tile per layer type through
# the RTL (Verilator), the summary table.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
CONFIG=${CONFIG:-default}
STEPS=${STEPS:-8}
TRACE=build/traces/terrain-$STEPS.npz

if [ ! -f "$TRACE" ]; then
  echo "demo: capturing $STEPS steps of the real model into $TRACE"
  if ! $BIN/ditto trace --steps "$STEPS" --out "$TRACE"; then
    echo "demo: capture failed; evaluating the committed real-trace fixture instead" >&2
    TRACE=""
  fi
fi
echo "demo: generating the Verilog of $CONFIG"
$BIN/ditto generate --config "$CONFIG" --out "build/rtl/$CONFIG" >/dev/null
echo "demo: evaluating (cycle models, synthesis, RTL sample)"
$BIN/ditto evaluate ${TRACE:+"$TRACE"} --config "$CONFIG" --rtl-sample 1 \
  --json build/eval.json --report build/eval.md
