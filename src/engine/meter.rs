//! The meter: what each live session's runtime spent, read from the runtime's own records
//! ([`crate::agent::usage`]) every `METER_EVERY` and once more when the session ends, and
//! attributed to the agent, its rig, the bead it works and the session. How far each file was
//! read is in the store, so an engine restart neither re-reads nor loses a line. Then the
//! budgets: the day's spending against `[budget] daily_usd` (over it, slings are refused,
//! GUPP and auto-dispatch stop) and each working agent's bead against `per_bead_usd` (over
//! it, the agent is frozen and the overseer told).

use super::{Engine, Live};
use crate::agent::usage::{self, Format, Homes};
use crate::beads::{ev, Agent, GroupBy, Spender, Store};
use crate::town::costs::{self, money, Spent};
use crate::Result;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

/// How often live sessions' records are read.
pub const METER_EVERY: Duration = Duration::from_secs(2);

/// One record file of a session.
#[derive(Debug)]
struct Source {
    format: Format,
    /// None until found (the runtime writes it after its first answer).
    path: Option<PathBuf>,
    /// Where the last read stopped and what the reader kept (None until loaded from the store).
    at: Option<(u64, String)>,
}

/// A live session's record files and who spends what they hold.
#[derive(Debug)]
pub(crate) struct Sources {
    homes: Homes,
    list: Vec<Source>,
    who: Spender,
}

impl Sources {
    /// The records of a session of `program` (by its command's file name) running for `who`,
    /// with its environment `env`; `usage_file` is the town-format file every session may
    /// write.
    pub fn new(
        program: Option<&str>,
        env: &[(String, String)],
        usage_file: PathBuf,
        who: Spender,
    ) -> Sources {
        let mut list = vec![Source {
            format: Format::Town,
            path: Some(usage_file),
            at: None,
        }];
        if let Some(format) = program.and_then(Format::of_program) {
            list.push(Source {
                format,
                path: None,
                at: None,
            });
        }
        Sources {
            homes: Homes::of_env(env),
            list,
            who,
        }
    }
}

/// What the cockpit shows of the spending: today's (UTC) per agent and in all, each convoy's,
/// and the daily budget.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Costs {
    /// Today's spending of the whole town.
    pub day: Spent,
    /// Today's spending per agent.
    pub agents: BTreeMap<String, Spent>,
    /// Each convoy's spending, all time.
    pub convoys: BTreeMap<String, Spent>,
    pub daily_usd: Option<f64>,
    /// The day's budget is spent: no new work starts.
    pub over_daily: bool,
}

/// Reads what `live`'s records gained; the number of new records.
fn read_session(store: &Store, live: &mut Live, agent: Option<&Agent>) -> Result<usize> {
    let mut new = 0;
    let sources = &mut live.meter;
    if let Some(a) = agent {
        sources.who.conversation = a.conversation.clone();
    }
    for s in &mut sources.list {
        if s.path.is_none() {
            let id = sources.who.conversation.as_deref().unwrap_or("");
            s.path = usage::find(s.format, &sources.homes, id);
        }
        let Some(path) = &s.path else { continue };
        let key = path.display().to_string();
        let (offset, state) = match &s.at {
            Some(at) => at.clone(),
            None => store.usage_source(&key)?,
        };
        let size = std::fs::metadata(path).map(|m| m.len()).ok();
        if size.is_none() || size == Some(offset) {
            s.at = Some((offset, state));
            continue;
        }
        let batch = match usage::read_new(s.format, path, offset, &state) {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!("reading {key}: {e}");
                s.at = Some((offset, state));
                continue;
            }
        };
        if batch.offset != offset || !batch.records.is_empty() {
            new += store.usage_add(
                &key,
                batch.offset,
                &batch.state,
                &sources.who,
                &batch.records,
            )?;
        }
        s.at = Some((batch.offset, batch.state));
    }
    Ok(new)
}

impl Engine {
    /// Reads every live session's records (at most every `METER_EVERY`), then checks the
    /// budgets. True when the spending shown changed.
    pub(crate) fn meter(&mut self) -> Result<bool> {
        let agents = self.store.agents()?;
        let mut new = 0;
        for (name, live) in self.live.iter_mut() {
            let agent = agents.iter().find(|a| &a.name == name);
            new += read_session(&self.store, live, agent)?;
        }
        let day = costs::day_start_ns(self.store.now_ns());
        let changed = new > 0 || self.costs_day != day || self.costs_stale;
        if changed {
            self.costs_day = day;
            self.costs_stale = false;
            self.costs = self.compute_costs(day)?;
        }
        self.check_budgets()?;
        Ok(changed)
    }

    /// The last read of a session that ended (its final answer may have come just before).
    pub(super) fn meter_one(&mut self, live: &mut Live) -> Result<()> {
        let agent = self.store.agent(&live.meter.who.agent).ok();
        if read_session(&self.store, live, agent.as_ref())? > 0 {
            self.costs_stale = true;
        }
        Ok(())
    }

    fn compute_costs(&self, day: i64) -> Result<Costs> {
        let config = &self.town.config;
        let today = self.store.usage_by(GroupBy::Agent, Some(day))?;
        let convoys = self.store.usage_by(GroupBy::Convoy, None)?;
        let day = costs::total(config, &today);
        Ok(Costs {
            over_daily: day.reaches(config.budget.daily_usd),
            day,
            agents: costs::by_group(config, &today).into_iter().collect(),
            convoys: costs::by_group(config, &convoys)
                .into_iter()
                .filter(|(c, _)| !c.is_empty())
                .collect(),
            daily_usd: config.budget.daily_usd,
        })
    }

    /// The daily budget (an event once per day and limit when reached), then each working
    /// agent's bead: over its budget, the agent is frozen and the overseer told, once per
    /// bead and limit (a thaw by the overseer is respected).
    fn check_budgets(&mut self) -> Result<()> {
        let budget = self.town.config.budget.clone();
        if let (true, Some(limit)) = (self.costs.over_daily, budget.daily_usd) {
            let mark = (self.costs_day, limit.to_bits());
            if self.daily_reported != Some(mark) {
                self.daily_reported = Some(mark);
                let text = format!(
                    "the daily budget is spent: {} of {} today (UTC); slings are refused and GUPP \
                     stops nudging until the next UTC day or a higher [budget] daily_usd",
                    money(self.costs.day.usd_priced),
                    money(limit)
                );
                self.store
                    .record_event("town", ev::BUDGET, "meter", &text)?;
            }
        }
        let Some(limit) = budget.per_bead_usd else {
            return Ok(());
        };
        let working: Vec<(String, String)> = self
            .live
            .iter()
            .filter_map(|(n, l)| l.bead.clone().map(|b| (n.clone(), b)))
            .collect();
        for (name, bead) in working {
            let mark = (bead.clone(), limit.to_bits());
            if self.bead_reported.contains(&mark) {
                continue;
            }
            let spent = costs::total(&self.town.config, &self.store.usage_of_bead(&bead)?);
            if !spent.reaches(Some(limit)) {
                continue;
            }
            self.bead_reported.insert(mark);
            let text = format!(
                "{bead} has cost {} of its {} budget: {name} is frozen (thaw it with \
                 `gastown-tui thaw {name}` or raise [budget] per_bead_usd)",
                money(spent.usd_priced),
                money(limit)
            );
            self.store.record_event(&bead, ev::BUDGET, "meter", &text)?;
            self.store
                .agent_set_frozen(&name, true, "over its bead's budget", "meter")?;
            self.escalate(&name, &format!("{name} is over {bead}'s budget"), &text)?;
            self.apply_frozen()?;
        }
        Ok(())
    }
}

/// Budgets reported already: (bead, limit) pairs.
pub(crate) type Reported = HashSet<(String, u64)>;
