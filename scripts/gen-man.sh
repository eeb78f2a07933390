#!/usr/bin/env bash
# Writes the man page naq(1) on stdout: the hand-written parts of
# man/naq.1.in with the command list and every command's and subcommand's
# --help text filled in from the naq binary itself, so the page says what
# --help says. The build runs it (cmake/install.cmake).
#   scripts/gen-man.sh NAQ_BINARY man/naq.1.in VERSION > naq.1
set -euo pipefail
if (($# != 3)); then
    echo "usage: scripts/gen-man.sh NAQ_BINARY TEMPLATE VERSION" >&2
    exit 2
fi
naq=$1 template=$2 version=$3
# No --help may reach a server, even one that runs on this machine.
export NAQ_URL=nats://127.0.0.1:1 NAQ_EVENT_STORAGE_URL=nats://127.0.0.1:1

# Text as troff: backslashes, '-' (so options copy as ASCII hyphens) and
# lines that start with a control character.
troff_escape() {
    sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
}

# "name summary" lines of the commands: section of `naq --help`.
command_list() {
    "$naq" --help | sed -n '/^commands:/,/^$/{/^  [a-z]/p}'
}

# Subcommand candidates of the command path in $1: lowercase words that
# follow "naq $1 " on the usage lines of its help ($2).
subcommand_candidates() {
    local path=$1 help=$2
    printf '%s\n' "$help" | sed -n '1,/^$/p' |
        sed -n "s/^\\(usage:\\)\\{0,1\\} *naq $path //p" |
        tr ' |' '\n\n' | grep -E '^[a-z][a-z-]*$' | awk '!seen[$0]++' || true
}

# One section per command path, then its subcommands (three levels deep
# at most: naq events dlq list).
describe() {
    local path=$1 depth=$2 help sub subhelp
    # shellcheck disable=SC2086 # the path is words on purpose
    help=$("$naq" $path --help)
    printf '.SS "naq %s"\n.nf\n' "$path"
    printf '%s\n' "$help" | troff_escape
    printf '.fi\n'
    ((depth < 3)) || return 0
    while read -r sub; do
        [[ -n "$sub" ]] || continue
        # shellcheck disable=SC2086
        subhelp=$("$naq" $path "$sub" --help 2>/dev/null) || continue
        [[ "$subhelp" == usage:* && "$subhelp" != "$help" ]] || continue
        describe "$path $sub" $((depth + 1))
    done < <(subcommand_candidates "$path" "$help")
}

commands() {
    local name summary
    while read -r name summary; do
        printf '.TP\n.B %s\n%s\n' "$name" "$(printf '%s\n' "$summary" | troff_escape)"
    done < <(command_list)
}

command_help() {
    local name summary
    while read -r name summary; do
        describe "$name" 1
    done < <(command_list)
}

while IFS= read -r line; do
    case "$line" in
    @COMMANDS@) commands ;;
    @COMMAND_HELP@) command_help ;;
    *) printf '%s\n' "${line//@VERSION@/$version}" ;;
    esac
done <"$template"
