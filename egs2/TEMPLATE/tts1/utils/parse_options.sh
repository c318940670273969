#!/usr/bin/env bash
# Sourced by the recipe scripts after their defaults: each "--name value" sets the
# shell variable "name" (dashes read as underscores), which the script must have
# defined. Stops at the first argument that is not an option, or after "--"; the rest stay in "$@".
# "--config FILE" sources FILE first (lines "name=value").
while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h)
            echo "Usage: $0 [--option value ...]; options are the variables set at the top of $0" >&2
            exit 0 ;;
        --)
            shift; break ;;
        --*=*)
            _name=${1%%=*}; _value=${1#*=}; shift
            set -- "${_name}" "${_value}" "$@"
            continue ;;
        --config)
            # shellcheck disable=SC1090
            . "$2"; shift 2; continue ;;
        --*)
            _name=${1#--}; _name=${_name//-/_}
            if ! declare -p "${_name}" >/dev/null 2>&1; then
                echo "$0: unknown option --${_name} (see the variables at the top of $0)" >&2
                exit 1
            fi
            if [ $# -lt 2 ]; then
                echo "$0: option --${_name} needs a value" >&2
                exit 1
            fi
            printf -v "${_name}" '%s' "$2"
            shift 2 ;;
        *) break ;;
    esac
done
unset _name _value
