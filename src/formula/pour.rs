//! Pouring: a formula and its variables become a molecule in the store, in one write.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Map, Value};

use super::parse::{substitute, valid_var_name};
use super::{first_line, Formula, FormulaType, Step, POURED};
use crate::beads::{kind, Bead, Convoy, MoleculePlan, NewBead, Poured, Store, AUTO_DISPATCH};
use crate::{Error, Result};

/// Longest bead title the store accepts.
const MAX_TITLE: usize = 500;
/// The molecule's own title is cut to this many characters of the description's first line.
const EPIC_SUMMARY_MAX: usize = 200;

/// One step as poured: the formula's step id and its bead.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PouredStep {
    pub step: String,
    pub bead: Bead,
}

/// What `pour` made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Molecule {
    pub formula: String,
    pub version: u32,
    /// Every variable's value, defaults included.
    pub vars: BTreeMap<String, String>,
    pub rig: Option<String>,
    /// The epic bead holding the molecule together.
    pub epic: Bead,
    /// One bead per step, in the formula's order (`<epic>.1`, `<epic>.2`, ...).
    pub steps: Vec<PouredStep>,
    /// For a `type = "convoy"` formula: the convoy tracking the steps.
    pub convoy: Option<Convoy>,
}

/// Parses one `--var K=V` (for clap): the value may be empty or hold `=`; the name must be a
/// variable name.
pub fn parse_var(s: &str) -> std::result::Result<(String, String), String> {
    let Some((k, v)) = s.split_once('=') else {
        return Err(format!("'{s}' is not K=V (e.g. --var version=1.2.0)"));
    };
    let k = k.trim();
    if !valid_var_name(k) {
        return Err(format!(
            "'{k}' in '{s}' is not a variable name (a letter or '_', then letters, digits, \
             '_' or '-')"
        ));
    }
    Ok((k.to_string(), v.to_string()))
}

impl Formula {
    /// The value of every variable: the given ones, then defaults, then "" for optional
    /// variables without a default. Refuses unknown names, names given twice, and missing
    /// (or empty) required variables, naming the formula.
    pub fn resolve_vars(&self, given: &[(String, String)]) -> Result<BTreeMap<String, String>> {
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in given {
            if self.var(k).is_none() {
                let declared: Vec<&str> = self.vars.iter().map(|v| v.name.as_str()).collect();
                let known = if declared.is_empty() {
                    "it declares none".to_string()
                } else {
                    format!("its variables: {}", declared.join(", "))
                };
                return Err(Error::bad(format!(
                    "--var {k}: formula '{}' has no variable '{k}' ({known})",
                    self.name
                )));
            }
            if values.insert(k.clone(), v.clone()).is_some() {
                return Err(Error::bad(format!("--var {k} is given more than once")));
            }
        }
        let mut missing = Vec::new();
        for var in &self.vars {
            match values.get(&var.name) {
                Some(v) if var.required && v.trim().is_empty() => missing.push(var),
                Some(_) => {}
                None if var.required => missing.push(var),
                None => {
                    values.insert(var.name.clone(), var.default.clone().unwrap_or_default());
                }
            }
        }
        if !missing.is_empty() {
            let what: Vec<String> = missing
                .iter()
                .map(|v| {
                    if v.description.is_empty() {
                        format!("--var {}=VALUE", v.name)
                    } else {
                        format!("--var {}=VALUE ({})", v.name, first_line(&v.description))
                    }
                })
                .collect();
            let noun = if missing.len() == 1 {
                "variable"
            } else {
                "variables"
            };
            let names: Vec<&str> = missing.iter().map(|v| v.name.as_str()).collect();
            return Err(Error::bad(format!(
                "formula '{}' needs the required {noun} {}: give {}",
                self.name,
                names.join(", "),
                what.join(", ")
            )));
        }
        Ok(values)
    }
}

/// The molecule's title: `<formula>: <first line of the description>`, cut to a sane length.
fn epic_title(name: &str, description: &str) -> String {
    let summary = first_line(description);
    if summary.is_empty() {
        return name.to_string();
    }
    let mut cut: String = summary.chars().take(EPIC_SUMMARY_MAX).collect();
    if summary.chars().count() > EPIC_SUMMARY_MAX {
        cut.push('…');
    }
    format!("{name}: {cut}")
}

/// Pours `formula` with the variables `given` (`--var K=V`) into `store`: an epic (type epic,
/// label `formula:<name>`, metadata `{formula, version, vars, rig?}`), one child bead per
/// step (`<epic>.<n>` in step order, label `step:<id>`), a `blocks` dependency from each step
/// to each step it needs, and for a convoy formula a convoy tracking the steps that
/// auto-dispatches to `rig` when one is given. Everything is checked first and written in one
/// transaction: a failure leaves nothing behind. `rig` is recorded as given (the caller checks
/// it names a rig of the town).
pub fn pour(
    store: &Store,
    formula: &Formula,
    given: &[(String, String)],
    rig: Option<&str>,
    actor: &str,
) -> Result<Molecule> {
    let vars = formula.resolve_vars(given)?;
    if let Some(r) = rig {
        if r.trim().is_empty() {
            return Err(Error::bad("--rig: the rig name is empty"));
        }
    }
    let plan = plan(formula, &vars, rig)?;
    let poured = store.pour(&plan, actor)?;
    read_back(store, formula, vars, rig, poured)
}

/// What pouring `formula` with `vars` will create, every text rendered and checked.
fn plan(
    formula: &Formula,
    vars: &BTreeMap<String, String>,
    rig: Option<&str>,
) -> Result<MoleculePlan> {
    let description = substitute(&formula.description, vars);
    let title = epic_title(&formula.name, &description);
    let epic = epic_bead(formula, vars, rig, title.clone(), description);
    let steps = formula
        .steps
        .iter()
        .map(|step| step_bead(formula, step, vars))
        .collect::<Result<Vec<NewBead>>>()?;
    let needs = step_needs(formula)?;
    let convoy = (formula.kind == FormulaType::Convoy).then(|| convoy_bead(title, rig));
    let detail = format!(
        "{} v{} ({} steps)",
        formula.name,
        formula.version,
        formula.steps.len()
    );
    Ok(MoleculePlan {
        epic,
        steps,
        needs,
        convoy,
        event: (POURED.to_string(), detail),
    })
}

/// The epic bead: type epic, label `formula:<name>`, metadata `{formula, version, vars, rig?}`.
fn epic_bead(
    formula: &Formula,
    vars: &BTreeMap<String, String>,
    rig: Option<&str>,
    title: String,
    description: String,
) -> NewBead {
    let mut meta = Map::new();
    meta.insert("formula".into(), formula.name.clone().into());
    meta.insert("version".into(), formula.version.into());
    meta.insert(
        "vars".into(),
        Value::Object(
            vars.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        ),
    );
    if let Some(r) = rig {
        meta.insert("rig".into(), r.into());
    }
    NewBead {
        title,
        description,
        issue_type: Some(kind::EPIC.to_string()),
        labels: vec![format!("formula:{}", formula.name)],
        metadata: Some(Value::Object(meta)),
        ..Default::default()
    }
}

/// One step's bead, its texts rendered; refuses a title that is empty or too long once the
/// variables are substituted.
fn step_bead(formula: &Formula, step: &Step, vars: &BTreeMap<String, String>) -> Result<NewBead> {
    let step_title = substitute(&step.title, vars);
    let n = step_title.chars().count();
    if step_title.trim().is_empty() {
        return Err(Error::bad(format!(
            "formula '{}': step '{}': the title is empty once the variables are substituted",
            formula.name, step.id
        )));
    }
    if n > MAX_TITLE {
        return Err(Error::bad(format!(
            "formula '{}': step '{}': the title is {n} characters long once the variables \
             are substituted; at most {MAX_TITLE} are allowed",
            formula.name, step.id
        )));
    }
    let mut step_meta = Map::new();
    step_meta.insert("formula".into(), formula.name.clone().into());
    step_meta.insert("step".into(), step.id.clone().into());
    Ok(NewBead {
        title: step_title,
        description: substitute(&step.description, vars),
        acceptance_criteria: substitute(&step.acceptance, vars),
        labels: vec![format!("step:{}", step.id)],
        metadata: Some(Value::Object(step_meta)),
        ..Default::default()
    })
}

/// The steps' needs as `(i, j)` pairs of step indexes (step `i` waits for step `j`).
fn step_needs(formula: &Formula) -> Result<Vec<(usize, usize)>> {
    let index: HashMap<&str, usize> = formula
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut needs = Vec::new();
    for (i, step) in formula.steps.iter().enumerate() {
        for need in &step.needs {
            let Some(&j) = index.get(need.as_str()) else {
                return Err(Error::bad(format!(
                    "formula '{}': step '{}' needs '{need}', which is no step",
                    formula.name, step.id
                )));
            };
            needs.push((i, j));
        }
    }
    Ok(needs)
}

/// The convoy of a convoy formula, titled like the epic, auto-dispatching to `rig` if given.
fn convoy_bead(title: String, rig: Option<&str>) -> NewBead {
    let mut meta = Map::new();
    if let Some(r) = rig {
        meta.insert(AUTO_DISPATCH.into(), r.into());
    }
    NewBead {
        title,
        metadata: Some(Value::Object(meta)),
        ..Default::default()
    }
}

/// The molecule as written: the epic, the steps' beads and the convoy read back from `store`.
fn read_back(
    store: &Store,
    formula: &Formula,
    vars: BTreeMap<String, String>,
    rig: Option<&str>,
    poured: Poured,
) -> Result<Molecule> {
    let Poured {
        epic: epic_id,
        steps: step_ids,
        convoy: convoy_id,
    } = poured;
    let epic = store.get(&epic_id)?;
    let mut steps = Vec::with_capacity(step_ids.len());
    for (step, id) in formula.steps.iter().zip(&step_ids) {
        steps.push(PouredStep {
            step: step.id.clone(),
            bead: store.get(id)?,
        });
    }
    let convoy = match convoy_id {
        Some(id) => Some(store.convoy(&id)?),
        None => None,
    };
    Ok(Molecule {
        formula: formula.name.clone(),
        version: formula.version,
        vars,
        rig: rig.map(str::to_string),
        epic,
        steps,
        convoy,
    })
}
