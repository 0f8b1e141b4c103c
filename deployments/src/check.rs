//! Offline check of a whole configuration directory (`esb validate`, `uterm validate --dir`):
//! the root config, every unit on its own, and the units together (path conflicts).

use crate::diag::Diagnostic;
use crate::parse::ParsedUnit;
use crate::root::RootConfig;
use crate::source::UnitSources;
use crate::validate::{check_unit, validate_set};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Debug, Serialize)]
pub struct DirReport {
    pub root_errors: Vec<Diagnostic>,
    pub units: Vec<UnitReport>,
}

#[derive(Debug, Serialize)]
pub struct UnitReport {
    pub name: String,
    /// Content hash, when the files could be read.
    pub hash: Option<String>,
    pub errors: Vec<Diagnostic>,
}

impl DirReport {
    pub fn ok(&self) -> bool {
        self.root_errors.is_empty() && self.units.iter().all(|u| u.errors.is_empty())
    }

    /// One ✓/✗ line per unit followed by its errors.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for e in &self.root_errors {
            let _ = writeln!(out, "✗ root config\n    {e}");
        }
        for u in &self.units {
            if u.errors.is_empty() {
                let hash = u.hash.as_deref().map(|h| &h[..12]).unwrap_or("");
                let _ = writeln!(out, "✓ {} ({hash})", u.name);
            } else {
                let n = u.errors.len();
                let _ = writeln!(
                    out,
                    "✗ {} ({n} error{})",
                    u.name,
                    if n == 1 { "" } else { "s" }
                );
                for e in &u.errors {
                    let _ = writeln!(out, "    {e}");
                }
            }
        }
        out
    }
}

/// Checks `conf_dir/esb.toml` and every unit directory under its deployments directory.
pub fn check_dir(conf_dir: &Path) -> DirReport {
    let root = match RootConfig::load(conf_dir) {
        Ok(r) => r,
        Err(errors) => {
            return DirReport {
                root_errors: errors,
                units: vec![],
            }
        }
    };
    let dir = root.deployments_dir();
    let mut names: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !crate::source::is_ignored_file(n))
            .collect(),
        Err(e) => {
            return DirReport {
                root_errors: vec![Diagnostic::new(
                    dir.display().to_string(),
                    1,
                    1,
                    format!("cannot read deployments directory: {e}"),
                )],
                units: vec![],
            }
        }
    };
    names.sort();
    check_units(
        &root,
        names
            .iter()
            .map(|n| dir.join(n))
            .collect::<Vec<_>>()
            .iter()
            .map(|p| p.as_path()),
    )
}

/// Checks the given unit directories against `root`, alone and together.
pub fn check_units<'a>(root: &RootConfig, dirs: impl Iterator<Item = &'a Path>) -> DirReport {
    let mut units = Vec::new();
    let mut valid: Vec<ParsedUnit> = Vec::new();
    for dir in dirs {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match UnitSources::read_dir(dir) {
            Err(e) => units.push(UnitReport {
                name,
                hash: None,
                errors: vec![Diagnostic::new(
                    dir.display().to_string(),
                    1,
                    1,
                    e.to_string(),
                )],
            }),
            Ok(sources) => {
                let hash = Some(sources.content_hash());
                match check_unit(root, &sources) {
                    Ok(p) => {
                        valid.push(p);
                        units.push(UnitReport {
                            name,
                            hash,
                            errors: vec![],
                        });
                    }
                    Err(errors) => units.push(UnitReport { name, hash, errors }),
                }
            }
        }
    }
    let refs: Vec<&ParsedUnit> = valid.iter().collect();
    for (name, errors) in validate_set(root, &refs) {
        if let Some(u) = units.iter_mut().find(|u| u.name == name) {
            for e in errors {
                if !u.errors.contains(&e) {
                    u.errors.push(e);
                }
            }
        }
    }
    DirReport {
        root_errors: vec![],
        units,
    }
}
