# ebpfx: set-up, build, run and test on Debian 12 (as root for `run` and the live tests).
#   make run    installs what is missing, builds, runs `ebpfx run biolatency --for 10s` during disk IO
#   make test   installs what is missing, builds, runs the whole test suite (live BPF tests need root)
#   make test-kernels   boots Debian's 5.10, 6.1 and 6.12 kernels under qemu and runs every built-in

CARGO ?= $(shell command -v cargo || echo $(HOME)/.cargo/bin/cargo)
# Debian packages the build and the tests need. clang compiles bpf/*.bpf.c; llvm gives llvm-strip;
# libelf-dev, zlib1g-dev, pkg-config and make build the vendored libbpf; prometheus ships promtool;
# bash-completion, zsh, fish, groff-base and man-db let the tests run completions and man pages for
# real; iproute2 (ip, tc), python3 and util-linux (setpriv) drive live-test workloads;
# prometheus-node-exporter and prometheus-pushgateway are the real peers of the ecosystem tests.
DEB_PACKAGES := clang llvm libelf-dev zlib1g-dev pkg-config make prometheus prometheus-node-exporter prometheus-pushgateway bash-completion zsh fish groff-base man-db iproute2 python3 util-linux e2fsprogs time tmux golang-go
BIN := target/release/ebpfx

.PHONY: deps build run test test-kernels bench fmt clean generate

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "need root to apt-get install:$$missing" >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs)" >&2; exit 1; }

build: deps
	$(CARGO) build --release

# Runs biolatency for 10 s while dd writes 4 KiB blocks with O_DIRECT, so there is something to see.
run: build
	@scratch=$$(mktemp -d /var/tmp/ebpfx-run.XXXXXX); \
	( sleep 1; for i in 1 2 3 4 5; do dd if=/dev/zero of=$$scratch/io bs=4k count=2000 oflag=direct status=none; \
	  dd if=$$scratch/io of=/dev/null bs=4k iflag=direct status=none; done ) & \
	$(BIN) run biolatency --for 10s; status=$$?; wait; rm -rf $$scratch; exit $$status

# Formatting and clippy first: any finding fails the target before the (long) test run. rustup adds
# rustfmt or clippy only when the toolchain lacks them, so an offline machine that has them is fine.
test: deps
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt || { echo "cargo fmt is missing: rustup component add rustfmt" >&2; exit 1; }
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy || { echo "cargo clippy is missing: rustup component add clippy" >&2; exit 1; }
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) build --examples
	$(CARGO) test --no-fail-fast --lib --bins --tests -- --test-threads=2

# The kernel matrix (tests/vm/matrix.sh): Debian's 5.10, 6.1 and 6.12 kernel packages booted under
# qemu (TCG) with the release ebpfx, every built-in run with a workload in each, and on the host
# kernel. Installs qemu-system-x86 (bookworm-backports) and busybox-static itself, through a
# private apt sources list under /var/cache/ebpfx-kernels; the packages are cached there.
test-kernels: deps
	CARGO=$(CARGO) bash tests/vm/matrix.sh

bench: build
	$(CARGO) bench --bench core

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean

# Regenerates completions/ and man/ from the clap definition (tests fail when they are stale):
# the maintainer tool examples/xtask, also `cargo xtask all` (alias in .cargo/config.toml).
generate:
	$(CARGO) run --quiet --example xtask -- all
