//! Pouring a molecule: an epic, its steps as children, `blocks` dependencies between steps and
//! maybe a convoy tracking them, written as one transaction. The formula module plans what to
//! write (titles, metadata, the order of steps); the store writes it here.

use super::model::{dep, kind};
use super::{NewBead, Store};
use crate::{Error, Result};
use serde_json::{Map, Value};

/// What one pour writes.
#[derive(Debug, Clone, Default)]
pub struct MoleculePlan {
    pub epic: NewBead,
    /// The steps, each created as the next child `<epic>.<n>` of the epic.
    pub steps: Vec<NewBead>,
    /// `(i, j)`: step `i` waits for step `j` (indices into `steps`).
    pub needs: Vec<(usize, usize)>,
    /// A convoy to create tracking every step (its type is set to `convoy`, and `molecule` in
    /// its metadata to the epic's id).
    pub convoy: Option<NewBead>,
    /// The event recorded on the epic: its kind and detail.
    pub event: (String, String),
}

/// The ids a pour made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poured {
    pub epic: String,
    pub steps: Vec<String>,
    pub convoy: Option<String>,
}

impl Store {
    /// Writes `plan` all at once: every bead, dependency and the event, or nothing.
    pub fn pour(&self, plan: &MoleculePlan, actor: &str) -> Result<Poured> {
        if let Some(&(i, j)) = plan
            .needs
            .iter()
            .find(|(i, j)| *i >= plan.steps.len() || *j >= plan.steps.len() || i == j)
        {
            return Err(Error::bad(format!(
                "step {i} cannot wait for step {j} of {} steps",
                plan.steps.len()
            )));
        }
        let prefix = self.prefix();
        self.write(|tx| {
            let epic = tx.create_bead(prefix, &plan.epic, actor)?;
            let mut steps = Vec::with_capacity(plan.steps.len());
            for nb in &plan.steps {
                let nb = NewBead {
                    parent: Some(epic.clone()),
                    ..nb.clone()
                };
                steps.push(tx.create_bead(prefix, &nb, actor)?);
            }
            for &(i, j) in &plan.needs {
                tx.add_dep(&steps[i], &steps[j], dep::BLOCKS, actor)?;
            }
            let convoy = match &plan.convoy {
                Some(nb) => {
                    let mut meta = match &nb.metadata {
                        Some(Value::Object(m)) => m.clone(),
                        _ => Map::new(),
                    };
                    meta.insert("molecule".into(), epic.clone().into());
                    let nb = NewBead {
                        issue_type: Some(kind::CONVOY.to_string()),
                        metadata: Some(Value::Object(meta)),
                        ..nb.clone()
                    };
                    let id = tx.create_bead(prefix, &nb, actor)?;
                    for s in &steps {
                        tx.add_dep(&id, s, dep::TRACKS, actor)?;
                    }
                    Some(id)
                }
                None => None,
            };
            let (kind, detail) = &plan.event;
            tx.simple_event(&epic, kind, actor, Some(detail))?;
            Ok(Poured {
                epic,
                steps,
                convoy,
            })
        })
    }
}
