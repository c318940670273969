#!/usr/bin/env bash
# Create or reuse the project's Python environment; idempotent.
#
#   tools/install.sh            # or: make install
#
# The environment is a Python 3.11 virtualenv holding exactly
# requirements/lock.txt (torch 2.9.1, torchaudio 2.9.1, espnet 202511, ...)
# plus this package in editable mode. It is about 7 GB (torch's CUDA wheels),
# so by default it lives in a cache shared by every clone on the machine,
# keyed by the lock file and the Python version, and `.venv` in the project is
# a symlink to it: a fresh clone with an up-to-date cache installs nothing but
# the editable package (seconds). Settings (environment variables):
#   GLOW_WAVEGAN_ENV_CACHE  cache folder (default: ${XDG_CACHE_HOME:-~/.cache}/espnet2-glow-wavegan)
#   GLOW_WAVEGAN_SHARED_ENV=0  build a private environment in .venv instead
#   PYTHON                  interpreter to build from (default: python3.11)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lock=${root}/requirements/lock.txt
python=${PYTHON:-python3.11}
log() { echo "[install] $*" >&2; }

if ! command -v "${python}" >/dev/null; then
    log "error: ${python} not found; this project needs Python 3.11 (set PYTHON=/path/to/python3.11)"
    exit 1
fi
pyver=$("${python}" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "${pyver}" != "3.11" ]; then
    log "error: ${python} is Python ${pyver}; espnet 202511 with torch 2.9.1 is tested on 3.11 only"
    exit 1
fi
key=$({ cat "${lock}"; "${python}" -c 'import platform, sys; print(sys.version, platform.machine())'; } \
    | sha256sum | cut -c1-16)

# The newest finished environment of another lock for the same Python, if any (shared cache only).
newest_complete_env() {
    [ "${GLOW_WAVEGAN_SHARED_ENV:-1}" != 0 ] || return 0
    local version candidate
    version=$("${python}" -c 'import platform; print(platform.python_version())')
    for candidate in $(ls -1dt "${cache}"/env-* 2>/dev/null); do
        [ "${candidate}" != "${env_dir}" ] && [ -f "${candidate}/.glow_wavegan_key" ] || continue
        grep -q "^version.* = ${version}\$" "${candidate}/pyvenv.cfg" 2>/dev/null || continue
        echo "${candidate}"
        return 0
    done
}

# Uninstall what a seeded environment has beyond the lock (pip, setuptools, wheel and this
# package stay), so that the environment is the lock, not a superset.
remove_packages_not_in_lock() {
    local extra
    extra=$("$1" - "${lock}" <<'PY'
import re, subprocess, sys
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
locked = {norm(line.split("==")[0]) for line in open(sys.argv[1]) if "==" in line and not line.startswith("#")}
frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True,
                        text=True, check=True).stdout.splitlines()
keep = locked | {"pip", "setuptools", "wheel", "espnet2-glow-wavegan"}
names = (line.split("==")[0].split(" @ ")[0].strip() for line in frozen if line.strip() and not line.startswith("#"))
print(" ".join(name for name in names if norm(name) not in keep))
PY
)
    [ -z "${extra}" ] || "$1" -m pip uninstall -y ${extra}
}

venv_link=${root}/.venv
if [ "${GLOW_WAVEGAN_SHARED_ENV:-1}" = 0 ]; then
    env_dir=${venv_link}
else
    cache=${GLOW_WAVEGAN_ENV_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/espnet2-glow-wavegan}
    env_dir=${cache}/env-${key}
fi

# A real .venv folder that we did not build is the user's: never replace it.
if [ -d "${venv_link}" ] && [ ! -L "${venv_link}" ] && [ "${env_dir}" != "${venv_link}" ]; then
    log "error: ${venv_link} is a folder this script did not link; move it away," \
        "or use it with GLOW_WAVEGAN_SHARED_ENV=0"
    exit 1
fi
if [ -d "${env_dir}" ] && [ -f "${env_dir}/.glow_wavegan_key" ] \
    && [ "$(cat "${env_dir}/.glow_wavegan_key")" != "${key}" ]; then
    log "requirements/lock.txt changed: rebuilding ${env_dir}"
    rm -rf "${env_dir}"
elif [ -d "${env_dir}" ] && [ ! -f "${env_dir}/.glow_wavegan_key" ]; then
    if [ "${env_dir}" = "${venv_link}" ] && [ -x "${env_dir}/bin/python" ]; then
        log "error: ${env_dir} exists but was not completed by this script; remove it to rebuild"
        exit 1
    fi
fi

if [ ! -f "${env_dir}/.glow_wavegan_key" ]; then
    # Build next to the target and rename when complete, so an interrupted
    # install is never mistaken for a finished one.
    staging=${env_dir}.partial-$$
    rm -rf "${staging}"
    mkdir -p "$(dirname "${env_dir}")"
    seed=$(newest_complete_env)
    if [ -n "${seed}" ]; then
        # Most packages of an earlier lock are the same: start from that environment (hard
        # links, no copying; new and changed files get new inodes, so it stays as it was)
        # and let pip bring it to this lock.
        log "creating ${env_dir} from ${seed} and requirements/lock.txt"
        cp -al "${seed}" "${staging}"
        rm -f "${staging}/.glow_wavegan_key" "${staging}/.glow_wavegan_src" "${staging}"/pip-install.log
        # Its scripts name the prefix it was built at (read from its pip's shebang).
        built_at=$(head -n 1 "${seed}/bin/pip" | sed -e 's|^#!||' -e 's|/bin/python[0-9.]*$||')
        { grep -rlI --null "${built_at}" "${staging}/bin" || true; } | xargs -0 -r sed -i "s#${built_at}#${staging}#g"
    else
        log "creating ${env_dir} from requirements/lock.txt (first time: ~7 GB, several minutes)"
        "${python}" -m venv "${staging}"
    fi
    pip_log=${staging}/pip-install.log
    # pip >= 25 rejects espnet's ci_sdr dependency; setuptools < 74 is espnet's pin
    # and >= 64 gives PEP 660 editable installs.
    if ! { "${staging}/bin/python" -m pip install "pip>=23,<25" "setuptools>=64,<74" wheel \
            && "${staging}/bin/python" -m pip install -r "${lock}" \
            && remove_packages_not_in_lock "${staging}/bin/python"; } >"${pip_log}" 2>&1; then
        grep -v "^WARNING: Location" "${pip_log}" | tail -n 40 >&2
        log "error: pip install failed; full log: ${pip_log}"
        exit 1
    fi
    # venvs are not relocatable: rebuild the scripts' shebangs for the final path.
    if [ "${staging}" != "${env_dir}" ]; then
        rm -rf "${env_dir}"
        mv "${staging}" "${env_dir}"
        { grep -rlI --null "${staging}" "${env_dir}/bin" || true; } | xargs -0 -r sed -i "s#${staging}#${env_dir}#g"
    fi
    echo "${key}" > "${env_dir}/.glow_wavegan_key"
fi

if [ "${env_dir}" != "${venv_link}" ]; then
    ln -sfn "${env_dir}" "${venv_link}"
fi

# The editable install points at one checkout; re-point it when another clone
# (CI, a second work tree) used the shared environment last, or when the
# packaging files changed.
src_stamp="${root} $(cat "${root}/setup.py" "${root}/pyproject.toml" "${root}/espnet2_glow_wavegan.pth" | sha256sum | cut -c1-16)"
if [ "$(cat "${env_dir}/.glow_wavegan_src" 2>/dev/null)" != "${src_stamp}" ] \
    || ! (cd / && "${env_dir}/bin/python" -c 'import sys; assert "espnet2_glow_wavegan.registry" in sys.modules' 2>/dev/null); then
    log "installing espnet2-glow-wavegan (editable) from ${root}"
    "${env_dir}/bin/python" -m pip install -q --no-deps --no-build-isolation -e "${root}"
    rm -rf "${root}/build" "${root}"/*.egg-info
    echo "${src_stamp}" > "${env_dir}/.glow_wavegan_src"
    # The start-up hook must be active in a fresh interpreter outside the tree.
    (cd / && "${env_dir}/bin/python" -c 'import sys; assert "espnet2_glow_wavegan.registry" in sys.modules, "start-up hook espnet2_glow_wavegan.pth is not active"')
fi
log "environment ready: ${venv_link} -> ${env_dir}"
