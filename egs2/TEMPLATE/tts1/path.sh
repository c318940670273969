# Environment of the recipe: the project's virtualenv (tools/install.sh) when present.
# Sourced through a recipe's symlink: the project root is three levels up either way.
_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
if [ -x "${_root}/.venv/bin/python" ]; then
    export PATH="${_root}/.venv/bin:${PATH}"
fi
export PYTHONIOENCODING=UTF-8
# Nothing is fetched from the hub at run time unless you unset this.
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
unset _root
