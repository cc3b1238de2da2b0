//! `costs` (what the agents spent, from their runtimes' own records) and `freeze` / `thaw`
//! (the emergency stop).

use super::output::{json, line, table};
use super::Ctx;
use crate::beads::{agent_state, GroupBy};
use crate::town::costs::{self, money};
use crate::{Error, Result};
use clap::Args;
use serde_json::{json as j, Value};

#[derive(Debug, Args)]
pub struct CostsArgs {
    /// Group by agent, rig, convoy, bead or model.
    #[arg(long, value_enum, default_value = "agent")]
    pub by: GroupBy,
    /// Only what was spent since WHEN: today (the UTC day), a duration ago (2h, 7d), a date
    /// (2026-12-01, UTC) or an RFC 3339 time.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
}

/// `--since WHEN` as unix nanoseconds.
pub fn parse_since(when: &str, now_ns: i64) -> Result<i64> {
    let w = when.trim();
    if w == "today" {
        return Ok(costs::day_start_ns(now_ns));
    }
    if let Ok(d) = humantime::parse_duration(w) {
        return Ok(now_ns.saturating_sub(d.as_nanos().min(i64::MAX as u128) as i64));
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(w, "%Y-%m-%d") {
        if let Some(t) = date.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc().timestamp_nanos_opt().unwrap_or(i64::MIN));
        }
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(w) {
        return Ok(t.timestamp_nanos_opt().unwrap_or(i64::MIN));
    }
    Err(Error::bad(format!(
        "--since: {when:?} is not a time (today, a duration such as 2h or 7d, a date such as \
         2026-12-01, or an RFC 3339 time)"
    )))
}

pub fn costs(ctx: &Ctx, a: CostsArgs) -> Result<()> {
    let since = a
        .since
        .as_deref()
        .map(|w| parse_since(w, ctx.store.now_ns()))
        .transpose()?;
    let rows = ctx.store.usage_by(a.by, since)?;
    let groups = costs::by_group(&ctx.town.config, &rows);
    let key = a.by.key();
    if ctx.out.json {
        let out: Vec<Value> = groups
            .iter()
            .map(|(g, s)| {
                j!({
                    key: (!g.is_empty()).then_some(g),
                    "input_tokens": s.tokens.input,
                    "output_tokens": s.tokens.output,
                    "cache_read_tokens": s.tokens.cache_read,
                    "cache_write_tokens": s.tokens.cache_write,
                    "tokens": s.tokens.total(),
                    "usd": s.usd(),
                    "unpriced_models": s.unpriced,
                })
            })
            .collect();
        return json(&out);
    }
    if groups.is_empty() {
        return line(
            "Nothing spent yet (usage is read from the agents' own records while the engine runs).",
        );
    }
    let mut table_rows = vec![vec![
        key.to_uppercase(),
        "INPUT".into(),
        "OUTPUT".into(),
        "CACHE READ".into(),
        "CACHE WRITE".into(),
        "TOKENS".into(),
        "USD".into(),
    ]];
    let none = match a.by {
        GroupBy::Bead => "(no bead)",
        GroupBy::Convoy => "(no convoy)",
        _ => "(none)",
    };
    let row = |name: String, s: &costs::Spent| {
        let t = &s.tokens;
        vec![
            name,
            t.input.to_string(),
            t.output.to_string(),
            t.cache_read.to_string(),
            t.cache_write.to_string(),
            t.total().to_string(),
            s.label(),
        ]
    };
    for (g, s) in &groups {
        let name = if g.is_empty() { none.into() } else { g.clone() };
        table_rows.push(row(name, s));
    }
    table_rows.push(row("total".into(), &costs::total(&ctx.town.config, &rows)));
    for l in table(&table_rows) {
        line(&l)?;
    }
    let unpriced: Vec<&String> = groups.iter().flat_map(|(_, s)| &s.unpriced).collect();
    if !unpriced.is_empty() {
        let mut names: Vec<&str> = unpriced.iter().map(|s| s.as_str()).collect();
        names.sort();
        names.dedup();
        line(&format!(
            "? = no price for {}: add [prices.\"MODEL\"] to town.toml (USD per million tokens)",
            names.join(", ")
        ))?;
    }
    if let Some(limit) = ctx.town.config.budget.daily_usd {
        let today = costs::spent_today(&ctx.town.config, &ctx.store)?;
        line(&format!(
            "Today (UTC): {} of the {} daily budget",
            money(today.usd_priced),
            money(limit)
        ))?;
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct FreezeArgs {
    /// The agent (or use --rig or --all).
    pub agent: Option<String>,
    /// Every agent of this rig.
    #[arg(long, value_name = "RIG", conflicts_with = "agent")]
    pub rig: Option<String>,
    /// Every agent of the town.
    #[arg(long, conflicts_with_all = ["agent", "rig"])]
    pub all: bool,
}

/// `freeze` (`frozen`) or `thaw`: sets the agents' flag in the store; the running engine
/// stops or resumes their processes (waited for here, up to a few seconds); with no engine,
/// they start frozen when one does.
pub fn freeze(ctx: &Ctx, a: FreezeArgs, frozen: bool) -> Result<()> {
    let verb = if frozen { "freeze" } else { "thaw" };
    let agents = ctx.store.agents()?;
    let chosen: Vec<&crate::beads::Agent> = match (&a.agent, &a.rig, a.all) {
        (Some(name), _, _) => {
            crate::beads::check_agent_name(name)?;
            vec![agents
                .iter()
                .find(|x| &x.name == name)
                .ok_or_else(|| Error::NotFound {
                    kind: "agent",
                    id: name.clone(),
                })?]
        }
        (None, Some(rig), _) => {
            ctx.town.rig(rig)?;
            agents.iter().filter(|x| &x.rig == rig).collect()
        }
        (None, None, true) => agents.iter().collect(),
        (None, None, false) => {
            return Err(Error::bad(format!(
                "{verb}: name an agent, or give --rig RIG or --all"
            )))
        }
    };
    let reason = format!("{verb} asked by {}", ctx.actor);
    let mut changed = Vec::new();
    for x in &chosen {
        if ctx
            .store
            .agent_set_frozen(&x.name, frozen, &reason, &ctx.actor)?
        {
            changed.push(x.name.clone());
        }
    }
    if chosen.is_empty() {
        return line(&format!("No agents to {verb}."));
    }
    if changed.is_empty() {
        return line(&format!(
            "Already {}: {}",
            if frozen { "frozen" } else { "thawed" },
            names(&chosen)
        ));
    }
    let engine = ctx.store.engine_alive()?;
    if engine.is_none() {
        return line(&format!(
            "{} {}; no engine is running: {}",
            if frozen { "Froze" } else { "Thawed" },
            changed.join(", "),
            if frozen {
                "they start frozen when one does"
            } else {
                "they start when one does"
            }
        ));
    }
    // The engine applies the flag within a tick or two: wait for the sessions it runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let pending = |store: &crate::beads::Store| -> Result<Vec<String>> {
        Ok(store
            .agents()?
            .into_iter()
            .filter(|x| changed.contains(&x.name) && x.session.is_some())
            .filter(|x| (x.state == agent_state::FROZEN) != frozen)
            .map(|x| x.name)
            .collect())
    };
    let mut left = pending(&ctx.store)?;
    while !left.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        left = pending(&ctx.store)?;
    }
    line(&format!(
        "{} {}{}",
        if frozen { "Froze" } else { "Thawed" },
        changed.join(", "),
        if left.is_empty() {
            if frozen {
                " (their processes are stopped)"
            } else {
                " (their processes run again)"
            }
            .to_string()
        } else {
            format!("; the engine has not applied it yet to {}", left.join(", "))
        }
    ))
}

fn names(agents: &[&crate::beads::Agent]) -> String {
    agents
        .iter()
        .map(|a| a.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_today_a_duration_a_date_or_a_time_and_names_a_bad_one() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-04T18:00:00Z")
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap();
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_nanos_opt()
                .unwrap()
        };
        assert_eq!(
            parse_since("today", now).unwrap(),
            at("2026-12-04T00:00:00Z")
        );
        assert_eq!(parse_since("2h", now).unwrap(), at("2026-12-04T16:00:00Z"));
        assert_eq!(
            parse_since("2026-12-01", now).unwrap(),
            at("2026-12-01T00:00:00Z")
        );
        assert_eq!(
            parse_since("2026-12-03T10:00:00Z", now).unwrap(),
            at("2026-12-03T10:00:00Z")
        );
        let e = parse_since("yesterdayish", now).unwrap_err();
        assert!(e.to_string().contains("--since: \"yesterdayish\""), "{e}");
        assert_eq!(e.exit_code(), 2);
    }
}
