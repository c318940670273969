#!/usr/bin/env bash
# Local job runner with the calling convention of Kaldi's run.pl / queue.pl / slurm.pl,
# so that a recipe's cmd.sh can swap it for a cluster runner without other changes.
#
#   run_local.sh [--gpu N] [--mem M] [--num_threads N] [--name X] [JOB=1:N] LOG CMD...
#
# With JOB=1:N the command runs N times in parallel on this machine, "JOB" replaced by
# 1..N in LOG and CMD; the script fails (listing the logs) if any job fails.
# --gpu N (N > 0): every job gets N GPUs of its own, through CUDA_VISIBLE_DEVICES, taken from
# the GPUs that CUDA_VISIBLE_DEVICES already allows or else those nvidia-smi lists; when
# all are busy, the next job waits for a job to finish. So no GPU ever runs two of these jobs
# (a runner that ignores --gpu starts every job on GPU 0). Other scheduler options (--mem, ...)
# mean nothing locally and are ignored.
set -uo pipefail
gpu=0
while [ $# -gt 0 ]; do
    case "$1" in
        --gpu) gpu=$2; shift 2 ;;
        --*) shift 2 ;;
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
log=$1; shift
cmd=""
for arg in "$@"; do cmd+="$(printf '%q' "${arg}") "; done

# GPU slots: groups of --gpu devices, each used by one job at a time.
slots=()
if [ "${gpu}" -gt 0 ]; then
    if [ -n "${CUDA_VISIBLE_DEVICES:-}" ]; then
        IFS=, read -r -a devices <<< "${CUDA_VISIBLE_DEVICES}"
    else
        mapfile -t devices < <(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | tr -d ' ')
    fi
    if [ "${#devices[@]}" -lt "${gpu}" ]; then
        echo "$0: --gpu ${gpu}: ${#devices[@]} GPU(s) visible (CUDA_VISIBLE_DEVICES or nvidia-smi)" >&2
        exit 1
    fi
    for ((s = 0; s + gpu <= ${#devices[@]}; s += gpu)); do
        slots+=("$(IFS=,; echo "${devices[*]:s:gpu}")")
    done
fi

declare -A slot_of log_of
free=("${!slots[@]}")
failed=() count=0
reap() {  # wait for one job; record a failure and free its GPUs
    local pid status
    wait -n -p pid
    status=$?
    [ "${status}" -eq 0 ] || failed+=("${log_of[${pid}]}")
    [ -z "${slot_of[${pid}]:-}" ] || free+=("${slot_of[${pid}]}")
    unset "log_of[${pid}]" "slot_of[${pid}]"
}
for ((i = first; i <= last; i++)); do
    this_log=${log} this_cmd=${cmd}
    if [ -n "${var}" ]; then
        this_log=${log//${var}/${i}}
        this_cmd=${cmd//${var}/${i}}
    fi
    visible=""
    if [ "${gpu}" -gt 0 ]; then
        [ "${#free[@]}" -gt 0 ] || reap
        slot=${free[0]} free=("${free[@]:1}")
        visible=${slots[${slot}]}
    fi
    mkdir -p "$(dirname "${this_log}")"
    {
        echo "# ${this_cmd}"
        echo "# Started at $(date)${visible:+ on CUDA_VISIBLE_DEVICES=${visible}}"
    } > "${this_log}"
    ( [ -z "${visible}" ] || export CUDA_VISIBLE_DEVICES=${visible}
      bash -c "${this_cmd}" >> "${this_log}" 2>&1; status=$?
      echo "# Ended (code ${status}) at $(date)" >> "${this_log}"; exit ${status} ) &
    log_of[$!]=${this_log}
    [ "${gpu}" -eq 0 ] || slot_of[$!]=${slot}
    count=$((count + 1))
done
while [ "${#log_of[@]}" -gt 0 ]; do reap; done
if [ ${#failed[@]} -gt 0 ]; then
    echo "$0: ${#failed[@]} of ${count} job(s) failed; see ${failed[*]}" >&2
    for f in "${failed[@]}"; do tail -n 5 "${f}" | sed "s|^|  ${f}: |" >&2; done
    exit 1
fi
