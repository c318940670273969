#!/usr/bin/env bash
# Glow-WaveGAN on LJSpeech, as the paper trains it:
#   stages 1-6  data, wavs, tokens, statistics (shared by both models)
#   stage 7     WaveGAN VAE (conf/train_wavegan_vae.yaml -> exp/tts_wavegan_vae), then the
#               Glow-TTS prior initialised from it (conf/train_glow_wavegan.yaml -> exp/tts_glow_wavegan)
#   stage 8     synthesis of dev and eval1 with the TTS model
# Any tts.sh option can be added, e.g. --stage 7 --stop_stage 7 --train_vae false (prior only).
# --vits_baseline true: afterwards train, decode and score ESPnet's VITS (conf/tuning/train_vits*.yaml)
#   through the same stages and tabulate both in RESULTS_compare.md (the paper's comparison setting).
# --decoder hifigan|istft: the WaveGAN's decoder: HiFi-GAN V1 (the paper) or the iSTFT (Vocos-style)
#   decoder (conf/tuning/train_{wavegan_vae,glow_wavegan}_istft*.yaml), several times faster to synthesise.
# --mini true|false|auto: tiny configs and the bundled mini corpus (auto: when LJSPEECH in db.sh is empty).
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
    if [ -z "${LJSPEECH}" ]; then mini=true; else mini=false; fi
fi

case "${decoder}" in
    hifigan) dec="" ;;
    istft) dec=_istft ;;
    *) echo "$0: --decoder ${decoder}: choose hifigan or istft" >&2; exit 1 ;;
esac

if "${mini}"; then
    # Tiny models on a 2-core CPU in a few minutes. Characters instead of phonemes: the
    # g2p_en front end needs NLTK data that cannot be downloaded offline.
    size=_tiny
    opts=(--vae_config conf/tuning/train_wavegan_vae${dec}_tiny.yaml --train_config conf/tuning/train_glow_wavegan${dec}_tiny.yaml
          --token_type char --g2p none --ngpu 0 --nj 2 --inference_nj 2)
else
    size=""
    opts=(--vae_config conf/tuning/train_wavegan_vae${dec}.yaml --train_config conf/tuning/train_glow_wavegan${dec}.yaml
          --token_type phn --g2p g2p_en_no_space --ngpu 1 --nj 16 --inference_nj 8)
fi

run_tts() {
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
        --test_sets eval1 --out RESULTS_compare.md
    echo "Comparison table: $(pwd)/RESULTS_compare.md"
fi
