//! What tokens cost: the town's `[prices."MODEL"]` over the shipped defaults, and the USD of
//! token counts. A model with no price is counted in tokens and its cost is unknown: never
//! guessed from a similar name the town did not write down.
//!
//! Shipped defaults are matched by prefix up to a `-`, so a dated model id
//! (`claude-sonnet-4-5-20250929`) takes its family's price; the longest matching prefix wins,
//! and `gpt-5` does not price `gpt-5.5`. The town's own entries are matched exactly first,
//! then the same way, and always win over a shipped one.

use super::config::{Price, TownConfig};
use crate::beads::{Tokens, UsageRow};
use serde::{Deserialize, Serialize};

const fn p(input: f64, output: f64, cache_read: f64, cache_write: f64) -> Price {
    Price {
        input,
        output,
        cache_read,
        cache_write,
    }
}

/// USD per million tokens for the models the presets run, from their makers' price lists as
/// we know them. The presets' current defaults (`gpt-5.5` for Codex 0.171, `gemini-3.8-flash`
/// for Gemini CLI 0.61) take their family's last listed price; a town that pays otherwise
/// says so in `[prices]`. `sim` is the simulated agent's made-up model, priced so the demo
/// shows costs.
pub const SHIPPED: &[(&str, Price)] = &[
    // Anthropic: cache writes at the 5-minute rate.
    ("claude-opus-4-8", p(15.0, 75.0, 1.5, 18.75)),
    ("claude-opus-4-5", p(5.0, 25.0, 0.5, 6.25)),
    ("claude-opus-4-1", p(15.0, 75.0, 1.5, 18.75)),
    ("claude-opus-4", p(15.0, 75.0, 1.5, 18.75)),
    ("claude-sonnet-4", p(3.0, 15.0, 0.3, 3.75)),
    ("claude-haiku-4", p(1.0, 5.0, 0.1, 1.25)),
    ("claude-3-5-haiku", p(0.8, 4.0, 0.08, 1.0)),
    // OpenAI: cached input at a tenth; no charge for writing the cache.
    ("gpt-5-mini", p(0.25, 2.0, 0.025, 0.0)),
    ("gpt-5-nano", p(0.05, 0.4, 0.005, 0.0)),
    ("gpt-5", p(1.25, 10.0, 0.125, 0.0)),
    ("gpt-5.5", p(1.25, 10.0, 0.125, 0.0)),
    // Google: prompts up to 200k tokens.
    ("gemini-2.5-pro", p(1.25, 10.0, 0.125, 0.0)),
    ("gemini-2.5-flash-lite", p(0.1, 0.4, 0.01, 0.0)),
    ("gemini-2.5-flash", p(0.3, 2.5, 0.03, 0.0)),
    ("gemini-3-pro", p(2.0, 12.0, 0.2, 0.0)),
    ("gemini-3.8-flash", p(0.3, 2.5, 0.03, 0.0)),
    ("sim", p(3.0, 15.0, 0.3, 3.75)),
];

/// The longest key of `table` that `model` starts with.
fn by_prefix<'a, I>(table: I, model: &str) -> Option<Price>
where
    I: IntoIterator<Item = (&'a str, &'a Price)>,
{
    table
        .into_iter()
        .filter(|(k, _)| {
            model
                .strip_prefix(k)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
        })
        .max_by_key(|(k, _)| k.len())
        .map(|(_, p)| *p)
}

/// The price of `model`: the town's own (exact, then by prefix), else the shipped one.
pub fn price_of(config: &TownConfig, model: &str) -> Option<Price> {
    if let Some(p) = config.prices.get(model) {
        return Some(*p);
    }
    by_prefix(config.prices.iter().map(|(k, v)| (k.as_str(), v)), model)
        .or_else(|| by_prefix(SHIPPED.iter().map(|(k, v)| (*k, v)), model))
}

/// What `tokens` cost at `price`, in USD.
pub fn usd(tokens: &Tokens, price: &Price) -> f64 {
    (tokens.input as f64 * price.input
        + tokens.output as f64 * price.output
        + tokens.cache_read as f64 * price.cache_read
        + tokens.cache_write as f64 * price.cache_write)
        / 1_000_000.0
}

/// One group's spending: its tokens, what the priced part cost, and the models with no price.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Spent {
    pub tokens: Tokens,
    /// USD of the tokens whose model has a price.
    pub usd_priced: f64,
    /// Models in the group with no price (their tokens are counted, their cost unknown).
    pub unpriced: Vec<String>,
}

impl Spent {
    /// Whether the priced part has reached `limit` (never, without a limit). Usage of models
    /// with no price does not count towards a budget.
    pub fn reaches(&self, limit: Option<f64>) -> bool {
        limit.is_some_and(|l| self.usd_priced >= l)
    }

    /// The group's cost, unless part of it is unknown.
    pub fn usd(&self) -> Option<f64> {
        self.unpriced.is_empty().then_some(self.usd_priced)
    }

    fn add(&mut self, config: &TownConfig, model: &str, tokens: &Tokens) {
        self.tokens.add(tokens);
        match price_of(config, model) {
            Some(p) => self.usd_priced += usd(tokens, &p),
            None => {
                if tokens.total() > 0 && !self.unpriced.iter().any(|m| m == model) {
                    self.unpriced.push(model.to_string());
                }
            }
        }
    }

    /// The cost in at most 6 columns below $1,000 (an agent's row): `$1.23`, `$1.23?`.
    pub fn short_label(&self) -> String {
        self.label_with("?")
    }

    /// The cost as the cockpit and the tables show it: `$1.23`, `$1.23+?` when part of it
    /// is unknown, `?` when all of it is.
    pub fn label(&self) -> String {
        self.label_with("+?")
    }

    fn label_with(&self, partly_unknown: &str) -> String {
        match (self.unpriced.is_empty(), self.usd_priced > 0.0) {
            (true, _) => money(self.usd_priced),
            (false, true) => format!("{}{partly_unknown}", money(self.usd_priced)),
            (false, false) => "?".into(),
        }
    }
}

/// USD as the cockpit shows it: cents under $100, whole dollars above.
pub fn money(usd: f64) -> String {
    if usd >= 100.0 {
        format!("${usd:.0}")
    } else {
        format!("${usd:.2}")
    }
}

/// Rows of one grouping (group, model, tokens) summed per group, priced, in group order.
pub fn by_group(config: &TownConfig, rows: &[UsageRow]) -> Vec<(String, Spent)> {
    let mut out: Vec<(String, Spent)> = Vec::new();
    for r in rows {
        if out.last().is_none_or(|(g, _)| *g != r.group) {
            out.push((r.group.clone(), Spent::default()));
        }
        if let Some((_, s)) = out.last_mut() {
            s.add(config, &r.model, &r.tokens);
        }
    }
    out
}

/// Every row summed into one.
pub fn total(config: &TownConfig, rows: &[UsageRow]) -> Spent {
    let mut s = Spent::default();
    for r in rows {
        s.add(config, &r.model, &r.tokens);
    }
    s
}

/// What the town spent today (UTC), priced with its config.
pub fn spent_today(config: &TownConfig, store: &crate::beads::Store) -> crate::Result<Spent> {
    let day = day_start_ns(store.now_ns());
    Ok(total(
        config,
        &store.usage_by(crate::beads::GroupBy::Model, Some(day))?,
    ))
}

/// Refuses new work when `[budget] daily_usd` is spent: the error names the budget, what was
/// spent and how to go on.
pub fn check_daily_budget(town: &super::Town, store: &crate::beads::Store) -> crate::Result<()> {
    let Some(limit) = town.config.budget.daily_usd else {
        return Ok(());
    };
    let spent = spent_today(&town.config, store)?;
    if !spent.reaches(Some(limit)) {
        return Ok(());
    }
    Err(crate::Error::BudgetSpent(format!(
        "the town's daily budget is spent: {} of [budget] daily_usd = {} today (UTC), so no          new work starts; raise daily_usd in {} (or wait for the next UTC day) to go on",
        money(spent.usd_priced),
        money(limit),
        town.root.join(super::CONFIG_FILE).display()
    )))
}

/// The start of the UTC day `now_ns` falls in, as unix nanoseconds.
pub fn day_start_ns(now_ns: i64) -> i64 {
    const DAY: i64 = 86_400 * 1_000_000_000;
    now_ns.div_euclid(DAY) * DAY
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(group: &str, model: &str, input: i64, output: i64) -> UsageRow {
        UsageRow {
            group: group.into(),
            model: model.into(),
            tokens: Tokens {
                input,
                output,
                cache_read: 0,
                cache_write: 0,
            },
        }
    }

    #[test]
    fn the_town_price_wins_a_dated_id_takes_its_family_price_and_an_unknown_model_is_unknown() {
        let mut c = TownConfig::default();
        let sonnet = price_of(&c, "claude-sonnet-4-5-20250929").unwrap();
        assert_eq!((sonnet.input, sonnet.output), (3.0, 15.0));
        // gpt-5-mini is not priced as gpt-5: the longest prefix wins.
        assert_eq!(price_of(&c, "gpt-5-mini-2025").unwrap().input, 0.25);
        assert_eq!(price_of(&c, "gpt-5-codex").unwrap().input, 1.25);
        assert_eq!(price_of(&c, "llama-70b"), None);
        assert_eq!(
            price_of(&c, "gpt-5.1"),
            None,
            "a different model, not a dated gpt-5"
        );
        c.prices.insert(
            "claude-sonnet-4-5".into(),
            Price {
                input: 1.0,
                ..Price::default()
            },
        );
        assert_eq!(
            price_of(&c, "claude-sonnet-4-5-20250929").unwrap().input,
            1.0
        );

        let rows = [
            row("nux", "claude-sonnet-4-5", 1_000_000, 0),
            row("nux", "llama-70b", 10, 10),
            row("slit", "gpt-5", 0, 100_000),
        ];
        let groups = by_group(&c, &rows);
        assert_eq!(groups.len(), 2);
        let (nux, slit) = (&groups[0].1, &groups[1].1);
        assert_eq!(nux.tokens.total(), 1_000_020);
        assert_eq!(nux.usd(), None, "part of nux's cost is unknown");
        assert_eq!(nux.label(), "$1.00+?");
        assert_eq!(slit.usd(), Some(1.0));
        assert_eq!(slit.label(), "$1.00");
        assert_eq!(total(&c, &rows[1..2]).label(), "?");
    }

    #[test]
    fn a_utc_day_starts_at_midnight() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-12-04T18:30:00Z")
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap();
        let start = chrono::DateTime::parse_from_rfc3339("2026-12-04T00:00:00Z")
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap();
        assert_eq!(day_start_ns(t), start);
    }
}
