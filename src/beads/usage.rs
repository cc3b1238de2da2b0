//! What the agents spent: one row per model answer, read from each runtime's own records by
//! the engine (`crate::agent::usage` reads them, `crate::engine` attributes them), and how far
//! each record file has been read. Keyed by the answer's own id where the runtime gives one,
//! so an answer written twice (streaming) or read twice (a restart) counts once. The rows
//! outlive the transcripts: deleting `~/.claude` loses nothing counted.

use super::Store;
use crate::Result;
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

/// Token counts, each kind apart. `input` never includes cache reads or writes (the runtimes
/// that count them inside their input are normalised when read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub input: i64,
    pub output: i64,
    pub cache_read: i64,
    pub cache_write: i64,
}

impl Tokens {
    /// Every token, of every kind.
    pub fn total(&self) -> i64 {
        self.input + self.output + self.cache_read + self.cache_write
    }

    pub fn add(&mut self, o: &Tokens) {
        self.input += o.input;
        self.output += o.output;
        self.cache_read += o.cache_read;
        self.cache_write += o.cache_write;
    }
}

/// One model answer as a runtime recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRecord {
    /// Unique across the town: the runtime's own message id where it has one, else the record
    /// file and the line's offset in it.
    pub key: String,
    pub model: String,
    pub tokens: Tokens,
    /// When the runtime wrote it (unix nanoseconds), if the record says.
    pub at_ns: Option<i64>,
}

/// Who spent what a record file holds: the agent, and its rig, bead and session then.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spender {
    pub agent: String,
    pub rig: String,
    pub bead: Option<String>,
    /// The engine's session id.
    pub session: Option<String>,
    /// The runtime's own conversation id.
    pub conversation: Option<String>,
    pub runtime: String,
}

/// How `costs` groups what was spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Agent,
    Rig,
    Convoy,
    Bead,
    Model,
}

impl GroupBy {
    /// The group's name in JSON and in table headers.
    pub fn key(&self) -> &'static str {
        match self {
            GroupBy::Agent => "agent",
            GroupBy::Rig => "rig",
            GroupBy::Convoy => "convoy",
            GroupBy::Bead => "bead",
            GroupBy::Model => "model",
        }
    }
}

/// Tokens of one model within one group.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    /// The group (agent name, rig, convoy id, bead id, model); empty for usage that belongs
    /// to no rig, bead or convoy.
    pub group: String,
    pub model: String,
    pub tokens: Tokens,
}

impl Store {
    /// How far `path` has been read, and what its reader kept from the last read (empty for a
    /// file never read).
    pub fn usage_source(&self, path: &str) -> Result<(u64, String)> {
        let row: Option<(i64, String)> = self
            .conn()
            .prepare_cached("SELECT offset, state FROM usage_sources WHERE path = ?1")?
            .query_row([path], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(row
            .map(|(o, s)| (o.max(0) as u64, s))
            .unwrap_or((0, String::new())))
    }

    /// Records what `who` spent in `records` (a record already counted is replaced, not added)
    /// and that `path` is read up to `offset`, with the reader's `state`, in one transaction.
    /// Returns how many records were new.
    pub fn usage_add(
        &self,
        path: &str,
        offset: u64,
        state: &str,
        who: &Spender,
        records: &[UsageRecord],
    ) -> Result<usize> {
        self.write_bookkeeping(|tx| {
            let mut new = 0;
            let mut known = tx
                .conn
                .prepare_cached("SELECT 1 FROM usage WHERE key = ?1")?;
            let mut put = tx.conn.prepare_cached(
                "INSERT INTO usage(key, agent, rig, bead, session, conversation, runtime, model,
                                   input, output, cache_read, cache_write, at_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT(key) DO UPDATE SET model = excluded.model,
                    input = excluded.input, output = excluded.output,
                    cache_read = excluded.cache_read, cache_write = excluded.cache_write",
            )?;
            for r in records {
                if !known.exists([&r.key])? {
                    new += 1;
                }
                put.execute(params![
                    r.key,
                    who.agent,
                    who.rig,
                    who.bead,
                    who.session,
                    who.conversation,
                    who.runtime,
                    r.model,
                    r.tokens.input,
                    r.tokens.output,
                    r.tokens.cache_read,
                    r.tokens.cache_write,
                    r.at_ns.unwrap_or(tx.now_ns),
                ])?;
            }
            tx.conn
                .prepare_cached(
                    "INSERT INTO usage_sources(path, offset, state) VALUES (?1, ?2, ?3)
                     ON CONFLICT(path) DO UPDATE SET offset = excluded.offset,
                        state = excluded.state",
                )?
                .execute(params![path, offset as i64, state])?;
            Ok(new)
        })
    }

    /// What was spent at or after `since_ns` (everything when None), by `by` and model.
    pub fn usage_by(&self, by: GroupBy, since_ns: Option<i64>) -> Result<Vec<UsageRow>> {
        let (group, join) = match by {
            GroupBy::Agent => ("u.agent", ""),
            GroupBy::Rig => ("u.rig", ""),
            GroupBy::Bead => ("COALESCE(u.bead, '')", ""),
            GroupBy::Model => ("u.model", ""),
            GroupBy::Convoy => (
                "COALESCE(d.issue_id, '')",
                "LEFT JOIN deps d ON d.depends_on_id = u.bead AND d.type = 'tracks'",
            ),
        };
        self.usage_query(
            &format!(
                "SELECT {group}, u.model, SUM(u.input), SUM(u.output), SUM(u.cache_read),
                    SUM(u.cache_write)
             FROM usage u {join}
             WHERE u.at_ns >= ?1
             GROUP BY 1, 2 ORDER BY 1, 2"
            ),
            [since_ns.unwrap_or(i64::MIN)],
        )
    }

    /// What was spent on `bead` (by every agent that worked it), by model.
    pub fn usage_of_bead(&self, bead: &str) -> Result<Vec<UsageRow>> {
        self.usage_query(
            "SELECT bead, model, SUM(input), SUM(output), SUM(cache_read), SUM(cache_write)
             FROM usage WHERE bead = ?1 GROUP BY model ORDER BY model",
            [bead],
        )
    }

    fn usage_query(&self, sql: &str, p: impl rusqlite::Params) -> Result<Vec<UsageRow>> {
        let mut stmt = self.conn().prepare_cached(sql)?;
        let rows = stmt.query_map(p, usage_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

fn usage_row(r: &rusqlite::Row) -> rusqlite::Result<UsageRow> {
    Ok(UsageRow {
        group: r.get(0)?,
        model: r.get(1)?,
        tokens: Tokens {
            input: r.get(2)?,
            output: r.get(3)?,
            cache_read: r.get(4)?,
            cache_write: r.get(5)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::store;
    use super::*;

    fn rec(key: &str, model: &str, input: i64, output: i64, at: i64) -> UsageRecord {
        UsageRecord {
            key: key.into(),
            model: model.into(),
            tokens: Tokens {
                input,
                output,
                cache_read: 1,
                cache_write: 2,
            },
            at_ns: Some(at),
        }
    }

    #[test]
    fn an_answer_read_twice_counts_once_and_groups_add_up_per_model() {
        let s = store();
        let nux = Spender {
            agent: "nux".into(),
            rig: "demo".into(),
            bead: Some("gt-a".into()),
            ..Default::default()
        };
        let slit = Spender {
            agent: "slit".into(),
            rig: "demo".into(),
            bead: Some("gt-b".into()),
            ..Default::default()
        };
        let first = [rec("m1", "opus", 10, 5, 100), rec("m2", "opus", 20, 7, 200)];
        assert_eq!(s.usage_add("/t/a.jsonl", 50, "x", &nux, &first).unwrap(), 2);
        assert_eq!(s.usage_source("/t/a.jsonl").unwrap(), (50, "x".into()));
        assert_eq!(s.usage_source("/t/other").unwrap(), (0, String::new()));
        // The same answer again (a later line of the same message): replaced, not added.
        let again = [rec("m2", "opus", 20, 9, 200)];
        assert_eq!(s.usage_add("/t/a.jsonl", 80, "", &nux, &again).unwrap(), 0);
        s.usage_add("/t/b.jsonl", 10, "", &slit, &[rec("m3", "gpt", 1, 1, 300)])
            .unwrap();

        let by_agent = s.usage_by(GroupBy::Agent, None).unwrap();
        assert_eq!(by_agent.len(), 2);
        assert_eq!(by_agent[0].group, "nux");
        assert_eq!(
            by_agent[0].tokens,
            Tokens {
                input: 30,
                output: 14,
                cache_read: 2,
                cache_write: 4
            }
        );
        assert_eq!(by_agent[0].tokens.total(), 50);
        let since = s.usage_by(GroupBy::Model, Some(250)).unwrap();
        assert_eq!(since.len(), 1);
        assert_eq!((since[0].group.as_str(), since[0].tokens.input), ("gpt", 1));
        let bead = s.usage_of_bead("gt-a").unwrap();
        assert_eq!(bead[0].tokens.output, 14);
    }
}
