#!/usr/bin/env bash
# Slurm job runner with the calling convention of Kaldi's run.pl / slurm.pl, written for this
# project, so that cmd.sh can send the recipe's jobs to a Slurm cluster:
#
#   slurm.sh [--gpu N] [--mem M] [--num_threads N] [--num_nodes N] [--name X] [--time T]
#            [--partition P] [JOB=1:N] LOG CMD...
#
# Each job is one `sbatch --wait` submission whose output goes to LOG; with JOB=1:N the N
# jobs are submitted at once ("JOB" replaced by 1..N in LOG and CMD) and the script waits for
# all, failing (and listing the logs) if any failed. --gpu N asks for --gres=gpu:N, --mem and
# --num_threads for --mem and --cpus-per-task, --num_nodes for --nodes (espnet2.bin.launch's
# multi-node mode runs `mpirun -np N` inside the job). Further sbatch options: SLURM_SBATCH_OPTS.
set -uo pipefail
gpu=0 mem="" threads="" nodes="" name=espnet2_glow_wavegan time_limit="" partition=""
while [ $# -gt 0 ]; do
    case "$1" in
        --gpu) gpu=$2; shift 2 ;;
        --mem) mem=$2; shift 2 ;;
        --num_threads) threads=$2; shift 2 ;;
        --num_nodes) nodes=$2; shift 2 ;;
        --name) name=$2; shift 2 ;;
        --time) time_limit=$2; shift 2 ;;
        --partition) partition=$2; shift 2 ;;
        --*) echo "$0: unknown option $1" >&2; exit 1 ;;
        *) break ;;
    esac
done
var="" first=1 last=1
if [[ $# -gt 0 && "$1" =~ ^([A-Za-z_]+)=([0-9]+):([0-9]+)$ ]]; then
    var=${BASH_REMATCH[1]} first=${BASH_REMATCH[2]} last=${BASH_REMATCH[3]}
    shift
fi
if [ $# -lt 2 ]; then
    echo "Usage: $0 [options] [JOB=1:N] LOG CMD..." >&2
    exit 1
fi
command -v sbatch >/dev/null || { echo "$0: sbatch not found: is this a Slurm login node?" >&2; exit 1; }
log=$1; shift
cmd=""
for arg in "$@"; do cmd+="$(printf '%q' "${arg}") "; done

opts=(--wait --parsable --job-name "${name}")
[ "${gpu}" -gt 0 ] && opts+=(--gres "gpu:${gpu}")
[ -n "${mem}" ] && opts+=(--mem "${mem}")
[ -n "${threads}" ] && opts+=(--cpus-per-task "${threads}")
[ -n "${nodes}" ] && opts+=(--nodes "${nodes}" --ntasks-per-node 1)
[ -n "${time_limit}" ] && opts+=(--time "${time_limit}")
[ -n "${partition}" ] && opts+=(--partition "${partition}")
# shellcheck disable=SC2206
extra=(${SLURM_SBATCH_OPTS:-})

pids=() logs=()
for ((i = first; i <= last; i++)); do
    this_log=${log} this_cmd=${cmd}
    if [ -n "${var}" ]; then
        this_log=${log//${var}/${i}}
        this_cmd=${cmd//${var}/${i}}
    fi
    mkdir -p "$(dirname "${this_log}")"
    printf '# %s\n# Submitted at %s\n' "${this_cmd}" "$(date)" > "${this_log}"
    sbatch "${opts[@]}" "${extra[@]}" --open-mode append --output "${this_log}" --wrap "${this_cmd}" >/dev/null &
    pids+=($!) logs+=("${this_log}")
done
failed=()
for k in "${!pids[@]}"; do
    wait "${pids[$k]}" || failed+=("${logs[$k]}")
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "$0: ${#failed[@]} of ${#pids[@]} Slurm job(s) failed; see ${failed[*]}" >&2
    for f in "${failed[@]}"; do tail -n 5 "${f}" 2>/dev/null | sed "s|^|  ${f}: |" >&2; done
    exit 1
fi
