# ebpfx: set-up, build, run and test on Debian 12 (as root for `run` and the live tests).
#   make run    installs what is missing, builds, runs `ebpfx run biolatency --for 10s` during disk IO
#   make test   installs what is missing, builds, runs the whole test suite (live BPF tests need root)

CARGO ?= $(shell command -v cargo || echo $(HOME)/.cargo/bin/cargo)
# Debian packages the build and the tests need. clang compiles bpf/*.bpf.c; llvm gives llvm-strip;
# libelf-dev, zlib1g-dev, pkg-config and make build the vendored libbpf; prometheus ships promtool;
# bash-completion, zsh, fish, groff-base and man-db let the tests run completions and man pages for
# real; iproute2 (ip, tc), python3 and util-linux (setpriv) drive live-test workloads;
# prometheus-node-exporter and prometheus-pushgateway are the real peers of the ecosystem tests.
DEB_PACKAGES := clang llvm libelf-dev zlib1g-dev pkg-config make prometheus prometheus-node-exporter prometheus-pushgateway bash-completion zsh fish groff-base man-db iproute2 python3 util-linux time tmux golang-go
BIN := target/release/ebpfx

.PHONY: deps build run test bench fmt clean generate

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

test: deps
	$(CARGO) build --examples
	$(CARGO) test --no-fail-fast --lib --bins --tests -- --test-threads=2

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
