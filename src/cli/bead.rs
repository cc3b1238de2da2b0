//! `bead ...`: create, show, list, ready, update, claim, close, comment, dep, import, export.

use super::output::{bead_rows, bead_value, beads_value, json, line, short_time};
use super::{parse_priority, Ctx};
use crate::beads::{BeadUpdate, Closed, ListFilter, NewBead, DEFAULT_LIMIT};
use crate::{Error, Result};
use clap::{Args, Subcommand};
use std::io::BufReader;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum BeadCmd {
    /// Create a bead.
    Create(CreateArgs),
    /// Show one bead with its dependencies, dependents and comments.
    Show { id: String },
    /// List beads (most urgent first).
    List(ListArgs),
    /// Ready work: open, unblocked, not deferred; most urgent first, then oldest.
    Ready {
        /// How many to show; 0 means all.
        #[arg(long, default_value_t = DEFAULT_LIMIT)]
        limit: usize,
    },
    /// Change fields of a bead.
    Update(UpdateArgs),
    /// Claim a bead for the actor (atomic: exactly one claimer wins).
    Claim { id: String },
    /// Close a bead.
    Close {
        id: String,
        #[arg(long, short)]
        reason: Option<String>,
    },
    /// Add a comment to a bead.
    Comment { id: String, text: String },
    /// Dependencies between beads.
    #[command(subcommand)]
    Dep(DepCmd),
    /// Import a Beads issues.jsonl (all or nothing); `-` reads standard input.
    Import { file: PathBuf },
    /// Export every bead as Beads JSONL, sorted by id (to standard output without FILE).
    Export { file: Option<PathBuf> },
}

#[derive(Debug, Subcommand)]
pub enum DepCmd {
    /// ISSUE waits for (or links to) DEPENDS_ON.
    Add {
        issue: String,
        depends_on: String,
        /// blocks, parent-child, related, discovered-from, tracks, duplicates, supersedes, replies-to
        #[arg(long = "type", short = 't', default_value = "blocks")]
        dep_type: String,
    },
    /// Remove the dependency ISSUE -> DEPENDS_ON.
    Rm { issue: String, depends_on: String },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    pub title: String,
    #[arg(long, short)]
    pub description: Option<String>,
    #[arg(long)]
    pub design: Option<String>,
    #[arg(long = "acceptance")]
    pub acceptance: Option<String>,
    #[arg(long)]
    pub notes: Option<String>,
    /// task, bug, feature, epic, chore, message, merge-request, molecule, convoy, agent
    #[arg(long = "type", short = 't')]
    pub kind: Option<String>,
    /// 0 (critical) .. 4 (backlog), or P0..P4
    #[arg(long, short)]
    pub priority: Option<String>,
    /// Create as a child `<parent>.<n>` of this bead.
    #[arg(long)]
    pub parent: Option<String>,
    #[arg(long = "label", short = 'l')]
    pub labels: Vec<String>,
    #[arg(long)]
    pub assignee: Option<String>,
    /// Not ready before this time: RFC 3339, a date (2026-02-01), or a duration from now (2h, 3days).
    #[arg(long)]
    pub defer_until: Option<String>,
    /// A wisp: stored, never exported.
    #[arg(long)]
    pub ephemeral: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long = "type", short = 't')]
    pub kind: Option<String>,
    #[arg(long)]
    pub assignee: Option<String>,
    #[arg(long)]
    pub label: Option<String>,
    /// Include wisps (ephemeral beads).
    #[arg(long)]
    pub all: bool,
    /// How many to show; 0 means all.
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    pub id: String,
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long, short)]
    pub priority: Option<String>,
    /// Empty string unassigns.
    #[arg(long)]
    pub assignee: Option<String>,
    #[arg(long)]
    pub title: Option<String>,
    #[arg(long, short)]
    pub description: Option<String>,
    #[arg(long)]
    pub design: Option<String>,
    #[arg(long = "acceptance")]
    pub acceptance: Option<String>,
    #[arg(long)]
    pub notes: Option<String>,
    #[arg(long = "type", short = 't')]
    pub kind: Option<String>,
    #[arg(long = "add-label")]
    pub add_labels: Vec<String>,
    #[arg(long = "remove-label")]
    pub remove_labels: Vec<String>,
    /// RFC 3339, a date, a duration from now, or `none` to clear.
    #[arg(long)]
    pub defer_until: Option<String>,
}

/// `--defer-until`: an RFC 3339 instant, a date (midnight UTC), or a duration from now.
fn parse_when(s: &str, now: chrono::DateTime<chrono::Utc>) -> Result<String> {
    let fmt =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    if chrono::DateTime::parse_from_rfc3339(s).is_ok() {
        return Ok(s.to_string());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(fmt(t.and_utc()));
        }
    }
    if let Ok(d) = humantime::parse_duration(s) {
        if let Ok(d) = chrono::Duration::from_std(d) {
            if let Some(t) = now.checked_add_signed(d) {
                return Ok(fmt(t));
            }
        }
    }
    Err(Error::bad(format!(
        "--defer-until: '{s}' is not a time (use 2026-02-01T09:00:00Z, 2026-02-01, or a duration like 2h)"
    )))
}

pub fn run(ctx: &Ctx, cmd: BeadCmd) -> Result<()> {
    let s = &ctx.store;
    let actor = ctx.actor.as_str();
    match cmd {
        BeadCmd::Create(a) => create(ctx, a),
        BeadCmd::Show { id } => show(ctx, &id),
        BeadCmd::List(a) => {
            let beads = s.list(&ListFilter {
                status: a.status,
                issue_type: a.kind,
                assignee: a.assignee,
                label: a.label,
                include_ephemeral: a.all,
                limit: (a.limit > 0).then_some(a.limit),
            })?;
            ctx.out.list(
                &beads_value(&beads),
                beads.is_empty(),
                "No beads match.",
                || bead_rows(&beads),
            )
        }
        BeadCmd::Ready { limit } => {
            let beads = s.ready((limit > 0).then_some(limit))?;
            ctx.out.list(
                &beads_value(&beads),
                beads.is_empty(),
                "No ready work.",
                || bead_rows(&beads),
            )
        }
        BeadCmd::Update(a) => update(ctx, a),
        BeadCmd::Claim { id } => {
            let b = s.claim(&id, actor)?;
            tracing::info!(id = %b.id, actor, "bead claimed");
            ctx.out.one(&bead_value(&b), || {
                line(&format!("{} claimed {}  \"{}\"", actor, b.id, b.title))
            })
        }
        BeadCmd::Close { id, reason } => {
            let outcome = s.close(&id, reason.as_deref().unwrap_or(""), actor)?;
            if ctx.out.json {
                return json(&bead_value(&s.get(&id)?));
            }
            match outcome {
                Closed::Now => line(&format!("Closed {id}")),
                Closed::Already => line(&format!("{id} was already closed")),
            }
        }
        BeadCmd::Comment { id, text } => {
            let c = s.comment(&id, &text, actor)?;
            line(&format!("Comment {} added to {id}", c.id))
        }
        BeadCmd::Dep(DepCmd::Add {
            issue,
            depends_on,
            dep_type,
        }) => {
            if s.add_dep(&issue, &depends_on, &dep_type, actor)? {
                line(&format!("{issue} now depends on {depends_on} ({dep_type})"))
            } else {
                line(&format!(
                    "{issue} already depends on {depends_on} ({dep_type})"
                ))
            }
        }
        BeadCmd::Dep(DepCmd::Rm { issue, depends_on }) => {
            s.remove_dep(&issue, &depends_on, actor)?;
            line(&format!("{issue} no longer depends on {depends_on}"))
        }
        BeadCmd::Import { file } => import(ctx, &file),
        BeadCmd::Export { file } => export(ctx, file.as_deref()),
    }
}

fn create(ctx: &Ctx, a: CreateArgs) -> Result<()> {
    let (s, actor) = (&ctx.store, ctx.actor.as_str());
    let nb = NewBead {
        title: a.title,
        description: a.description.unwrap_or_default(),
        design: a.design.unwrap_or_default(),
        acceptance_criteria: a.acceptance.unwrap_or_default(),
        notes: a.notes.unwrap_or_default(),
        issue_type: a.kind,
        priority: a.priority.as_deref().map(parse_priority).transpose()?,
        assignee: a.assignee.unwrap_or_default(),
        labels: a.labels,
        parent: a.parent,
        defer_until: a
            .defer_until
            .as_deref()
            .map(|d| parse_when(d, s.clock().now()))
            .transpose()?,
        ephemeral: a.ephemeral,
        metadata: None,
    };
    let b = s.create(&nb, actor)?;
    tracing::info!(id = %b.id, actor, "bead created");
    ctx.out.one(&bead_value(&b), || {
        line(&format!("Created {}  \"{}\"", b.id, b.title))
    })
}

fn show(ctx: &Ctx, id: &str) -> Result<()> {
    let s = &ctx.store;
    let b = s.get(id)?;
    let dependents = s.dependents(id)?;
    if ctx.out.json {
        let mut v = bead_value(&b);
        v["dependents"] = serde_json::to_value(&dependents)?;
        return json(&v);
    }
    line(&format!("{}  {}", b.id, b.title))?;
    let mut facts = vec![
        format!("status {}", b.status),
        format!("P{}", b.priority),
        b.issue_type.clone(),
    ];
    if !b.assignee.is_empty() {
        facts.push(format!("assignee {}", b.assignee));
    }
    if b.blocked {
        facts.push("BLOCKED".into());
    }
    if b.ephemeral {
        facts.push("wisp".into());
    }
    if b.pinned {
        facts.push("pinned".into());
    }
    line(&format!("  {}", facts.join(" · ")))?;
    line(&format!(
        "  created {} by {} · updated {}",
        short_time(&b.created_at),
        if b.created_by.is_empty() {
            "?"
        } else {
            &b.created_by
        },
        short_time(&b.updated_at)
    ))?;
    if let Some(c) = &b.closed_at {
        let reason = if b.close_reason.is_empty() {
            String::new()
        } else {
            format!(": {}", b.close_reason)
        };
        line(&format!("  closed {}{reason}", short_time(c)))?;
    }
    if let Some(d) = &b.defer_until {
        line(&format!("  deferred until {}", short_time(d)))?;
    }
    if !b.labels.is_empty() {
        line(&format!("  labels: {}", b.labels.join(", ")))?;
    }
    for d in &b.dependencies {
        let status = s
            .get(&d.depends_on_id)
            .map(|x| x.status)
            .unwrap_or_else(|_| "missing".into());
        line(&format!(
            "  depends on {} ({}, {status})",
            d.depends_on_id, d.dep_type
        ))?;
    }
    for d in &dependents {
        line(&format!("  needed by {} ({})", d.issue_id, d.dep_type))?;
    }
    super::output::bead_texts(&b, "  ")?;
    if !b.comments.is_empty() {
        line("")?;
        line("Comments:")?;
        for c in &b.comments {
            line(&format!(
                "  [{}] {}: {}",
                short_time(&c.created_at),
                c.author,
                c.text
            ))?;
        }
    }
    Ok(())
}

fn update(ctx: &Ctx, a: UpdateArgs) -> Result<()> {
    let (s, actor) = (&ctx.store, ctx.actor.as_str());
    let defer_until = match a.defer_until.as_deref() {
        None => None,
        Some("none") | Some("") => Some(None),
        Some(d) => Some(Some(parse_when(d, s.clock().now())?)),
    };
    let upd = BeadUpdate {
        title: a.title,
        description: a.description,
        design: a.design,
        acceptance_criteria: a.acceptance,
        notes: a.notes,
        status: a.status,
        priority: a.priority.as_deref().map(parse_priority).transpose()?,
        issue_type: a.kind,
        assignee: a.assignee,
        defer_until,
        add_labels: a.add_labels,
        remove_labels: a.remove_labels,
        metadata: None,
    };
    let b = s.update(&a.id, &upd, actor)?;
    ctx.out.one(&bead_value(&b), || {
        line(&format!("Updated {}  \"{}\" ({})", b.id, b.title, b.status))
    })
}

fn import(ctx: &Ctx, file: &std::path::Path) -> Result<()> {
    let (s, actor) = (&ctx.store, ctx.actor.as_str());
    let report = if file.as_os_str() == "-" {
        s.import_jsonl(std::io::stdin().lock(), "<stdin>", actor)?
    } else {
        let f = std::fs::File::open(file).map_err(|e| Error::Io {
            action: "open",
            path: file.to_path_buf(),
            source: e,
        })?;
        s.import_jsonl(BufReader::new(f), &file.display().to_string(), actor)?
    };
    tracing::info!(lines = report.lines, "imported");
    ctx.out.one(&report, || {
        line(&format!(
            "Imported {} beads from {} ({} new, {} updated)",
            report.lines,
            file.display(),
            report.created,
            report.updated
        ))
    })
}

fn export(ctx: &Ctx, file: Option<&std::path::Path>) -> Result<()> {
    let s = &ctx.store;
    match file {
        Some(path) => {
            let n = s.export_to_file(path)?;
            eprintln!("Exported {n} beads to {}", path.display());
            Ok(())
        }
        None => {
            let out = std::io::stdout().lock();
            match s.export_jsonl(std::io::BufWriter::new(out)) {
                Ok(_) => Ok(()),
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::BrokenPipe =>
                {
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn defer_until_accepts_instants_dates_and_durations() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        assert_eq!(
            parse_when("2026-04-01T09:00:00Z", now).unwrap(),
            "2026-04-01T09:00:00Z"
        );
        assert_eq!(
            parse_when("2026-04-01", now).unwrap(),
            "2026-04-01T00:00:00Z"
        );
        assert_eq!(parse_when("2h", now).unwrap(), "2026-03-01T14:00:00Z");
        let err = parse_when("someday", now).unwrap_err();
        assert!(err.to_string().contains("--defer-until: 'someday'"));
        assert_eq!(err.exit_code(), 2);
    }
}
