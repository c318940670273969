#!/usr/bin/env bash
# Stage 1 for LJSpeech: data/{tr_no_dev,dev,eval1} from LJSpeech-1.1/metadata.csv.
set -euo pipefail
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh) $*" >&2; }

num_heldout=250     # utterances in dev and in eval1 each (ESPnet: 250 + 250)
text_column=raw     # raw: numbers and abbreviations are left to the tacotron cleaner
. utils/parse_options.sh
. ./path.sh
. ./db.sh

if [ -z "${LJSPEECH}" ]; then
    corpus=$(cd ../../../corpora/mini_ljspeech/LJSpeech-1.1 && pwd)
    num_heldout=4
    log "LJSPEECH is not set in db.sh: using the bundled mini corpus ${corpus} (4 dev + 4 eval1 utterances)"
else
    corpus=${LJSPEECH}/LJSpeech-1.1
    if [ ! -f "${corpus}/metadata.csv" ]; then
        mkdir -p "${LJSPEECH}"
        log "downloading LJSpeech-1.1 into ${LJSPEECH}"
        wget --continue -O "${LJSPEECH}/LJSpeech-1.1.tar.bz2" https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2 \
            || { log "ERROR: download failed (no internet?); put LJSpeech-1.1/ in ${LJSPEECH} yourself"; exit 1; }
        tar -xjf "${LJSPEECH}/LJSpeech-1.1.tar.bz2" -C "${LJSPEECH}"
    fi
fi
python3 -m espnet2_glow_wavegan.recipe.prepare_ljspeech --corpus "${corpus}" --out data \
    --num_heldout "${num_heldout}" --text_column "${text_column}"
