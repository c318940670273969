#!/usr/bin/env bash
# The comparisons every recipe runs the same way, after its main run (stages 1-6 done):
#   --vits_baseline true   ESPnet's VITS (conf/tuning/train_vits<size>.yaml) through stages 7-9 on the
#                          same data, then RESULTS_compare.md (+ .json): every glow_wavegan decoder
#                          trained so far beside VITS.
#   --paper_ablation true  the paper's learned latent against the mel bridge: the inner-GAN
#                          (train_inner_gan<size>.yaml) and Glow-TTS over its mel (train_glow_mel<size>.yaml)
#                          through stages 7-9, copy synthesis of the test set by both WaveGANs, then
#                          RESULTS_paper.md (+ .json) with the paper's two tables.
# A recipe's run.sh calls it with its own options after "--"; it calls that run.sh back for
# each training, so the recipe's corpus options (fs, tokens, speakers, ...) apply:
#   ./comparisons.sh --test_set eval1 --lang en --size _tiny --decoder istft --vits_baseline true -- --mini true ...
set -euo pipefail

test_set=""          # the held-out set of the tables
size=""              # "" (paper-size configs) or _tiny
decoder=hifigan      # the WaveGAN decoder of the main system (hifigan | istft)
vits_baseline=false
paper_ablation=false
lang=none            # the text's language for the WER/CER of the copy synthesis (en, zh; none: no ASR)
. utils/parse_options.sh  # our options, up to "--"
[ -n "${test_set}" ] || { echo "$0: --test_set is required" >&2; exit 1; }
if [ "${decoder}" = hifigan ]; then dec=""; else dec=_${decoder}; fi

if "${vits_baseline}"; then
    # Same data, tokens and statistics (stages 1-6 are done); only the model differs. The tables
    # read the test set only, so the other sets are not decoded.
    ./run.sh "$@" --stage 7 --stop_stage 9 --test_sets "${test_set}" --vae_config "" \
        --train_config "conf/tuning/train_vits${size}.yaml" --tag_base "vits${size}"
    glow_exps=()
    for d in "" _istft; do
        [ -f "exp/tts_glow_wavegan${d}${size}/RESULTS.md" ] && glow_exps+=("exp/tts_glow_wavegan${d}${size}")
    done
    python3 -m espnet2_glow_wavegan.recipe.compare "${glow_exps[@]}" "exp/tts_vits${size}" \
        --test_sets "${test_set}" --out RESULTS_compare.md
    echo "Comparison table: $(pwd)/RESULTS_compare.md"
fi

if "${paper_ablation}"; then
    # Same data, tokens and statistics; the mel in the place of the learned latent.
    ./run.sh "$@" --stage 7 --stop_stage 9 --test_sets "${test_set}" --vae_config "conf/tuning/train_inner_gan${size}.yaml" \
        --train_config "conf/tuning/train_glow_mel${size}.yaml" --tag_base "glow_mel${size}"
    # Reconstruction: both WaveGANs copy-synthesise the test recordings, scored as stage 9 does.
    for vae in "wavegan_vae${dec}${size}" "inner_gan${size}"; do
        out=exp/tts_${vae}/copy_synthesis/${test_set}
        mkdir -p "${out}"
        python3 -m espnet2_glow_wavegan.recipe.copy_synthesis --train_config "exp/tts_${vae}/config.yaml" \
            --model_file "exp/tts_${vae}/train.total_count.ave.pth" --wav_scp "dump/raw/${test_set}/wav.scp" \
            --out_dir "${out}" 2> "${out}.log" || { tail -n 5 "${out}.log" >&2; exit 1; }
        python3 -m espnet2_glow_wavegan.recipe.score --ref_scp "dump/raw/${test_set}/wav.scp" \
            --gen_scp "${out}/wav/wav.scp" --out_dir "${out}/scores" --decode_logs "${out}.log" \
            --text "dump/raw/${test_set}/text" --asr_language "${lang}"
    done
    decode=decode_train.total_count.ave/${test_set}/scores
    python3 -m espnet2_glow_wavegan.recipe.paper_tables --test_set "${test_set}" --out RESULTS_paper.md \
        --reconstruction "inner-GAN (mel)=exp/tts_inner_gan${size}/copy_synthesis/${test_set}/scores" \
        --reconstruction "WaveGAN (z)=exp/tts_wavegan_vae${dec}${size}/copy_synthesis/${test_set}/scores" \
        --tts "Glow-TTS + inner-GAN (mel)=exp/tts_glow_mel${size}/${decode}" \
        --tts "Glow-WaveGAN (z)=exp/tts_glow_wavegan${dec}${size}/${decode}"
    echo "The paper's comparison: $(pwd)/RESULTS_paper.md"
fi
