#!/usr/bin/env bash
# Run the test suite in the project environment (created first if needed).
# Extra arguments go to pytest, e.g. `tools/test.sh -k registry -x`; `-n 0` runs in one process;
# a test path (`tools/test.sh tests/test_scoring.py`) runs that file instead of the whole suite.
# Exit status: pytest's.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "${root}/tools/install.sh"
cd "${root}"
# No network here: make ESPnet's NLTK/HF look-ups fail fast instead of retrying.
export HF_HUB_OFFLINE=1
# Two pytest-xdist workers, one test file each at a time (module fixtures such as a recipe run
# stay on one worker). Most of the slow tests wait on Python start-up and single-threaded
# recipe steps, so two workers on two cores nearly halve the wall time; each gets one math
# thread so that they do not fight over the cores (override with TEST_WORKERS / OMP_NUM_THREADS).
workers=${TEST_WORKERS:-2}
if [ "${workers}" -gt 1 ]; then
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
fi
# The whole suite unless a test path is given (tools/test.sh tests/test_x.py[::name] runs that alone).
paths=(tests)
for arg in "$@"; do
    case "${arg}" in -*) ;; *) [ -e "${arg%%::*}" ] && paths=() ;; esac
done
exec "${root}/.venv/bin/python" -m pytest "${paths[@]}" -n "${workers}" --dist loadfile "$@"
