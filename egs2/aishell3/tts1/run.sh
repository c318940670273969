#!/usr/bin/env bash
# Glow-WaveGAN on AISHELL-3 (218 Mandarin speakers; the test speakers are unseen in training):
#   stages 1-6  data (44.1 kHz resampled to 24 kHz), speaker embeddings, phones, statistics
#   stage 7     universal WaveGAN VAE, then the speaker-conditioned Glow-TTS prior initialised from it
#   stage 8     synthesis of dev and test; test speakers are voiced through their speaker embeddings
# Any tts.sh option can be added (e.g. --stage 8 --stop_stage 8 to decode again).
# --vits_baseline true: afterwards train, decode and score ESPnet's VITS (conf/tuning/train_vits*.yaml)
#   through the same stages and tabulate both in RESULTS_compare.md (the paper's comparison setting).
# --decoder hifigan|istft: the WaveGAN's decoder: HiFi-GAN V1 (the paper) or the iSTFT (Vocos-style)
#   decoder (conf/tuning/train_{wavegan_vae,glow_wavegan}_istft*.yaml), several times faster to synthesise.
# --mini true|false|auto: tiny configs and the bundled mini corpus (auto: when AISHELL3 in db.sh is empty).
set -euo pipefail

mini=auto
vits_baseline=false
decoder=hifigan
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --mini) mini=$2; shift 2 ;;
        --vits_baseline) vits_baseline=$2; shift 2 ;;
        --decoder) decoder=$2; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
. ./db.sh
. ./path.sh
if [ "${mini}" = auto ]; then
    if [ -z "${AISHELL3}" ]; then mini=true; else mini=false; fi
fi

case "${decoder}" in
    hifigan) dec="" ;;
    istft) dec=_istft ;;
    *) echo "$0: --decoder ${decoder}: choose hifigan or istft" >&2; exit 1 ;;
esac

if "${mini}"; then
    # Offline speaker embeddings (log-mel statistics) and speaker ids; the unseen test
    # speaker gets sid 0 (<unk>) and its own embedding.
    size=_tiny
    opts=(--vae_config conf/tuning/train_wavegan_vae${dec}_tiny.yaml --train_config conf/tuning/train_glow_wavegan${dec}_tiny.yaml
          --use_sid true --use_spk_embed true --spk_embed_tool mel_stats --spk_embed_dim 32
          --ngpu 0 --nj 2 --inference_nj 2)
else
    # ESPnet's pretrained RawNet3 speaker model (downloaded from the hub: needs internet once).
    size=""
    opts=(--vae_config conf/tuning/train_wavegan_vae${dec}.yaml --train_config conf/tuning/train_glow_wavegan${dec}.yaml
          --use_spk_embed true --spk_embed_tool espnet --spk_embed_model espnet/voxcelebs12_rawnet3 --spk_embed_dim 192
          --local_data_opts "--trim_silence true" --ngpu 1 --nj 16 --inference_nj 8)
fi

run_tts() {
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
        "${opts[@]}" "${args[@]}" "$@"
}

run_tts

if "${vits_baseline}"; then
    # Same data, tokens and statistics (stages 1-6 are done); only the model differs.
    run_tts --stage 7 --stop_stage 9 --vae_config "" --train_config "conf/tuning/train_vits${size}.yaml"
    # Every glow_wavegan decoder trained here so far, then VITS.
    glow_exps=()
    for d in "" _istft; do
        [ -f "exp/tts_glow_wavegan${d}${size}/RESULTS.md" ] && glow_exps+=("exp/tts_glow_wavegan${d}${size}")
    done
    python3 -m espnet2_glow_wavegan.recipe.compare "${glow_exps[@]}" "exp/tts_vits${size}" \
        --test_sets test --out RESULTS_compare.md
    echo "Comparison table: $(pwd)/RESULTS_compare.md"
fi
