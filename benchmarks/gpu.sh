#!/usr/bin/env bash
# Run the benchmark suite on an NVIDIA GPU.
#
#   bash benchmarks/gpu.sh [run.py options]        e.g.  bash benchmarks/gpu.sh --quick
#
# If PYTHON (default python3) already has a jax that sees a GPU (a CUDA image, or a
# machine with no network), neurojax runs from this checkout on that interpreter
# (PYTHONPATH; its dependencies must be installed there). Otherwise it makes a virtual
# environment (VENV, default /tmp/neurojax-gpu-venv), installs neurojax from this
# checkout with the CUDA jax wheels matching the installed jax version ("jax[cuda12]").
# Then it checks that jax sees a GPU and runs benchmarks/run.py with the scaling case up
# to 1M neurons (MAX_N) and no CPU anchors (ANCHORS=none; Brian2 and BrainPy run on the
# CPU, which is not the comparison a GPU run is for).
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

if "$PY" -c 'import jax, sys; sys.exit(jax.default_backend() != "gpu")' 2>/dev/null; then
    RUN_PY="$(command -v "$PY")"
    export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
    echo "using $RUN_PY's GPU jax with neurojax from $ROOT"
else
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
    RUN_PY="$VENV/bin/python"
fi

"$RUN_PY" - <<'EOF'
import jax
backend = jax.default_backend()
print(f"jax {jax.__version__}: backend {backend}, devices {jax.devices()}")
if backend != "gpu":
    raise SystemExit("jax does not see a GPU (driver missing, or a CPU-only jaxlib won): not running the GPU suite.")
EOF

export PYTHONUNBUFFERED=1
# Let the benchmarks measure peak memory themselves rather than see XLA's 75 % preallocation.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
exec "$RUN_PY" "$ROOT/benchmarks/run.py" --anchors "$ANCHORS" --max-n "$MAX_N" "$@"
