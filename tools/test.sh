#!/usr/bin/env bash
# Run the test suite in the project environment (created first if needed).
# Extra arguments go to pytest, e.g. `tools/test.sh -k registry -x`.
# Exit status: pytest's.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "${root}/tools/install.sh"
cd "${root}"
# No network here: make ESPnet's NLTK/HF look-ups fail fast instead of retrying.
export HF_HUB_OFFLINE=1
exec "${root}/.venv/bin/python" -m pytest tests "$@"
