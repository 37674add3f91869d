#!/usr/bin/env bash
# Sets up and runs the whole test suite on a fresh machine (the README's test command).
# torch==2.13.0 first: it is a CPU wheel on local disk; any other request may pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[test,export]"
# Debian packages: chromium for the browser tests, g++ for the compile=True tests (torch.compile)
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null;
    else sudo apt-get update -qq && sudo apt-get install -y -qq "${missing[@]}" >/dev/null; fi
fi
python -m pytest -q -p no:cacheprovider "$@"
