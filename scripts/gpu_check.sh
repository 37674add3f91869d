#!/usr/bin/env bash
# One prepared check of the CUDA path (issue 18): installs what it needs, checks that CUDA is there,
# then runs the parity tests, the simulator, the views' controllers and the benchmarks on the GPU,
# each step with its own timeout inside one budget (about 8 minutes on a GPU), and writes every
# figure to one results file. --cpu: the same steps on the CPU at small sizes. The steps themselves
# are benchmarks/gpu_check.py; `scripts/gpu_check.sh --help` lists the options and steps.
# On a lent GPU machine: scripts/gpu_check.sh --out "$OUT/gpu_check.json" (the file comes back).
set -euo pipefail
cd "$(dirname "$0")/.."
# the interpreter: $PYTHON, else the first of python3, python that has torch (a CUDA image may hold
# it in one of them only), else python3
if [ -z "${PYTHON:-}" ]; then
    for candidate in python3 python; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c \
            "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)" 2>/dev/null; then
            PYTHON="$candidate"
            break
        fi
    done
fi
PY="$(command -v "${PYTHON:-python3}")" || { echo "gpu_check.sh: no ${PYTHON:-python3} here; set PYTHON" >&2; exit 2; }
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # optiviz importable even where pip cannot install it
exec "$PY" benchmarks/gpu_check.py --python "$PY" "$@"
