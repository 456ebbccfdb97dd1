//! `pci_vendor`, `pci_device`, `pci_class`, `pci_subclass` (docs/config-format.md#decoders) from a `pci.ids` file.
use std::collections::HashMap;
use std::fmt::Write as _;

use super::text::parse_decimal_i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PciKind {
    Vendor,
    Device,
    Class,
    Subclass,
}

/// The parsed database. Keys are the ids exactly as written in the file (lowercase hex, padded
/// to the file's width), while lookups use unpadded-to-the-minimum hex: ids below 0x1000 never
/// match, as in ebpf_exporter.
#[derive(Debug, Default)]
pub(super) struct PciDb {
    vendors: HashMap<String, String>,
    /// vendor id + device id, concatenated.
    devices: HashMap<String, String>,
    classes: HashMap<String, String>,
    /// class id → (subclass id → name).
    subclasses: HashMap<String, HashMap<String, String>>,
}

impl PciDb {
    pub(super) fn parse(text: &str) -> PciDb {
        let mut db = PciDb::default();
        let mut vendor: Option<String> = None;
        // The class block being read; its subclasses are committed when the next class starts,
        // so the last class in the file gets none (as in the reference).
        let mut class: Option<(String, HashMap<String, String>)> = None;
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix("C ") {
                if let Some((id, subs)) = class.take() {
                    db.subclasses.insert(id, subs);
                }
                vendor = None;
                if let Some((id, name)) = split_id(rest) {
                    db.classes.insert(id.to_ascii_lowercase(), name.to_string());
                    class = Some((id.to_ascii_lowercase(), HashMap::new()));
                }
            } else if let Some(rest) = line.strip_prefix('\t') {
                if rest.starts_with('\t') {
                    continue; // subsystem or programming-interface line
                }
                let Some((id, name)) = split_id(rest) else {
                    continue;
                };
                if let Some((_, subs)) = class.as_mut() {
                    subs.insert(id.to_ascii_lowercase(), name.to_string());
                } else if let Some(v) = &vendor {
                    db.devices.insert(format!("{v}{}", id.to_ascii_lowercase()), name.to_string());
                }
            } else if let Some((id, name)) = split_id(line) {
                if let Some((cid, subs)) = class.take() {
                    db.subclasses.insert(cid, subs);
                }
                let id = id.to_ascii_lowercase();
                db.vendors.insert(id.clone(), name.to_string());
                vendor = Some(id);
            }
        }
        db
    }

    pub(super) fn decode(&self, kind: PciKind, input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let n = parse_decimal_i64(input).ok_or_else(|| super::text::not_a_number(input, "a decimal integer"))?;
        let text = match kind {
            PciKind::Vendor => {
                let key = go_hex(n, 2);
                match self.vendors.get(&key) {
                    Some(v) => v.clone(),
                    None => format!("unknown pci vendor: 0x{key}"),
                }
            }
            PciKind::Device => {
                let key = go_hex(n, 4);
                match self.devices.get(&key) {
                    Some(v) => v.clone(),
                    None => format!("unknown pci device: 0x{key}"),
                }
            }
            PciKind::Class => {
                let key = go_hex(n, 2);
                match self.classes.get(&key) {
                    Some(v) => v.clone(),
                    None => format!("unknown pci class: 0x{key}"),
                }
            }
            PciKind::Subclass => {
                let (class, sub) = (go_hex(n >> 8, 2), go_hex(n & 0xff, 2));
                match self.subclasses.get(&class) {
                    None if !self.classes.contains_key(&class) => {
                        format!("unknown pci class: 0x{class}")
                    }
                    found => match found.and_then(|s| s.get(&sub)) {
                        Some(v) => v.clone(),
                        None => format!("unknown pci subclass: 0x{sub} (class 0x{class})"),
                    },
                }
            }
        };
        out.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

/// `VVVV  Name` → (`VVVV`, `Name`): an id of hex digits, then two spaces.
fn split_id(s: &str) -> Option<(&str, &str)> {
    let (id, name) = s.split_once("  ")?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some((id, name.trim()))
}

/// Go's `fmt.Sprintf("%0*x", width, n)` for a signed integer.
fn go_hex(n: i64, width: usize) -> String {
    let mut s = String::new();
    if n < 0 {
        let _ = write!(s, "-{:0w$x}", n.unsigned_abs(), w = width.saturating_sub(1));
    } else {
        let _ = write!(s, "{n:0width$x}");
    }
    s
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) const PCI_IDS: &str = "# comment\n\
0e11  Compaq Computer Corporation\n\
\t0001  PCI to EISA Bridge\n\
8086  Intel Corporation\n\
\t1237  440FX - 82441FX PMC [Natoma]\n\
\t\t1af4 1100  Qemu virtual machine\n\
C 01  Mass storage controller\n\
\t06  SATA controller\n\
\t\t01  AHCI 1.0\n\
C 02  Network controller\n\
\t00  Ethernet controller\n\
C 03  Display controller\n\
\t00  VGA compatible controller\n";

    fn dec(db: &PciDb, kind: PciKind, n: i64) -> String {
        let mut o = Vec::new();
        db.decode(kind, n.to_string().as_bytes(), &mut o).expect("decodes");
        String::from_utf8(o).expect("utf8")
    }

    #[test]
    fn lookups_and_quirks() {
        let db = PciDb::parse(PCI_IDS);
        assert_eq!(dec(&db, PciKind::Vendor, 0x8086), "Intel Corporation");
        assert_eq!(dec(&db, PciKind::Vendor, 0x0e11), "unknown pci vendor: 0xe11");
        assert_eq!(dec(&db, PciKind::Vendor, 5), "unknown pci vendor: 0x05");
        assert_eq!(dec(&db, PciKind::Device, 0x8086_1237), "440FX - 82441FX PMC [Natoma]");
        assert_eq!(dec(&db, PciKind::Device, 0x0e11_0001), "unknown pci device: 0xe110001");
        assert_eq!(dec(&db, PciKind::Device, 0x8086_9999), "unknown pci device: 0x80869999");
        assert_eq!(dec(&db, PciKind::Class, 2), "Network controller");
        assert_eq!(dec(&db, PciKind::Class, 0x0c), "unknown pci class: 0x0c");
        assert_eq!(dec(&db, PciKind::Subclass, 0x0106), "SATA controller");
        assert_eq!(dec(&db, PciKind::Subclass, 0x0200), "Ethernet controller");
        assert_eq!(dec(&db, PciKind::Subclass, 0x0107), "unknown pci subclass: 0x07 (class 0x01)");
        assert_eq!(dec(&db, PciKind::Subclass, 0x0c03), "unknown pci class: 0x0c");
        // The last class block gets no subclasses.
        assert_eq!(dec(&db, PciKind::Subclass, 0x0300), "unknown pci subclass: 0x00 (class 0x03)");
        assert!(db.decode(PciKind::Vendor, b"0x10", &mut Vec::new()).is_err());
        assert_eq!(go_hex(-1, 2), "-1");
    }
}
