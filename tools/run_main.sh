#!/usr/bin/env bash
# Main job: the LJSpeech Glow-WaveGAN recipe end to end (stages 1-10), on the bundled mini
# corpus unless LJSPEECH is set (see egs2/ljspeech/tts1/db.sh). Sets up the environment
# first. Extra arguments go to run.sh, e.g. `tools/run_main.sh --stage 8`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "${root}/tools/install.sh"
cd "${root}/egs2/ljspeech/tts1"
./run.sh "$@"
echo
echo "Synthesized speech (one wav per test utterance, listed in wav.scp):"
find "$(pwd)/exp" -path '*decode*' -name wav.scp | sort | while read -r scp; do
    echo "  $(dirname "${scp}")  ($(wc -l < "${scp}") wavs)"
done
find "$(pwd)/exp" -maxdepth 2 -name RESULTS.md | sort | sed 's/^/Scores: /'
