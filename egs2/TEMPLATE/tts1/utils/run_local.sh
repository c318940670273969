#!/usr/bin/env bash
# Local job runner with the calling convention of Kaldi's run.pl / queue.pl / slurm.pl,
# so that a recipe's cmd.sh can swap it for a cluster runner without other changes.
#
#   run_local.sh [--gpu N] [--mem M] [--num_threads N] [--name X] [JOB=1:N] LOG CMD...
#
# With JOB=1:N the command runs N times in parallel on this machine, "JOB" replaced by
# 1..N in LOG and CMD; the script fails (listing the logs) if any job fails.
# Scheduler options (--gpu, --mem, ...) mean nothing locally and are ignored.
set -uo pipefail
while [ $# -gt 0 ]; do
    case "$1" in
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

pids=() logs=()
for ((i = first; i <= last; i++)); do
    this_log=${log} this_cmd=${cmd}
    if [ -n "${var}" ]; then
        this_log=${log//${var}/${i}}
        this_cmd=${cmd//${var}/${i}}
    fi
    mkdir -p "$(dirname "${this_log}")"
    {
        echo "# ${this_cmd}"
        echo "# Started at $(date)"
    } > "${this_log}"
    ( bash -c "${this_cmd}" >> "${this_log}" 2>&1; status=$?
      echo "# Ended (code ${status}) at $(date)" >> "${this_log}"; exit ${status} ) &
    pids+=($!) logs+=("${this_log}")
done
failed=()
for k in "${!pids[@]}"; do
    wait "${pids[$k]}" || failed+=("${logs[$k]}")
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "$0: ${#failed[@]} of ${#pids[@]} job(s) failed; see ${failed[*]}" >&2
    for f in "${failed[@]}"; do tail -n 5 "${f}" | sed "s|^|  ${f}: |" >&2; done
    exit 1
fi
