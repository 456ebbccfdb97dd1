complete --keep-order --exclusive --command ebpfx --arguments "(COMPLETE=fish ebpfx -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
