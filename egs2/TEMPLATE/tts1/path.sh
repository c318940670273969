# Environment of the recipe: the project's virtualenv (tools/install.sh) when present.
# Sourced through a recipe's symlink: the project root is three levels up either way.
_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
if [ -x "${_root}/.venv/bin/python" ]; then
    export PATH="${_root}/.venv/bin:${PATH}"
fi
export PYTHONIOENCODING=UTF-8
# The hub stays reachable (stage 11 upload, --spk_embed_tool espnet, scoring's speaker model);
# export HF_HUB_OFFLINE=1 yourself to make those fail fast on a machine without internet.
unset _root
