//! The formulas a town can pour: the shipped ones, overridden by name by the town's own.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::parse::stem_of;
use super::{Formula, Source, FILE_SUFFIX, SHIPPED};
use crate::town::Town;
use crate::{Error, Result};

/// One formula file, not yet parsed.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The name the file stands for (its file name without `.formula.toml`).
    pub name: String,
    pub source: Source,
    pub path: PathBuf,
    /// A town formula with the name of a shipped one.
    pub overrides_shipped: bool,
    bytes: Cow<'static, [u8]>,
}

impl Entry {
    /// Parses and validates the file.
    pub fn parse(&self) -> Result<Formula> {
        let src = std::str::from_utf8(&self.bytes).map_err(|e| {
            let valid = &self.bytes[..e.valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            Error::bad(format!(
                "{}:{line}: not valid UTF-8 text",
                self.path.display()
            ))
        })?;
        Formula::parse(src, &self.path, self.source)
    }
}

/// Every formula available, by name.
#[derive(Debug, Clone)]
pub struct Catalog {
    entries: BTreeMap<String, Entry>,
}

impl Catalog {
    /// Only the formulas embedded in the binary.
    pub fn shipped() -> Catalog {
        let entries = SHIPPED
            .iter()
            .map(|(name, text)| {
                let entry = Entry {
                    name: name.to_string(),
                    source: Source::Shipped,
                    path: Path::new("formulas").join(format!("{name}{FILE_SUFFIX}")),
                    overrides_shipped: false,
                    bytes: Cow::Borrowed(text.as_bytes()),
                };
                (name.to_string(), entry)
            })
            .collect();
        Catalog { entries }
    }

    /// The shipped formulas plus every `*.formula.toml` directly in `dir` (a missing
    /// directory holds none). A file in `dir` overrides a shipped formula of the same name.
    pub fn load(dir: &Path) -> Result<Catalog> {
        let mut catalog = Catalog::shipped();
        let read = match std::fs::read_dir(dir) {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(catalog),
            Err(e) => return Err(Error::io("read the formulas directory", dir, e)),
        };
        for item in read {
            let item = item.map_err(|e| Error::io("read the formulas directory", dir, e))?;
            let path = item.path();
            let Some(name) = stem_of(&path).map(str::to_string) else {
                continue;
            };
            if !path.is_file() {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
            let overrides_shipped = catalog
                .entries
                .get(&name)
                .is_some_and(|e| e.source == Source::Shipped);
            catalog.entries.insert(
                name.clone(),
                Entry {
                    name,
                    source: Source::Town,
                    path,
                    overrides_shipped,
                    bytes: Cow::Owned(bytes),
                },
            );
        }
        Ok(catalog)
    }

    /// The town's catalog: shipped formulas and `<town>/formulas/`.
    pub fn for_town(town: &Town) -> Result<Catalog> {
        Catalog::load(&town.formulas_dir())
    }

    /// Every entry, by name.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// The names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.entries.keys().map(String::as_str).collect()
    }

    /// The entry called `name`.
    pub fn entry(&self, name: &str) -> Result<&Entry> {
        self.entries.get(name).ok_or_else(|| {
            Error::bad(format!(
                "no formula '{name}' (available: {}; add your own as \
                 <town>/formulas/{name}{FILE_SUFFIX})",
                self.names().join(", ")
            ))
        })
    }

    /// The formula called `name`, parsed and validated.
    pub fn get(&self, name: &str) -> Result<Formula> {
        self.entry(name)?.parse()
    }

    /// Every formula parsed, in name order; a broken file gives its error in its place.
    pub fn parse_all(&self) -> Vec<(&Entry, Result<Formula>)> {
        self.entries.values().map(|e| (e, e.parse())).collect()
    }
}
