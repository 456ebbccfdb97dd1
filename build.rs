//! Compiles every `bpf/*.bpf.c` into a CO-RE object in OUT_DIR and writes `bpf_objects.rs`,
//! a table the catalog embeds with `include_bytes!`.
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let bpf_dir = manifest.join("bpf");
    let vmlinux_dir = bpf_dir.join("vmlinux");
    println!("cargo:rerun-if-changed=bpf");
    println!("cargo:rerun-if-env-changed=CLANG");

    // libbpf-sys exports the headers of the libbpf it builds (same version that loads the objects).
    let libbpf_include = env::var("DEP_BPF_INCLUDE")
        .unwrap_or_else(|_| fail("DEP_BPF_INCLUDE is not set: the libbpf-sys dependency must export its headers"));
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86",
        Ok("aarch64") => "arm64",
        Ok(other) => fail(&format!("unsupported target architecture {other}: ebpfx supports x86_64 and aarch64")),
        Err(_) => "x86",
    };
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
    if Command::new(&clang).arg("--version").output().is_err() {
        fail(&format!(
            "`{clang}` not found: the BPF programs in bpf/ need clang. Install it with `apt-get install clang llvm` (Debian/Ubuntu) or run `make deps`"
        ));
    }
    let strip = find_llvm_strip();

    let mut sources: Vec<PathBuf> = fs::read_dir(&bpf_dir)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", bpf_dir.display())))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".bpf.c"))
        .collect();
    sources.sort();

    // Test-only objects (tests/bpf/*.bpf.c) are not built here: users' builds never compile
    // them. The integration tests compile the ones they use on first use
    // (tests/common/mod.rs, `test_object`), with the same compiler, flags and libbpf headers,
    // which these variables hand them. The built-in objects stay in EBPFX_OBJECT_DIR.
    println!("cargo:rustc-env=EBPFX_OBJECT_DIR={}", out.display());
    println!("cargo:rustc-env=EBPFX_BPF_CLANG={clang}");
    println!("cargo:rustc-env=EBPFX_BPF_ARCH={arch}");
    println!("cargo:rustc-env=EBPFX_BPF_INCLUDE={libbpf_include}");
    println!("cargo:rustc-env=EBPFX_BPF_MULTIARCH_INCLUDE={}", multiarch_include(arch));
    println!("cargo:rustc-env=EBPFX_BPF_STRIP={}", strip.as_deref().unwrap_or(""));

    let mut table = String::from("/// (name, object bytes) for every bpf/NAME.bpf.c, sorted by name.\npub static BPF_OBJECTS: &[(&str, &[u8])] = &[\n");
    for src in &sources {
        let file = src.file_name().and_then(|f| f.to_str()).unwrap_or_default();
        let name = file.trim_end_matches(".bpf.c");
        let obj = out.join(format!("{name}.bpf.o"));
        compile(&clang, arch, &vmlinux_dir, &libbpf_include, &bpf_dir, src, &obj, strip.as_deref());
        let _ = writeln!(table, "    ({name:?}, include_bytes!({:?})),", obj.display().to_string());
    }

    // Event tools (bpf/events/*.bpf.c, ring buffer records): compiled to OUT_DIR/events (where the
    // tests find them), built in like the others (configs/NAME.yaml beside them).
    let events_src = bpf_dir.join("events");
    if events_src.is_dir() {
        let events_out = out.join("events");
        let _ = fs::create_dir_all(&events_out);
        let mut evs: Vec<PathBuf> = fs::read_dir(&events_src)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        evs.retain(|p| p.to_string_lossy().ends_with(".bpf.c"));
        evs.sort();
        for src in &evs {
            let name = src.file_name().and_then(|f| f.to_str()).unwrap_or_default().trim_end_matches(".bpf.c");
            let obj = events_out.join(format!("{name}.bpf.o"));
            compile(&clang, arch, &vmlinux_dir, &libbpf_include, &bpf_dir, src, &obj, strip.as_deref());
            let _ = writeln!(table, "    ({name:?}, include_bytes!({:?})),", obj.display().to_string());
        }
        sources.extend(evs);
    }
    table.push_str("];\n");

    // Built-in configs: every configs/NAME.yaml must have its bpf/NAME.bpf.c and vice versa.
    let configs_dir = manifest.join("configs");
    println!("cargo:rerun-if-changed=configs");
    let mut configs: Vec<String> = fs::read_dir(&configs_dir)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", configs_dir.display())))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            p.file_name().and_then(|f| f.to_str()).and_then(|f| f.strip_suffix(".yaml")).map(str::to_string)
        })
        .collect();
    configs.sort();
    let objects: Vec<String> = sources
        .iter()
        .filter_map(|s| s.file_name().and_then(|f| f.to_str()).map(|f| f.trim_end_matches(".bpf.c").to_string()))
        .collect();
    for c in &configs {
        if !objects.contains(c) {
            fail(&format!("configs/{c}.yaml has no bpf/{c}.bpf.c (or bpf/events/{c}.bpf.c)"));
        }
    }
    for o in &objects {
        if !configs.contains(o) {
            fail(&format!("bpf/{o}.bpf.c has no configs/{o}.yaml"));
        }
    }
    table.push_str("/// (name, YAML text) for every configs/NAME.yaml, sorted by name.\npub static BUILTIN_CONFIGS: &[(&str, &str)] = &[\n");
    for c in &configs {
        let path = configs_dir.join(format!("{c}.yaml"));
        let _ = writeln!(table, "    ({c:?}, include_str!({:?})),", path.display().to_string());
    }
    table.push_str("];\n");
    fs::write(out.join("bpf_objects.rs"), table).unwrap_or_else(|e| fail(&format!("writing bpf_objects.rs: {e}")));
}

#[allow(clippy::too_many_arguments)]
fn compile(
    clang: &str,
    arch: &str,
    vmlinux_dir: &std::path::Path,
    libbpf_include: &str,
    bpf_dir: &std::path::Path,
    src: &std::path::Path,
    obj: &std::path::Path,
    strip: Option<&str>,
) {
    let status = Command::new(clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-D__TARGET_ARCH_{arch}"))
        .arg("-I")
        .arg(vmlinux_dir)
        .arg("-I")
        .arg(libbpf_include)
        .arg("-I")
        .arg(bpf_dir)
        // usdt.bpf.h includes <linux/errno.h> -> <asm/errno.h>, which lives in the multiarch
        // directory that `clang -target bpf` does not search by itself.
        .arg("-idirafter")
        .arg(multiarch_include(arch))
        .arg("-c")
        .arg(src)
        .arg("-o")
        .arg(obj)
        .status()
        .unwrap_or_else(|e| fail(&format!("running {clang}: {e}")));
    if !status.success() {
        fail(&format!("clang failed to compile {}", src.display()));
    }
    if let Some(strip) = strip {
        // Drops DWARF, keeps BTF and CO-RE relocations (~630 KB -> ~18 KB per object).
        let ok = Command::new(strip).arg("-g").arg(obj).status().map(|s| s.success()).unwrap_or(false);
        if !ok {
            fail(&format!("{strip} -g {} failed", obj.display()));
        }
    }
}

fn multiarch_include(arch: &str) -> String {
    match arch {
        "arm64" => "/usr/include/aarch64-linux-gnu".to_string(),
        _ => "/usr/include/x86_64-linux-gnu".to_string(),
    }
}

fn find_llvm_strip() -> Option<String> {
    let candidates = [
        "llvm-strip",
        "llvm-strip-14",
        "llvm-strip-15",
        "llvm-strip-16",
        "llvm-strip-17",
        "llvm-strip-18",
        "llvm-strip-19",
    ];
    for c in candidates {
        if Command::new(c).arg("--version").output().map(|o| o.status.success()).unwrap_or(false) {
            return Some(c.to_string());
        }
    }
    println!("cargo:warning=llvm-strip not found (apt-get install llvm): BPF objects are embedded with DWARF");
    None
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    panic!("ebpfx build: {msg}");
}
