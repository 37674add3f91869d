#!/usr/bin/env bash
# One prepared check of the CUDA path (issue 18): installs what it needs, checks that CUDA is there,
# then runs the parity tests, the simulator, the views' controllers and the benchmarks on the GPU,
# each step with its own timeout inside one budget (about 8 minutes on a GPU), and writes every
# figure to one results file. --cpu: the same steps on the CPU at small sizes. The steps themselves
# are benchmarks/gpu_check.py; `scripts/gpu_check.sh --help` lists the options and steps.
set -euo pipefail
cd "$(dirname "$0")/.."
# the interpreter that holds torch: $PYTHON, else python, else python3 (a CUDA image may ship only that)
PY="${PYTHON:-$(command -v python || command -v python3)}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # optiviz importable even where pip cannot install it
exec "$PY" benchmarks/gpu_check.py --python "$PY" "$@"
