#!/usr/bin/env bash
# Run the benchmark suite on an NVIDIA GPU.
#
#   bash benchmarks/gpu.sh [run.py options]        e.g.  bash benchmarks/gpu.sh --quick
#
# Makes a virtual environment (VENV, default /tmp/neurojax-gpu-venv), installs neurojax
# from this checkout with the CUDA 12 jax wheels matching the installed jax version
# ("jax[cuda12]"), checks that jax sees a GPU, and runs benchmarks/run.py with the
# scaling case up to 1M neurons (MAX_N) and no CPU anchors (ANCHORS=none; Brian2 and
# BrainPy run on the CPU, which is not the comparison a GPU run is for).
#
# Environment:
#   VENV=path         the virtual environment to create or reuse
#   WHEELS=dir        install offline from wheels in `dir` (pip --no-index --find-links)
#   CUDA_EXTRA=...    jax extra to install (default cuda12; cuda13 for CUDA 13 drivers)
#   MAX_N=n           largest scaling size (default 1000000)
#   ANCHORS=list      anchors passed to run.py (default none)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-/tmp/neurojax-gpu-venv}"
CUDA_EXTRA="${CUDA_EXTRA:-cuda12}"
MAX_N="${MAX_N:-1000000}"
ANCHORS="${ANCHORS:-none}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install -q)
if [ -n "${WHEELS:-}" ]; then
    PIP+=(--no-index --find-links "$WHEELS")
fi
"${PIP[@]}" -e "$ROOT"
# The CUDA plugin must match jaxlib exactly: pin jax to the version just installed.
JAX_VERSION="$("$VENV/bin/python" -c 'import jax; print(jax.__version__)')"
"${PIP[@]}" "jax[$CUDA_EXTRA]==$JAX_VERSION"

"$VENV/bin/python" - <<'EOF'
import jax
backend = jax.default_backend()
print(f"jax {jax.__version__}: backend {backend}, devices {jax.devices()}")
if backend != "gpu":
    raise SystemExit("jax does not see a GPU (driver missing, or a CPU-only jaxlib won): not running the GPU suite.")
EOF

export PYTHONUNBUFFERED=1
# Let the benchmarks measure peak memory themselves rather than see XLA's 75 % preallocation.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
exec "$VENV/bin/python" "$ROOT/benchmarks/run.py" --anchors "$ANCHORS" --max-n "$MAX_N" "$@"
