//! Formulas and molecules.
//!
//! A formula is a workflow written in TOML (`<name>.formula.toml`): variables and steps, each
//! step naming the steps it `needs`. Pouring a formula turns it into a molecule in the store:
//! an epic bead with one child bead per step (`<epic>.<n>`, in step order) and a `blocks`
//! dependency for every `needs`, so `bead ready` offers the steps in the formula's order.
//! A formula of `type = "convoy"` also gets a convoy tracking its steps, auto-dispatched to a
//! rig when one is given.
//!
//! Formulas come from two places: the ones shipped inside the binary (`formulas/` in the
//! source tree, embedded at build time) and the town's own `<town>/formulas/*.formula.toml`.
//! A town formula with the name of a shipped one overrides it.
//!
//! The file format, checked strictly (unknown keys are errors):
//!
//! ```toml
//! formula = "example"              # must equal the file name without .formula.toml
//! description = "What it is for; {{topic}} is substituted"
//! version = 1                      # integer >= 1
//! type = "workflow"                # or "convoy"; default workflow
//!
//! [vars.topic]
//! description = "What the note is about"
//! default = "the README"           # optional
//! required = false                 # default false; a required variable has no default
//!
//! [[steps]]
//! id = "draft"                     # unique; lowercase letters, digits, '-' and '_'
//! title = "Draft a note about {{topic}}"
//! description = "..."              # optional
//! needs = []                       # ids of earlier or later steps; no cycles
//! acceptance = "..."               # optional
//! ```
//!
//! `{{name}}` placeholders are substituted in the formula's description and in each step's
//! title, description and acceptance text; one naming no declared variable is an error. Every
//! problem in a file is reported as `<file>:<line>: <dotted key>: <what is wrong>`.

mod catalog;
mod parse;
mod pour;
mod shipped;

#[cfg(test)]
mod tests;

use serde::Serialize;
use std::path::PathBuf;

pub use catalog::{Catalog, Entry};
pub use pour::{parse_var, pour, Molecule, PouredStep};
pub use shipped::SHIPPED;

/// The suffix of every formula file name.
pub const FILE_SUFFIX: &str = ".formula.toml";

/// The event kind recorded on a molecule's epic when it is poured.
pub const POURED: &str = "poured";

/// What pouring a formula makes besides the molecule itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormulaType {
    /// Just the molecule: an epic and its steps.
    #[default]
    Workflow,
    /// The molecule plus a convoy tracking its steps (auto-dispatched with `--rig`).
    Convoy,
}

impl FormulaType {
    pub fn as_str(self) -> &'static str {
        match self {
            FormulaType::Workflow => "workflow",
            FormulaType::Convoy => "convoy",
        }
    }
}

/// Where a formula was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Embedded in the binary.
    Shipped,
    /// `<town>/formulas/`.
    Town,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Shipped => "shipped",
            Source::Town => "town",
        }
    }
}

/// A declared variable, substituted as `{{name}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Var {
    pub name: String,
    pub description: String,
    pub default: Option<String>,
    pub required: bool,
}

/// One step: it becomes one child bead of the molecule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub id: String,
    pub title: String,
    pub description: String,
    /// Ids of the steps that must be closed before this one is ready.
    pub needs: Vec<String>,
    pub acceptance: String,
}

/// A parsed and validated formula. Texts still hold their `{{name}}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Formula {
    pub name: String,
    pub description: String,
    pub version: u32,
    #[serde(rename = "type")]
    pub kind: FormulaType,
    pub source: Source,
    /// The file it was read from (for a shipped formula: its path in the source tree).
    pub path: PathBuf,
    /// In file order.
    pub vars: Vec<Var>,
    /// In file order: the molecule's children are numbered in this order.
    pub steps: Vec<Step>,
}

impl Formula {
    /// Parses and validates `src`, the text of `file` (whose name gives the expected
    /// formula name). Errors are `BadInput` naming file, line and key.
    pub fn parse(src: &str, file: &std::path::Path, source: Source) -> crate::Result<Formula> {
        parse::parse(src, file, source)
    }

    /// The variable called `name`, if declared.
    pub fn var(&self, name: &str) -> Option<&Var> {
        self.vars.iter().find(|v| v.name == name)
    }

    /// The step called `id`, if any.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The first non-empty line of the description (placeholders kept).
    pub fn summary(&self) -> &str {
        first_line(&self.description)
    }
}

/// The first non-empty line of `text`, trimmed.
pub(crate) fn first_line(text: &str) -> &str {
    crate::town::diag::first_line(text)
}
