#!/usr/bin/env bash
# Glow-WaveGAN on LJSpeech, as the paper trains it:
#   stages 1-6  data, wavs, tokens, statistics (shared by both models)
#   stage 7     WaveGAN VAE (conf/train_wavegan_vae.yaml -> exp/tts_wavegan_vae), then the
#               Glow-TTS prior initialised from it (conf/train_glow_wavegan.yaml -> exp/tts_glow_wavegan)
#   stage 8     synthesis of dev and eval1 with the TTS model
# Any tts.sh option can be added, e.g. --stage 7 --stop_stage 7 --train_vae false (prior only).
# Options of every recipe (--mini, --decoder, --vits_baseline, --paper_ablation): utils/recipe_options.sh.
set -euo pipefail

. ./db.sh
. ./path.sh
corpus=${LJSPEECH}
. utils/recipe_options.sh "$@"

if "${mini}"; then
    # Tiny models on a 2-core CPU in a few minutes. Characters instead of phonemes: the
    # g2p_en front end needs NLTK data that cannot be downloaded offline.
    opts=(--token_type char --g2p none --ngpu 0 --nj 2 --inference_nj 2)
else
    opts=(--token_type phn --g2p g2p_en_no_space --ngpu 1 --nj 16 --inference_nj 8)
fi

./tts.sh \
    --lang en \
    --feats_type raw \
    --fs 22050 \
    --n_fft 1024 \
    --n_shift 256 \
    --cleaner tacotron \
    --train_set tr_no_dev \
    --valid_set dev \
    --test_sets "dev eval1" \
    --srctexts "data/tr_no_dev/text" \
    --inference_config conf/decode.yaml \
    --inference_model train.total_count.ave.pth \
    "${model_opts[@]}" "${opts[@]}" "${args[@]}"

if "${vits_baseline}" || "${paper_ablation}"; then
    ./comparisons.sh --lang en --test_set eval1 --size "${size}" --decoder "${decoder}" --vits_baseline "${vits_baseline}" \
        --paper_ablation "${paper_ablation}" -- --mini "${mini}" --decoder "${decoder}" "${args[@]}"
fi
