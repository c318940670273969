#!/usr/bin/env bash
# Stage 1 for AISHELL-3: data/{train_no_dev,dev,test} from {train,test}/content.txt.
set -euo pipefail
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh) $*" >&2; }

num_dev=250          # training utterances held out as dev (ESPnet: 250)
trim_silence=false   # cut leading/trailing silence (librosa, 30 dB) through a segments file
. utils/parse_options.sh
. ./path.sh
. ./db.sh

if [ -z "${AISHELL3}" ]; then
    corpus=$(cd ../../../corpora/mini_aishell3 && pwd)
    num_dev=4
    log "AISHELL3 is not set in db.sh: using the bundled mini corpus ${corpus} (4 dev utterances)"
else
    corpus=${AISHELL3}
    if [ ! -f "${corpus}/train/content.txt" ]; then
        mkdir -p "${AISHELL3}"
        log "downloading AISHELL-3 into ${AISHELL3}"
        wget --continue -O "${AISHELL3}/data_aishell3.tgz" https://www.openslr.org/resources/93/data_aishell3.tgz \
            || { log "ERROR: download failed (no internet?); put AISHELL-3 (train/, test/) in ${AISHELL3} yourself"; exit 1; }
        tar -xzf "${AISHELL3}/data_aishell3.tgz" -C "${AISHELL3}"
    fi
fi
python3 -m espnet2_glow_wavegan.recipe.prepare_aishell3 --corpus "${corpus}" --out data \
    --num_dev "${num_dev}" --trim_silence "${trim_silence}"
