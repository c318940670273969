#!/usr/bin/env bash
# Glow-WaveGAN on AISHELL-3 (218 Mandarin speakers; the test speakers are unseen in training):
#   stages 1-6  data (44.1 kHz resampled to 24 kHz), speaker embeddings, phones, statistics
#   stage 7     universal WaveGAN VAE, then the speaker-conditioned Glow-TTS prior initialised from it
#   stage 8     synthesis of dev and test; test speakers are voiced through their speaker embeddings
# Any tts.sh option can be added (e.g. --stage 8 --stop_stage 8 to decode again).
# Options of every recipe (--mini, --decoder, --vits_baseline, --paper_ablation): utils/recipe_options.sh.
set -euo pipefail

. ./db.sh
. ./path.sh
corpus=${AISHELL3}
. utils/recipe_options.sh "$@"

if "${mini}"; then
    # Offline speaker embeddings (log-mel statistics) and speaker ids; the unseen test
    # speaker gets sid 0 (<unk>) and its own embedding.
    opts=(--use_sid true --use_spk_embed true --spk_embed_tool mel_stats --spk_embed_dim 32
          --ngpu 0 --nj 2 --inference_nj 2)
else
    # ESPnet's pretrained RawNet3 speaker model (downloaded from the hub: needs internet once).
    opts=(--use_spk_embed true --spk_embed_tool espnet --spk_embed_model espnet/voxcelebs12_rawnet3 --spk_embed_dim 192
          --local_data_opts "--trim_silence true" --ngpu 1 --nj 16 --inference_nj 8)
fi

./tts.sh \
    --lang zh \
    --feats_type raw \
    --fs 24000 \
    --n_fft 2048 \
    --n_shift 300 \
    --win_length 1200 \
    --token_type phn \
    --cleaner none \
    --g2p pypinyin_g2p_phone \
    --train_set train_no_dev \
    --valid_set dev \
    --test_sets "dev test" \
    --srctexts "data/train_no_dev/text" \
    --inference_config conf/decode.yaml \
    --inference_model train.total_count.ave.pth \
    "${model_opts[@]}" "${opts[@]}" "${args[@]}"

if "${vits_baseline}" || "${paper_ablation}"; then
    ./comparisons.sh --lang zh --test_set test --size "${size}" --decoder "${decoder}" --vits_baseline "${vits_baseline}" \
        --paper_ablation "${paper_ablation}" -- --mini "${mini}" --decoder "${decoder}" "${args[@]}"
fi
