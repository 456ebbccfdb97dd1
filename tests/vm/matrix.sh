#!/usr/bin/env bash
# matrix.sh: the kernel matrix behind `make test-kernels`. Boots Debian's own kernel packages
# (5.10 from bullseye-security, 6.1 from bookworm, 6.12 from bookworm-backports) under qemu with
# a busybox initramfs holding the release ebpfx, runs tests/vm/guest.sh in each (every built-in
# with a workload, kprobe/fentry compat configs, a kernel glob, check --attach), runs the same
# script on the host kernel, prints a kernels x cases table and exits 1 when any case failed.
#
#   tests/vm/matrix.sh [KERNEL...]     KERNEL: 5.10, 6.1, 6.12 or host (default: all four)
#
# Environment: EBPFX_VM_CACHE (default /var/cache/ebpfx-kernels) holds a private apt state (its
# own sources list and package lists: /etc/apt is left alone), the downloaded packages and their
# unpacked trees; EBPFX_VM_ONLY limits the cases (names as in guest.sh); EBPFX_VM_FLAGS adds
# ebpfx options (-vv: libbpf's and the verifier's log on failures); EBPFX_VM_KEEP=1 keeps
# the work directory; EBPFX_VM_TIMEOUT is the limit of one guest run in seconds (default 600).
# Needs root (apt-get install of qemu-system-x86 from bookworm-backports and busybox-static; the
# host leg loads BPF programs). No KVM: the CPU here shows no vmx/svm and KVM guests stall, so
# qemu runs TCG unless EBPFX_VM_ACCEL=kvm.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${EBPFX_VM_CACHE:-/var/cache/ebpfx-kernels}
TIMEOUT=${EBPFX_VM_TIMEOUT:-600}
ACCEL=${EBPFX_VM_ACCEL:-tcg}
KERNELS=("$@")
[ ${#KERNELS[@]} -eq 0 ] && KERNELS=(5.10 6.1 6.12 host)

say() { echo "matrix: $*" >&2; }
die() { say "$*"; exit 2; }

[ "$(id -u)" = 0 ] || die "needs root (apt-get install, BPF on the host)"

# ---- private apt: bookworm, bookworm-backports, bullseye-security --------------------------------
APT=$CACHE/apt
APT_OPTS=(-o "Dir::Etc::SourceList=$APT/sources.list" -o "Dir::Etc::SourceParts=$APT/sources.list.d"
	-o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache" -o "Dir::Cache::archives=$APT/cache/archives"
	-o "Dir::Etc::Preferences=$APT/preferences" -o "Dir::Etc::PreferencesParts=$APT/preferences.d"
	-o "APT::Sandbox::User=root")
apt_setup() {
	mkdir -p "$APT"/{lists/partial,cache/archives/partial,sources.list.d,preferences.d} "$CACHE/debs" || die "cannot write $CACHE"
	cat >"$APT/sources.list" <<-EOF
		deb http://deb.debian.org/debian bookworm main
		deb http://deb.debian.org/debian bookworm-backports main
		deb http://deb.debian.org/debian-security bullseye-security main
	EOF
	# Package lists older than a day are fetched again (kernel packages move on).
	if [ -z "$(find "$APT/lists" -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
		say "apt-get update (private lists under $APT)"
		apt-get "${APT_OPTS[@]}" update -qq >/dev/null || die "apt-get update failed"
	fi
}

install_tools() {
	local missing=()
	command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
	[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || missing+=(busybox-static)
	command -v tc >/dev/null && command -v ip >/dev/null || missing+=(iproute2)
	command -v xz >/dev/null || missing+=(xz-utils)
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing ${missing[*]} (qemu from bookworm-backports: bookworm's 7.2 conflicts with qemu-utils 10)"
	DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends \
		-t bookworm-backports "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
}

# The kernel package a suite's linux-image-amd64 points at, downloaded and unpacked once.
suite_of() {
	case $1 in
	5.10) echo bullseye-security ;; 6.1) echo bookworm ;; 6.12) echo bookworm-backports ;;
	*) return 1 ;;
	esac
}
fetch_kernel() { # KERNEL -> prints the unpacked tree
	local k=$1 suite version pkg deb tree
	suite=$(suite_of "$k") || die "unknown kernel $k (5.10, 6.1, 6.12 or host)"
	version=$(apt-cache "${APT_OPTS[@]}" madison linux-image-amd64 | awk -v s="$suite/" '$0 ~ s { print $3; exit }')
	[ -n "$version" ] || die "no linux-image-amd64 in $suite"
	pkg=$(apt-cache "${APT_OPTS[@]}" show "linux-image-amd64=$version" | sed -n 's/^Depends: \(linux-image-[^ ,]*\).*/\1/p' | head -1)
	[ -n "$pkg" ] || die "cannot tell which kernel linux-image-amd64 $version ($suite) depends on"
	deb=$(ls "$CACHE/debs/${pkg}_"*.deb 2>/dev/null | head -1)
	if [ -z "$deb" ]; then
		say "downloading $pkg ($suite)"
		(cd "$CACHE/debs" && apt-get "${APT_OPTS[@]}" download -qq "$pkg" >/dev/null) || die "apt-get download $pkg failed"
		deb=$(ls "$CACHE/debs/${pkg}_"*.deb 2>/dev/null | head -1)
		[ -n "$deb" ] || die "$pkg: downloaded nothing"
	fi
	tree=$CACHE/trees/$pkg
	if [ ! -d "$tree" ]; then
		say "unpacking $(basename "$deb")"
		mkdir -p "$CACHE/trees" && rm -rf "$tree.tmp" && dpkg-deb -x "$deb" "$tree.tmp" && mv "$tree.tmp" "$tree" ||
			die "dpkg-deb -x $deb failed"
	fi
	echo "$tree"
}

# ---- what goes into every guest ----------------------------------------------------------------
build() {
	say "building the release ebpfx and functarget"
	(cd "$ROOT" && "${CARGO:-cargo}" build --release --quiet --bin ebpfx --example functarget) || die "cargo build --release failed"
	# The compat test objects: build.rs compiles only the built-ins, so compile these here with
	# the flags and the libbpf headers of the release build (as tests/common/mod.rs does).
	local inc o
	inc=$(ls -td "$ROOT"/target/release/build/libbpf-sys-*/out/include 2>/dev/null | head -1)
	[ -n "$inc" ] || die "no libbpf headers under target/release/build/libbpf-sys-*/out/include"
	OBJ_DIR="$ROOT/target/vm-objects"
	mkdir -p "$OBJ_DIR"
	for o in kprobe_mixed fentry_mixed drop30; do
		clang -O2 -g -target bpf -D__TARGET_ARCH_x86 -I "$ROOT/bpf/vmlinux" -I "$inc" -I "$ROOT/bpf" \
			-idirafter /usr/include/x86_64-linux-gnu -c "$ROOT/tests/bpf/$o.bpf.c" -o "$OBJ_DIR/$o.bpf.o" \
			|| die "compiling tests/bpf/$o.bpf.c failed"
	done
}

copy_libs() { # ELF -> its shared libraries (as this host resolves them) under $1's stage
	local stage=$1 elf=$2 lib
	for lib in $(ldd "$elf" 2>/dev/null | grep -o '/[^ ]*'); do
		[ -e "$lib" ] && [ ! -e "$stage$lib" ] && mkdir -p "$stage$(dirname "$lib")" && cp -L "$lib" "$stage$lib"
	done
}

stage_data() { # DIR: ebpfx, functarget, guest.sh, compat configs
	local d=$1 c
	mkdir -p "$d/compat"
	cp "$ROOT/target/release/ebpfx" "$ROOT/target/release/examples/functarget" "$ROOT/tests/vm/guest.sh" "$d/"
	for c in kprobe_mixed fentry_mixed; do
		cp "$ROOT/tests/configs/$c.yaml" "$OBJ_DIR/$c.bpf.o" "$d/compat/" || die "compat config $c missing"
	done
	cp "$OBJ_DIR/drop30.bpf.o" "$d/compat/" || die "tests/bpf/drop30.bpf.o missing"
}

# Modules: NAME -> file under the tree, dependencies first (read from the module's own
# depends= field), decompressed into the stage. Built-in ones are skipped.
declare -A MODDONE
add_module() { # STAGE MODDIR NAME
	local stage=$1 moddir=$2 n=${3//-/_} f out deps dep
	[ -n "${MODDONE[$n]:-}" ] && return 0
	MODDONE[$n]=1
	f=$(find "$moddir/kernel" \( -name "$n.ko" -o -name "$n.ko.xz" -o -name "$n.ko.zst" -o -name "${n//_/-}.ko*" \) | head -1)
	if [ -z "$f" ]; then
		sed 's#.*/##; s#\.ko$##; s#-#_#g' "$moddir/modules.builtin" | grep -qx "$n" || say "module $n not found (assumed built in)"
		return 0
	fi
	out=$stage/vm/mod/$n.ko
	case $f in
	*.xz) xz -dc "$f" >"$out" ;; *.zst) zstd -qdc "$f" >"$out" ;; *) cp "$f" "$out" ;;
	esac || die "cannot unpack $f"
	deps=$(grep -a -o 'depends=[^[:cntrl:]]*' "$out" | head -1)
	deps=${deps#depends=}
	for dep in ${deps//,/ }; do add_module "$stage" "$moddir" "$dep"; done
	echo "$n" >>"$stage/vm/modules"
}

make_initramfs() { # TREE WORK -> WORK/initramfs.cpio
	local tree=$1 work=$2 stage=$2/stage kver moddir m
	kver=$(basename "$(ls "$tree"/boot/vmlinuz-* | head -1)")
	kver=${kver#vmlinuz-}
	moddir=$tree/lib/modules/$kver
	mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,usr/local/sbin,proc,sys,dev,tmp,run,etc,root,vm/mod} "$stage/lib64"
	: >"$stage/vm/modules"
	MODDONE=()
	for m in virtio_pci virtio_blk sch_netem sch_ingress cls_bpf; do add_module "$stage" "$moddir" "$m"; done
	cp /bin/busybox "$stage/bin/busybox"
	cp "$ROOT/tests/vm/init" "$stage/init" && chmod +x "$stage/init"
	stage_data "$stage/vm"
	# iproute2's ip and tc (busybox's ip has no netns, its tc no BPF), called by path
	for f in "$(command -v ip)" "$(command -v tc)"; do cp "$f" "$stage/usr/local/sbin/" && copy_libs "$stage" "$f"; done
	copy_libs "$stage" "$stage/vm/ebpfx"
	copy_libs "$stage" "$stage/vm/functarget"
	cp -L /lib64/ld-linux-x86-64.so.2 "$stage/lib64/"
	echo 'root:x:0:0:root:/root:/bin/sh' >"$stage/etc/passwd"
	echo 'root:x:0:' >"$stage/etc/group"
	echo "${EBPFX_VM_ONLY:-}" >"$stage/vm/only"
	echo "${EBPFX_VM_FLAGS:-}" >"$stage/vm/flags"
	echo "$((TIMEOUT - 30))" >"$stage/vm/timeout"
	(cd "$stage" && find . | busybox cpio -o -H newc 2>/dev/null) >"$work/initramfs.cpio" || die "cpio failed"
}

# ---- one leg -------------------------------------------------------------------------------------
WORKROOT=$(mktemp -d /var/tmp/ebpfx-matrix.XXXXXX) || die "mktemp failed"
QPIDS=()
cleanup() {
	local p
	for p in "${QPIDS[@]}"; do kill "$p" 2>/dev/null; done
	[ "${EBPFX_VM_KEEP:-0}" = 1 ] && say "work directory kept: $WORKROOT" || rm -rf "$WORKROOT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

run_vm() { # KERNEL -> WORKROOT/KERNEL/{output.log,console.log}
	local k=$1 tree work vmlinuz t0 t1 qpid
	tree=$(fetch_kernel "$k") || exit 2
	work=$WORKROOT/$k
	mkdir -p "$work"
	make_initramfs "$tree" "$work"
	vmlinuz=$(ls "$tree"/boot/vmlinuz-* | head -1)
	truncate -s 64M "$work/disk.raw"
	say "$k: booting $(basename "$vmlinuz") ($ACCEL)"
	t0=$(date +%s)
	timeout -k 5 "$TIMEOUT" qemu-system-x86_64 -accel "$ACCEL" -cpu max -smp 2 -m 1024 \
		-nodefaults -no-user-config -display none -no-reboot \
		-kernel "$vmlinuz" -initrd "$work/initramfs.cpio" \
		-append "console=ttyS0 panic=-1 rdinit=/init random.trust_cpu=on quiet" \
		-serial "file:$work/console.log" -serial "file:$work/output.log" \
		-drive "file=$work/disk.raw,if=none,format=raw,id=d0" -device virtio-blk-pci,drive=d0 \
		</dev/null >"$work/qemu.log" 2>&1 &
	qpid=$!
	QPIDS+=("$qpid")
	wait "$qpid"
	t1=$(date +%s)
	echo "$((t1 - t0))" >"$work/seconds"
	tr -d '\r' <"$work/output.log" >"$work/result.log"
	if ! grep -q '^VM_EXIT=' "$work/result.log"; then
		echo "CASE boot FAIL the guest never reported (qemu or kernel failure, or the ${TIMEOUT}s limit)" >>"$work/result.log"
		{ echo "---- qemu"; cat "$work/qemu.log"; echo "---- console (last 40 lines)"; tr -d '\r' <"$work/console.log" | tail -40; } |
			sed "s/^/    $k | /" >>"$work/result.log"
	fi
}

run_host() {
	local work=$WORKROOT/host t0 t1
	mkdir -p "$work/data"
	stage_data "$work/data"
	say "host: $(uname -r)"
	t0=$(date +%s)
	# IO to a file of our own (never to the host's disk device itself).
	EBPFX_VM_DATA=$work/data EBPFX_VM_IO=$work/io.raw EBPFX_VM_DISK=${EBPFX_VM_HOST_DISK:-vda} \
		EBPFX_VM_STRICT=0 EBPFX_VM_FLAGS=${EBPFX_VM_FLAGS:-} EBPFX_VM_IP=$(command -v ip) EBPFX_VM_TC=$(command -v tc) timeout "$TIMEOUT" sh "$work/data/guest.sh" >"$work/result.log" 2>&1 </dev/null
	echo "VM_EXIT=$?" >>"$work/result.log"
	t1=$(date +%s)
	echo "$((t1 - t0))" >"$work/seconds"
}

# ---- main ----------------------------------------------------------------------------------------
T0=$(date +%s)
apt_setup
install_tools
build
for k in "${KERNELS[@]}"; do
	if [ "$k" = host ]; then run_host; else run_vm "$k"; fi
	sed -n '/^CASE .* FAIL/,/^CASE .* PASS/p' "$WORKROOT/$k/result.log" | grep -v ' PASS ' | sed "s/^/$k: /" >&2
	say "$k: $(grep -c '^CASE .* PASS' "$WORKROOT/$k/result.log") passed, $(grep -c '^CASE .* FAIL' "$WORKROOT/$k/result.log") failed in $(cat "$WORKROOT/$k/seconds")s"
done

# Known failures, KERNEL:CASE and why: shown as XFAIL (not counted as failed) while they fail, as
# XPASS once they pass (then take them off this list).
declare -A KNOWN=(
)

# The table: one row per case, one column per kernel.
CASES=$(cat "$WORKROOT"/*/result.log | awk '/^CASE / { if (!seen[$2]++) print $2 }')
printf '%-22s' case
for k in "${KERNELS[@]}"; do printf ' %-8s' "$k"; done
echo
FAILED=0 PASSED=0 SKIPPED=0 NOTES=()
for c in $CASES boot; do
	line=$(printf '%-22s' "$c")
	any=0
	for k in "${KERNELS[@]}"; do
		r=$(awk -v c="$c" '$1 == "CASE" && $2 == c { print $3; exit }' "$WORKROOT/$k/result.log")
		[ -n "$r" ] && any=1
		why=${KNOWN[$k:$c]:-}
		if [ -n "$why" ] && [ "$r" = FAIL ]; then
			r=XFAIL
			NOTES+=("$k $c: known failure: $why")
		elif [ -n "$why" ] && [ "$r" = PASS ]; then
			r=XPASS
			NOTES+=("$k $c: passes now: take it off KNOWN in tests/vm/matrix.sh")
		fi
		case $r in PASS | XPASS) PASSED=$((PASSED + 1)) ;; FAIL) FAILED=$((FAILED + 1)) ;; SKIP | XFAIL) SKIPPED=$((SKIPPED + 1)) ;; esac
		line="$line $(printf '%-8s' "${r:--}")"
	done
	[ "$any" = 1 ] && echo "$line"
done
for n in "${NOTES[@]}"; do say "$n"; done
# A guest whose script failed only through known failures is fine; one that never finished is not.
for k in "${KERNELS[@]}"; do
	grep -q '^VM_EXIT=' "$WORKROOT/$k/result.log" || { say "$k: the guest script never finished"; FAILED=$((FAILED + 1)); }
done
say "whole matrix: $(($(date +%s) - T0))s"
echo "kernels: $PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]
