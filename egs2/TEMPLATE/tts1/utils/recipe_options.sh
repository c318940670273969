#!/usr/bin/env bash
# Sourced by a recipe's run.sh with its arguments: the options every recipe takes besides tts.sh's,
# and the configs they select. Reads ${corpus} (the corpus path of db.sh; empty: the mini corpus).
#   --mini true|false|auto   tiny configs and the bundled mini corpus (auto: when ${corpus} is empty)
#   --decoder hifigan|istft  the WaveGAN's decoder: HiFi-GAN V1 (the paper) or the iSTFT decoder
#                            (conf/tuning/train_wavegan_vae_istft*.yaml; the prior's config is the same,
#                            its experiment exp/tts_glow_wavegan_istft*), several times faster to synthesise
#   --vits_baseline true     afterwards ESPnet's VITS on the same data (comparisons.sh)
#   --paper_ablation true    afterwards the paper's learned latent vs mel bridge (comparisons.sh)
# Sets: mini, decoder, vits_baseline, paper_ablation, size (_tiny or ""), dec (_istft or ""),
# model_opts (the WaveGAN and prior configs, the prior's experiment name) and args (the rest, for tts.sh).
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
if [ "${mini}" = auto ]; then
    if [ -z "${corpus}" ]; then mini=true; else mini=false; fi
fi
case "${decoder}" in
    hifigan) dec="" ;;
    istft) dec=_istft ;;
    *) echo "$0: --decoder ${decoder}: choose hifigan or istft" >&2; exit 1 ;;
esac
if "${mini}"; then size=_tiny; else size=""; fi
model_opts=(--vae_config "conf/tuning/train_wavegan_vae${dec}${size}.yaml"
            --train_config "conf/tuning/train_glow_wavegan${size}.yaml" --tag_base "glow_wavegan${dec}${size}")
if "${mini}"; then  # adaptation (--pretrained_model): a few fine-tuning steps on the mini corpus
    model_opts+=(--finetune_prior_configs "conf/finetune/glow_wavegan.yaml conf/finetune/glow_wavegan_tiny.yaml"
                 --finetune_decoder_configs "conf/finetune/wavegan_decoder.yaml conf/finetune/wavegan_decoder_tiny.yaml")
fi
