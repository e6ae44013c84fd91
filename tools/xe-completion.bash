# bash completion for vmstack's xe.
#
# Install:  cp tools/xe-completion.bash /etc/bash_completion.d/xe
#      or:  source tools/xe-completion.bash   (in ~/.bashrc)
#
# The candidates come from the binary itself (`xe --complete <words>`):
# command names and parameter names from its command table and the
# datamodel, uuids and name-labels from the daemon when it is reachable.

_xe() {
    local line=${COMP_LINE:0:$COMP_POINT}
    local -a words
    read -r -a words <<< "$line"
    # After a space the word being completed is empty.
    [[ $line == *[[:space:]] ]] && words+=("")
    ((${#words[@]} >= 1)) || return 0
    local cur=${words[-1]}

    local xe=${words[0]}
    local -a candidates
    mapfile -t candidates < <("$xe" --complete "${words[@]:1}" 2>/dev/null)
    ((${#candidates[@]})) || return 0

    # bash splits the word at the characters of COMP_WORDBREAKS ('=' and ':'
    # usually): only the part after the last of those is replaced, so the
    # replies must not repeat what comes before it.
    local prefix=""
    local i c
    for ((i = ${#cur} - 1; i >= 0; i--)); do
        c=${cur:i:1}
        if [[ ($c == "=" || $c == ":") && $COMP_WORDBREAKS == *"$c"* ]]; then
            prefix=${cur:0:i+1}
            break
        fi
    done

    COMPREPLY=()
    local cand
    for cand in "${candidates[@]}"; do
        cand=${cand#"$prefix"}
        # Name-labels may contain spaces.
        COMPREPLY+=("${cand// /\\ }")
    done
    # No space after "key=" or "map-param:": the value comes next.
    if ((${#COMPREPLY[@]} == 1)) && [[ ${COMPREPLY[0]} == *[=:] ]]; then
        compopt -o nospace 2>/dev/null
    fi
    return 0
}

complete -F _xe xe
