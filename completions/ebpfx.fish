complete --keep-order --exclusive --command ebpfx --arguments "(EBPFX_COMPLETE=fish ebpfx -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
