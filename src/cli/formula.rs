//! `formula list|show|pour`.

use super::output::{bead_value, line, table, Out};
use super::Ctx;
use crate::formula::{parse_var, pour, Catalog, Entry, Formula, Molecule};
use crate::{Error, Result};
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Debug, Subcommand)]
pub enum FormulaCmd {
    /// Every formula: the shipped ones and the town's own (<town>/formulas/*.formula.toml).
    List,
    /// One formula: its variables and its steps.
    Show { name: String },
    /// Pour a formula into a molecule: an epic with one bead per step, ready in step order.
    Pour {
        name: String,
        /// A variable's value (repeatable): --var version=1.4.0
        #[arg(long = "var", value_name = "K=V", value_parser = parse_var)]
        vars: Vec<(String, String)>,
        /// The rig the work is for (a convoy formula auto-dispatches its steps there).
        #[arg(long, value_name = "RIG")]
        rig: Option<String>,
    },
}

pub fn run(ctx: &Ctx, cmd: FormulaCmd) -> Result<()> {
    let catalog = Catalog::for_town(&ctx.town)?;
    match cmd {
        FormulaCmd::List => list(&catalog, ctx.out),
        FormulaCmd::Show { name } => {
            let f = catalog.get(&name)?;
            ctx.out.one(&f, || show(&f))
        }
        FormulaCmd::Pour { name, vars, rig } => {
            let f = catalog.get(&name)?;
            if let Some(r) = &rig {
                if !ctx.town.config.rigs.contains_key(r) {
                    return Err(Error::bad(format!(
                        "--rig: no rig '{r}' in {} (add it with: gastown-tui rig add {r} URL)",
                        ctx.town.config_path().display()
                    )));
                }
            }
            let m = pour(&ctx.store, &f, &vars, rig.as_deref(), &ctx.actor)?;
            ctx.out.one(&molecule_value(&m), || print_molecule(&m))
        }
    }
}

fn source_label(e: &Entry) -> String {
    if e.overrides_shipped {
        format!("{} (overrides shipped)", e.source.as_str())
    } else {
        e.source.as_str().to_string()
    }
}

/// Lists every formula that parses; the broken ones are reported after the listing, and
/// make the command fail (exit 2) so a typo in a town formula is never silent.
fn list(catalog: &Catalog, out: Out) -> Result<()> {
    let mut good: Vec<(&Entry, Formula)> = Vec::new();
    let mut broken: Vec<String> = Vec::new();
    for (entry, parsed) in catalog.parse_all() {
        match parsed {
            Ok(f) => good.push((entry, f)),
            Err(e) => broken.push(e.to_string()),
        }
    }
    let items: Vec<Value> = good
        .iter()
        .map(|(e, f)| {
            json!({
                "name": f.name,
                "version": f.version,
                "type": f.kind,
                "source": f.source,
                "overrides_shipped": e.overrides_shipped,
                "path": f.path,
                "description": f.description,
                "vars": f.vars.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
                "steps": f.steps.len(),
            })
        })
        .collect();
    // With only broken formulas, the errors below say it all.
    out.list(
        &items,
        good.is_empty() && broken.is_empty(),
        "No formulas.",
        || {
            if good.is_empty() {
                return Vec::new();
            }
            let mut rows = vec![vec![
                "NAME".to_string(),
                "VERSION".into(),
                "TYPE".into(),
                "STEPS".into(),
                "SOURCE".into(),
                "DESCRIPTION".into(),
            ]];
            for (e, f) in &good {
                rows.push(vec![
                    f.name.clone(),
                    f.version.to_string(),
                    f.kind.as_str().to_string(),
                    f.steps.len().to_string(),
                    source_label(e),
                    f.summary().to_string(),
                ]);
            }
            table(&rows)
        },
    )?;
    if broken.is_empty() {
        Ok(())
    } else {
        Err(Error::BadInput(broken.join("\nerror: ")))
    }
}

fn show(f: &Formula) -> Result<()> {
    line(&format!(
        "{} v{}  ({}, {}: {})",
        f.name,
        f.version,
        f.kind.as_str(),
        f.source.as_str(),
        f.path.display()
    ))?;
    for l in f.description.lines() {
        line(&format!("  {l}"))?;
    }
    line("")?;
    if f.vars.is_empty() {
        line("Variables: none")?;
    } else {
        line("Variables:")?;
        let mut rows = Vec::new();
        for v in &f.vars {
            let how = match (&v.default, v.required) {
                (_, true) => "required".to_string(),
                (Some(d), false) => format!("default {d:?}"),
                (None, false) => "optional".to_string(),
            };
            rows.push(vec![
                format!("  {}", v.name),
                how,
                crate::formula::first_line(&v.description).to_string(),
            ]);
        }
        for l in table(&rows) {
            line(&l)?;
        }
    }
    line("")?;
    line("Steps:")?;
    let mut rows = Vec::new();
    for (i, s) in f.steps.iter().enumerate() {
        let needs = if s.needs.is_empty() {
            String::new()
        } else {
            format!("needs {}", s.needs.join(", "))
        };
        rows.push(vec![
            format!("  {}.", i + 1),
            s.id.clone(),
            s.title.clone(),
            needs,
        ]);
    }
    for l in table(&rows) {
        line(&l)?;
    }
    Ok(())
}

/// `pour --json`: the molecule with its epic's id on top, the epic and every step as beads.
fn molecule_value(m: &Molecule) -> Value {
    let steps: Vec<Value> = m
        .steps
        .iter()
        .map(|s| {
            let mut v = bead_value(&s.bead);
            if let Value::Object(o) = &mut v {
                o.insert("step".into(), s.step.clone().into());
            }
            v
        })
        .collect();
    json!({
        "id": m.epic.id,
        "formula": m.formula,
        "version": m.version,
        "vars": m.vars,
        "rig": m.rig,
        "epic": bead_value(&m.epic),
        "steps": steps,
        "convoy": m.convoy,
    })
}

fn print_molecule(m: &Molecule) -> Result<()> {
    line(&format!(
        "Poured {} v{} as molecule {}: {}",
        m.formula, m.version, m.epic.id, m.epic.title
    ))?;
    let mut rows = Vec::new();
    for s in &m.steps {
        let needs: Vec<&str> = s
            .bead
            .dependencies
            .iter()
            .filter(|d| d.dep_type == crate::beads::dep::BLOCKS)
            .filter_map(|d| m.steps.iter().find(|o| o.bead.id == d.depends_on_id))
            .map(|o| o.step.as_str())
            .collect();
        let mark = if s.bead.blocked {
            format!("(needs {})", needs.join(", "))
        } else {
            "ready".to_string()
        };
        rows.push(vec![
            format!("  {}", s.bead.id),
            s.step.clone(),
            s.bead.title.clone(),
            mark,
        ]);
    }
    for l in table(&rows) {
        line(&l)?;
    }
    if let Some(c) = &m.convoy {
        match &c.auto_dispatch {
            Some(rig) => line(&format!(
                "Convoy {} tracks the {} steps; the Deacon slings ready ones to rig {rig}.",
                c.id, c.total
            ))?,
            None => line(&format!(
                "Convoy {} tracks the {} steps (pour with --rig RIG to auto-dispatch them).",
                c.id, c.total
            ))?,
        }
    }
    Ok(())
}
