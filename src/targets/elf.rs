//! User-space binaries for `--probe BINARY:GLOB`: finding the file and reading its function
//! symbols (`.symtab` and `.dynsym`) with the `object` crate.
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use object::{Object, ObjectSection, ObjectSymbol, SymbolFlags, SymbolKind, SymbolSection};

use super::Function;
use crate::error::usage_err;

/// The function symbols of an ELF file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ElfFunctions {
    /// STT_FUNC symbols with their file offsets (one entry per name: aliases repeat offsets).
    pub functions: Vec<Function>,
    /// STT_GNU_IFUNC symbols (`strcmp`, `memcpy`, ... in libc): the offset is the resolver's,
    /// which runs once at load time and picks the implementation for the CPU.
    pub ifuncs: Vec<Function>,
}

/// Where libbpf looks for a library when given a bare name.
fn library_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
        .unwrap_or_default();
    let multiarch = match std::env::consts::ARCH {
        "aarch64" => "aarch64-linux-gnu",
        _ => "x86_64-linux-gnu",
    };
    for d in ["/usr/lib64", "/usr/lib", "/lib64", "/lib"] {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(PathBuf::from(format!("/lib/{multiarch}")));
    dirs.push(PathBuf::from(format!("/usr/lib/{multiarch}")));
    dirs
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// A path (with `/`) as is; a library name (`*.so`, `*.so.N`) through LD_LIBRARY_PATH and the
/// system library directories; any other name through `$PATH`.
pub fn resolve_binary(name: &str) -> anyhow::Result<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        if !p.is_file() {
            return Err(usage_err(format!("--probe: binary {name} not found")));
        }
        return Ok(p);
    }
    let is_library = name.ends_with(".so") || name.contains(".so.");
    if is_library {
        let dirs = library_dirs();
        if let Some(p) = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
            return Ok(p);
        }
        let list: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        return Err(usage_err(format!(
            "--probe: library {name} not found in LD_LIBRARY_PATH or {} (give its full path)",
            list.join(":")
        )));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.push(PathBuf::from("/usr/bin"));
    dirs.push(PathBuf::from("/usr/sbin"));
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
        .ok_or_else(|| usage_err(format!("--probe: binary {name:?} not found in $PATH (give its path)")))
}

/// Every function defined in the ELF image `data` (from `.symtab` and `.dynsym`), with its file
/// offset; aliases (several names at one address) appear once per name. IFUNC symbols are
/// returned apart: their address is the resolver's, not the function's.
pub fn elf_functions(data: &[u8]) -> anyhow::Result<ElfFunctions> {
    let file = object::File::parse(data).map_err(|e| anyhow!("not an ELF file we can read: {e}"))?;
    let mut out = ElfFunctions::default();
    for sym in file.symbols().chain(file.dynamic_symbols()) {
        let SymbolFlags::Elf { st_info, .. } = sym.flags() else { continue };
        let stt = st_info & 0xf;
        // (`object` calls no IFUNC symbol a definition: judge those by their section.)
        let ifunc = stt == object::elf::STT_GNU_IFUNC && !sym.is_undefined();
        let func = stt == object::elf::STT_FUNC && sym.kind() == SymbolKind::Text && sym.is_definition();
        if !(func || ifunc) {
            continue;
        }
        let Ok(name) = sym.name() else { continue };
        let SymbolSection::Section(index) = sym.section() else { continue };
        let Ok(section) = file.section_by_index(index) else { continue };
        let Some((offset, _)) = section.file_range() else { continue };
        if name.is_empty() || sym.address() < section.address() {
            continue;
        }
        let f = Function::user(name, sym.address() - section.address() + offset);
        if ifunc {
            out.ifuncs.push(f);
        } else {
            out.functions.push(f);
        }
    }
    Ok(out)
}

/// The implementation an IFUNC symbol resolves to on this CPU, as a file offset in `binary`,
/// when `binary` is mapped into this very process (libc is: ebpfx links it): the dynamic
/// linker ran the resolver for us, and `dlsym` returns its choice. `None` otherwise.
pub fn resolve_ifunc(binary: &Path, name: &str) -> Option<u64> {
    let cname = std::ffi::CString::new(name).ok()?;
    // SAFETY: `cname` is a valid NUL-terminated string; RTLD_DEFAULT searches the libraries
    // already loaded and runs no code of theirs (IFUNC resolvers ran when they were loaded).
    let addr = unsafe { libc::dlsym(libc::RTLD_DEFAULT, cname.as_ptr()) } as u64;
    if addr == 0 {
        return None;
    }
    let want = std::fs::metadata(binary).ok()?;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    mapping_offset(&maps, addr, |path| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).map(|m| m.ino() == want.ino() && m.dev() == want.dev()).unwrap_or(false)
    })
}

/// File offset of `addr` in /proc/self/maps text, if the mapping holding it is of a file that
/// `is_target` accepts.
pub fn mapping_offset(maps: &str, addr: u64, is_target: impl Fn(&str) -> bool) -> Option<u64> {
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let (range, _perms, offset, _dev, _inode) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let path = parts.collect::<Vec<_>>().join(" ");
        let (start, end) = range.split_once('-')?;
        let (start, end) = (u64::from_str_radix(start, 16).ok()?, u64::from_str_radix(end, 16).ok()?);
        if (start..end).contains(&addr) {
            if path.starts_with('/') && is_target(&path) {
                return Some(addr - start + u64::from_str_radix(offset, 16).ok()?);
            }
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[no_mangle]
    #[inline(never)]
    extern "C" fn ebpfx_probe_unit_target(x: u64) -> u64 {
        std::hint::black_box(x + 1)
    }

    #[test]
    fn resolves_functions_of_this_test_binary() {
        assert_eq!(ebpfx_probe_unit_target(std::hint::black_box(1)), 2);
        let exe = std::env::current_exe().expect("current exe");
        let data = std::fs::read(&exe).expect("read exe");
        let all = elf_functions(&data).expect("parse").functions;
        let hits = super::super::select(&all, "ebpfx_probe_unit_targe?");
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].name, "ebpfx_probe_unit_target");
        // The file offset must hold the very bytes the function runs.
        let at = hits[0].file_offset as usize;
        let file_bytes = data.get(at..at + 16).expect("offset inside the file");
        let code = ebpfx_probe_unit_target as extern "C" fn(u64) -> u64 as *const u8;
        // SAFETY: 16 bytes from the function's start lie in this process's mapped, readable
        // text segment (past a short function's end they are the next function's code).
        let mem_bytes = unsafe { std::slice::from_raw_parts(code, 16) };
        assert_eq!(file_bytes, mem_bytes);
    }

    #[test]
    fn binaries_and_libraries() {
        assert!(resolve_binary("sh").expect("sh in PATH").is_absolute());
        assert!(resolve_binary("libc.so.6").expect("libc").is_file());
        assert!(resolve_binary("/no/such/binary").is_err());
        assert!(resolve_binary("no-such-binary-ebpfx").is_err());
    }

    #[test]
    fn libc_ifuncs_are_apart_and_resolve_to_code() {
        let libc = resolve_binary("libc.so.6").expect("libc");
        let data = std::fs::read(&libc).expect("read libc");
        let syms = elf_functions(&data).expect("parse libc");
        assert!(syms.ifuncs.iter().any(|f| f.name == "strcmp"), "strcmp is an IFUNC in glibc");
        assert!(!syms.functions.iter().any(|f| f.name == "strcmp"));
        let resolver = syms.ifuncs.iter().find(|f| f.name == "strcmp").map(|f| f.file_offset);
        let imp = resolve_ifunc(&libc, "strcmp").expect("libc is mapped here: strcmp resolves");
        assert_ne!(Some(imp), resolver, "the implementation, not the resolver");
        // The implementation's bytes in the file are the code this process runs for strcmp.
        let cname = c"strcmp";
        // SAFETY: valid NUL-terminated name; RTLD_DEFAULT looks up the loaded libraries.
        let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, cname.as_ptr()) } as *const u8;
        // SAFETY: p points at strcmp's code in a mapped, readable text segment; 16 bytes of it.
        let mem = unsafe { std::slice::from_raw_parts(p, 16) };
        assert_eq!(&data[imp as usize..imp as usize + 16], mem);
    }

    #[test]
    fn offsets_from_maps_text() {
        let maps = "7f0000000000-7f0000010000 r--p 00000000 fe:01 123 /usr/lib/x86_64-linux-gnu/libc.so.6\n7f0000010000-7f0000100000 r-xp 00010000 fe:01 123 /usr/lib/x86_64-linux-gnu/libc.so.6\n7f0000200000-7f0000300000 rw-p 00000000 00:00 0 \n";
        assert_eq!(mapping_offset(maps, 0x7f0000010040, |p| p.ends_with("libc.so.6")), Some(0x10040));
        assert_eq!(mapping_offset(maps, 0x7f0000010040, |_| false), None);
        assert_eq!(mapping_offset(maps, 0x7f0000200010, |_| true), None);
        assert_eq!(mapping_offset(maps, 0x10, |_| true), None);
    }
}
