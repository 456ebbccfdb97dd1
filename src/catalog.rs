//! Where configs come from: the built-ins embedded in the binary, and `--config-dir DIR` laid out
//! as ebpf_exporter does (`NAME.yaml` beside `NAME.bpf.o`). A directory config of the same name as
//! a built-in wins.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::{self, Config};
use crate::error::{config_err, usage_err};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/bpf_objects.rs"));
}

/// Where a config was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    BuiltIn,
    /// The YAML file in a `--config-dir`.
    Dir(PathBuf),
}

/// The compiled BPF object of a config.
#[derive(Debug, Clone)]
pub enum ObjectSource {
    Embedded(&'static [u8]),
    File(PathBuf),
}

impl ObjectSource {
    /// For messages: where the object is.
    pub fn describe(&self, name: &str) -> String {
        match self {
            ObjectSource::Embedded(_) => format!("built-in {name}.bpf.o"),
            ObjectSource::File(p) => p.display().to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub origin: Origin,
}

/// A config ready to load: parsed, validated, with its object.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub config: Config,
    pub object: ObjectSource,
    pub origin: Origin,
    /// The YAML text the config was parsed from (kept for `--save-raw`).
    pub yaml: String,
}

#[derive(Debug, Default)]
pub struct Catalog {
    entries: BTreeMap<String, Entry>,
    config_dir: Option<PathBuf>,
}

/// A line of `ebpfx list`.
#[derive(Debug, Clone)]
pub struct Listing {
    pub name: String,
    pub source: String,
    pub description: String,
}

impl Catalog {
    /// Built-ins plus the configs of `config_dir` (which must exist).
    pub fn new(config_dir: Option<&Path>) -> anyhow::Result<Catalog> {
        let mut entries = BTreeMap::new();
        for (name, _) in embedded::BUILTIN_CONFIGS {
            entries.insert(name.to_string(), Entry { name: name.to_string(), origin: Origin::BuiltIn });
        }
        if let Some(dir) = config_dir {
            let rd = std::fs::read_dir(dir).map_err(|e| usage_err(format!("--config-dir {}: {e}", dir.display())))?;
            for item in rd {
                let path = match item {
                    Ok(i) => i.path(),
                    Err(_) => continue,
                };
                let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
                if !is_yaml || !path.is_file() {
                    continue;
                }
                let name = config::config_name(&path);
                entries.insert(name.clone(), Entry { name, origin: Origin::Dir(path) });
            }
        }
        Ok(Catalog { entries, config_dir: config_dir.map(Path::to_path_buf) })
    }

    /// Config names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The embedded YAML of a built-in.
    pub fn builtin_yaml(name: &str) -> Option<&'static str> {
        embedded::BUILTIN_CONFIGS.iter().find(|(n, _)| *n == name).map(|(_, y)| *y)
    }

    /// Every config with its source and one-line description. Invalid directory configs are
    /// listed with the problem instead of failing the whole listing.
    pub fn list(&self) -> Vec<Listing> {
        self.entries
            .values()
            .map(|e| {
                let (source, description) = match &e.origin {
                    Origin::BuiltIn => {
                        let d = Catalog::builtin_yaml(&e.name)
                            .and_then(|y| Config::parse(&e.name, &format!("configs/{}.yaml", e.name), y).ok())
                            .map(|c| c.summary())
                            .unwrap_or_default();
                        ("built-in".to_string(), d)
                    }
                    Origin::Dir(p) => {
                        let d = match Config::from_file(p) {
                            Ok(c) => c.summary(),
                            Err(err) => format!("(invalid: {err:#})"),
                        };
                        (p.parent().map(|d| d.display().to_string()).unwrap_or_default(), d)
                    }
                };
                Listing { name: e.name.clone(), source, description }
            })
            .collect()
    }

    /// Parses and validates the config `name` and finds its object.
    pub fn resolve(&self, name: &str) -> anyhow::Result<Resolved> {
        let entry = self.entries.get(name).ok_or_else(|| {
            let hint = match &self.config_dir {
                Some(d) => format!(
                    "neither a built-in nor {}/{name}.yaml; `ebpfx list --config-dir {}` shows what is available",
                    d.display(),
                    d.display()
                ),
                None => "not a built-in; `ebpfx list` shows the built-ins, and `--config-dir DIR` adds DIR/NAME.yaml configs".to_string(),
            };
            let near = crate::grammar::hint(name, self.names());
            usage_err(format!("no config named {name:?}: {near}{hint}"))
        })?;
        match &entry.origin {
            Origin::BuiltIn => {
                let yaml = Catalog::builtin_yaml(name).unwrap_or_default();
                let config = Config::parse(name, &format!("configs/{name}.yaml (built-in)"), yaml)?;
                let bytes = embedded::BPF_OBJECTS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, b)| *b)
                    .ok_or_else(|| config_err(format!("built-in {name} has no BPF object")))?;
                Ok(Resolved {
                    config,
                    object: ObjectSource::Embedded(bytes),
                    origin: Origin::BuiltIn,
                    yaml: yaml.to_string(),
                })
            }
            Origin::Dir(path) => {
                let yaml = std::fs::read_to_string(path)
                    .map_err(|e| config_err(format!("cannot read config {}: {e}", path.display())))?;
                let config = Config::parse(name, &path.display().to_string(), &yaml)?;
                let obj = config::object_path(path);
                if !obj.is_file() {
                    return Err(config_err(format!(
                        "config {}: its BPF object {} is missing (compile NAME.bpf.c with clang -target bpf next to NAME.yaml)",
                        path.display(),
                        obj.display()
                    )));
                }
                Ok(Resolved { config, object: ObjectSource::File(obj), origin: entry.origin.clone(), yaml })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_have_objects() {
        let cat = Catalog::new(None).expect("catalog");
        let names: Vec<_> = cat.names().map(str::to_string).collect();
        assert!(names.contains(&"biolatency".to_string()) && names.contains(&"syscalls".to_string()));
        for n in names {
            let r = cat.resolve(&n).expect("built-in resolves");
            assert!(!r.config.metrics.is_empty(), "{n}");
            assert!(r.config.description.is_some(), "{n} needs a description");
        }
    }

    #[test]
    fn unknown_name_is_a_usage_error() {
        let cat = Catalog::new(None).expect("catalog");
        let err = cat.resolve("nope").expect_err("unknown");
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(format!("{err}").contains("no config named \"nope\""));
    }
}
