#!/usr/bin/env bash
# Builds the minimal libbpf C loader of ../shared/bench/anchors (a copy, in target/anchors) and
# runs `cargo bench --bench core` with it, so ebpfx and the loader are measured in one run.
# Needs root, clang, bpftool and libbpf-dev (apt-get install bpftool libbpf-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
src=../shared/bench/anchors
[ -d "$src" ] || { echo "no $src: the anchors live in the shared directory beside the repository" >&2; exit 1; }
rm -rf target/anchors && mkdir -p target && cp -r "$src" target/anchors
make -C target/anchors >/dev/null
cargo build --release
EBPFX_ANCHOR_DIR="$PWD/target/anchors" cargo bench --bench core
