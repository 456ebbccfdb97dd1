# bash completion for ebpfx: the candidates come from the binary itself (`EBPFX_COMPLETE=bash ebpfx -- WORDS`).
# Install as /usr/share/bash-completion/completions/ebpfx, or `source <(EBPFX_COMPLETE=bash ebpfx)`.
_ebpfx() {
    local IFS=$'\n'
    mapfile -t COMPREPLY < <(_EBPFX_LINE="${COMP_LINE:0:COMP_POINT}" _EBPFX_INDEX="$COMP_CWORD" \
        EBPFX_COMPLETE=bash ebpfx -- "${COMP_WORDS[@]}" 2>/dev/null)
    if [[ ${#COMPREPLY[@]} -eq 1 && "${COMPREPLY[0]}" == *[/:] ]]; then
        compopt -o nospace 2>/dev/null
    fi
    return 0
}
complete -F _ebpfx ebpfx
