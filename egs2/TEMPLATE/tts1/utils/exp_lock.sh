# Sourced by tts.sh: one run at a time in an experiment directory (ESPnet has no such guard, and a
# second terminal or a re-submitted job would resume from the first run's checkpoint while it trains).
#
#   exp_lock DIR      take DIR/.lock for this script's process, or stop naming the run that holds it;
#                     a lock whose process is gone (a killed run, on this host) is taken over, with a notice
#   exp_unlock DIR    release it (every lock still held is released when the script exits)
#
# The lock file holds "<pid> <host>"; it is created with noclobber, so two runs cannot both take it.
_exp_locks=()

_exp_lock_owner() { echo "$$ $(hostname)"; }

exp_lock() {
    local dir=$1 lock=$1/.lock pid="" host=""
    mkdir -p "${dir}"
    if (set -o noclobber; _exp_lock_owner > "${lock}") 2>/dev/null; then
        _exp_locks+=("${lock}")
        return 0
    fi
    read -r pid host < "${lock}" || true
    if [ "${host}" = "$(hostname)" ] && [ -n "${pid}" ] && ! kill -0 "${pid}" 2>/dev/null; then
        echo "$(date '+%Y-%m-%dT%H:%M:%S') (exp_lock) ${dir}: taking over the lock of process ${pid}, which is gone" \
            "(a run that was killed); resuming" >&2
        _exp_lock_owner > "${lock}"
        _exp_locks+=("${lock}")
        return 0
    fi
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (exp_lock) ERROR: ${dir} is in use by process ${pid:-?} on ${host:-?} (another" \
        "run of this stage). Wait for it or stop it; if that run is gone (a job killed on another host), delete" \
        "${lock} and run again." >&2
    exit 1
}

exp_unlock() {
    local lock=$1/.lock kept=() l
    [ "$(cat "${lock}" 2>/dev/null)" = "$(_exp_lock_owner)" ] && rm -f "${lock}"
    for l in "${_exp_locks[@]}"; do [ "${l}" = "${lock}" ] || kept+=("${l}"); done
    _exp_locks=("${kept[@]}")
}

_exp_unlock_all() {
    local l
    for l in "${_exp_locks[@]}"; do
        [ "$(cat "${l}" 2>/dev/null)" = "$(_exp_lock_owner)" ] && rm -f "${l}"
    done
    return 0
}
trap _exp_unlock_all EXIT
