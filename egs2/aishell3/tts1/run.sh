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
# --paper_ablation true: afterwards the paper's comparison of the learned latent with the mel bridge: the
#   inner-GAN (the same decoder and discriminators as a mel vocoder, conf/tuning/train_inner_gan*.yaml) and
#   Glow-TTS + inner-GAN (the same prior over the mel, conf/tuning/train_glow_mel*.yaml) through stages 7-9,
#   copy synthesis of the test set by both WaveGANs, and RESULTS_paper.md (+ .json) with the two tables.
# --mini true|false|auto: tiny configs and the bundled mini corpus (auto: when AISHELL3 in db.sh is empty).
set -euo pipefail

mini=auto
vits_baseline=false
paper_ablation=false
decoder=hifigan
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --mini) mini=$2; shift 2 ;;
        --vits_baseline) vits_baseline=$2; shift 2 ;;
        --decoder) decoder=$2; shift 2 ;;
        --paper_ablation) paper_ablation=$2; shift 2 ;;
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

if "${paper_ablation}"; then
    # Same data, tokens and statistics; the mel in the place of the learned latent.
    run_tts --stage 7 --stop_stage 9 --vae_config "conf/tuning/train_inner_gan${size}.yaml" \
        --train_config "conf/tuning/train_glow_mel${size}.yaml"
    # Reconstruction: both WaveGANs copy-synthesise the test recordings, scored as stage 9 does.
    for vae in "wavegan_vae${dec}${size}" "inner_gan${size}"; do
        out=exp/tts_${vae}/copy_synthesis/test
        mkdir -p "${out}"
        python3 -m espnet2_glow_wavegan.recipe.copy_synthesis --train_config "exp/tts_${vae}/config.yaml" \
            --model_file "exp/tts_${vae}/train.total_count.ave.pth" --wav_scp dump/raw/test/wav.scp \
            --out_dir "${out}" 2> "${out}.log" || { tail -n 5 "${out}.log" >&2; exit 1; }
        python3 -m espnet2_glow_wavegan.recipe.score --ref_scp dump/raw/test/wav.scp --gen_scp "${out}/wav/wav.scp" \
            --out_dir "${out}/scores" --decode_logs "${out}.log"
    done
    decode=decode_train.total_count.ave/test/scores
    python3 -m espnet2_glow_wavegan.recipe.paper_tables --test_set test --out RESULTS_paper.md \
        --reconstruction "inner-GAN (mel)=exp/tts_inner_gan${size}/copy_synthesis/test/scores" \
        --reconstruction "WaveGAN (z)=exp/tts_wavegan_vae${dec}${size}/copy_synthesis/test/scores" \
        --tts "Glow-TTS + inner-GAN (mel)=exp/tts_glow_mel${size}/${decode}" \
        --tts "Glow-WaveGAN (z)=exp/tts_glow_wavegan${dec}${size}/${decode}"
    echo "The paper's comparison: $(pwd)/RESULTS_paper.md"
fi
