//! Beads JSONL interop: `issues.jsonl` as written by `bd` (up to v0.49) and `br`.
//!
//! Import is all or nothing: every line is parsed and checked first, a bad one is reported
//! with its line number and key, and only then does one transaction write everything. Fields
//! this program does not know are kept and written back unchanged on export. Export is sorted
//! by id, skips the wisps made here (not those that came in from a file: the store marks what
//! was imported), and goes through a temp file and a rename so a reader never sees half a
//! file. The store flushes `.beads/issues.jsonl` itself, debounced, off the write path.

use super::deps::{find_cycle, recompute_all_blocked};
use super::events::{ev, NewEvent};
use super::rows::{bead_from_row, comment_from_row, dep_from_row, BEAD_COLS};
use super::{
    check_actor, ids, meta_get, meta_i64, meta_set, parse_instant, Bead, Comment, Dependency,
    Store, Tx,
};
use crate::{Error, Result};
use rusqlite::params;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Duration;

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    pub lines: usize,
    pub created: usize,
    pub updated: usize,
}

fn bad(source: &str, line: usize, key: &str, msg: impl std::fmt::Display) -> Error {
    if key.is_empty() {
        Error::bad(format!("{source}:{line}: {msg}"))
    } else {
        Error::bad(format!("{source}:{line}: {key}: {msg}"))
    }
}

/// Reads one record's fields, removing each known key so what is left is the record's extras.
struct Fields<'a> {
    map: Map<String, Value>,
    source: &'a str,
    line: usize,
    prefix: &'static str,
}

impl<'a> Fields<'a> {
    fn key(&self, k: &str) -> String {
        format!("{}{k}", self.prefix)
    }

    fn string(&mut self, k: &str) -> Result<Option<String>> {
        match self.map.shift_remove(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(bad(
                self.source,
                self.line,
                &self.key(k),
                format!("expected a string, got {other}"),
            )),
        }
    }

    fn text(&mut self, k: &str) -> Result<String> {
        Ok(self.string(k)?.unwrap_or_default())
    }

    fn required(&mut self, k: &str) -> Result<String> {
        match self.string(k)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(bad(
                self.source,
                self.line,
                &self.key(k),
                "missing or empty",
            )),
        }
    }

    fn instant(&mut self, k: &str) -> Result<Option<(String, i64)>> {
        match self.string(k)? {
            None => Ok(None),
            Some(s) if s.is_empty() => Ok(None),
            Some(s) => {
                let ns = parse_instant(&s, "time").map_err(|_| {
                    bad(
                        self.source,
                        self.line,
                        &self.key(k),
                        format!("{s:?} is not an RFC 3339 time"),
                    )
                })?;
                Ok(Some((s, ns)))
            }
        }
    }

    fn int(&mut self, k: &str) -> Result<Option<i64>> {
        match self.map.shift_remove(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
            Some(other) => Err(bad(
                self.source,
                self.line,
                &self.key(k),
                format!("expected an integer, got {other}"),
            )),
        }
    }

    /// A true/false marker (`ephemeral`, `pinned`). `true` is taken into its column; `false`
    /// and `null` stay among the record's fields, so the record goes out as it came in.
    fn flag(&mut self, k: &str) -> Result<bool> {
        match self.map.get(k) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(false),
            Some(Value::Bool(true)) => {
                self.map.shift_remove(k);
                Ok(true)
            }
            Some(other) => Err(bad(
                self.source,
                self.line,
                &self.key(k),
                format!("expected true or false, got {other}"),
            )),
        }
    }

    fn array(&mut self, k: &str) -> Result<Vec<Value>> {
        match self.map.shift_remove(k) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok(a),
            Some(other) => Err(bad(
                self.source,
                self.line,
                &self.key(k),
                format!("expected an array, got {other}"),
            )),
        }
    }

    fn object(&self, v: Value, k: &str, prefix: &'static str) -> Result<Fields<'a>> {
        match v {
            Value::Object(map) => Ok(Fields {
                map,
                source: self.source,
                line: self.line,
                prefix,
            }),
            other => Err(bad(
                self.source,
                self.line,
                k,
                format!("expected an object, got {other}"),
            )),
        }
    }
}

/// A parsed record and the instants the store keeps beside the text.
struct Record {
    bead: Bead,
    created_ns: i64,
    defer_ns: Option<i64>,
}

fn parse_record(line: &str, lineno: usize, source: &str, now: &str, now_ns: i64) -> Result<Record> {
    let value: Value = serde_json::from_str(line)
        .map_err(|e| bad(source, lineno, "", format!("not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(bad(source, lineno, "", "expected a JSON object"));
    };
    let mut f = Fields {
        map,
        source,
        line: lineno,
        prefix: "",
    };
    let id = f.required("id")?;
    if !ids::is_valid(&id) {
        return Err(bad(
            source,
            lineno,
            "id",
            format!("'{id}' is not a bead id (<prefix>-<hash>[.n])"),
        ));
    }
    let title = f.required("title")?;
    let description = f.text("description")?;
    let design = f.text("design")?;
    let acceptance_criteria = f.text("acceptance_criteria")?;
    let notes = f.text("notes")?;
    let status = f
        .string("status")?
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "open".into());
    let priority = f.int("priority")?.unwrap_or(super::priority::DEFAULT);
    if !super::priority::valid(priority) {
        return Err(bad(
            source,
            lineno,
            "priority",
            format!("{priority} is out of range ({})", super::priority::RANGE),
        ));
    }
    let issue_type = f
        .string("issue_type")?
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "task".into());
    let assignee = f.text("assignee")?;
    let (created_at, created_ns) = f
        .instant("created_at")?
        .unwrap_or_else(|| (now.to_string(), now_ns));
    let created_by = f.text("created_by")?;
    let updated_at = f
        .instant("updated_at")?
        .map(|(s, _)| s)
        .unwrap_or_else(|| created_at.clone());
    let closed_at = f.instant("closed_at")?.map(|(s, _)| s);
    let close_reason = f.text("close_reason")?;
    let defer = f.instant("defer_until")?;
    let metadata = f.map.shift_remove("metadata").filter(|v| !v.is_null());
    let ephemeral = f.flag("ephemeral")?;
    let pinned = f.flag("pinned")?;
    let mut labels = Vec::new();
    for (i, l) in f.array("labels")?.into_iter().enumerate() {
        match l {
            Value::String(s) if !s.trim().is_empty() => labels.push(s),
            other => {
                return Err(bad(
                    source,
                    lineno,
                    &format!("labels[{i}]"),
                    format!("expected a label string, got {other}"),
                ))
            }
        }
    }
    labels.sort();
    labels.dedup();
    let mut dependencies = Vec::new();
    for (i, d) in f.array("dependencies")?.into_iter().enumerate() {
        let key = format!("dependencies[{i}]");
        let mut d = f.object(d, &key, "dependencies[].")?;
        let issue_id = d.string("issue_id")?.unwrap_or_else(|| id.clone());
        if issue_id != id {
            return Err(bad(
                source,
                lineno,
                &format!("{key}.issue_id"),
                format!("'{issue_id}' is not this record's id '{id}'"),
            ));
        }
        let depends_on_id = d.required("depends_on_id")?;
        if depends_on_id == id {
            return Err(bad(
                source,
                lineno,
                &format!("{key}.depends_on_id"),
                "a bead cannot depend on itself",
            ));
        }
        let dep_type = d
            .string("type")?
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "blocks".into());
        let created_at = d
            .instant("created_at")?
            .map(|(s, _)| s)
            .unwrap_or_else(|| created_at.clone());
        let created_by = d.text("created_by")?;
        dependencies.push(Dependency {
            issue_id,
            depends_on_id,
            dep_type,
            created_at,
            created_by,
            extra: d.map,
        });
    }
    let mut comments = Vec::new();
    for (i, c) in f.array("comments")?.into_iter().enumerate() {
        let key = format!("comments[{i}]");
        let mut c = f.object(c, &key, "comments[].")?;
        let cid = c.int("id")?.unwrap_or(0);
        c.map.shift_remove("issue_id");
        let author = c.text("author")?;
        let text = c.text("text")?;
        let created_at = c
            .instant("created_at")?
            .map(|(s, _)| s)
            .unwrap_or_else(|| created_at.clone());
        comments.push(Comment {
            id: cid,
            issue_id: id.clone(),
            author,
            text,
            created_at,
            extra: c.map,
        });
    }
    Ok(Record {
        created_ns,
        defer_ns: defer.as_ref().map(|(_, ns)| *ns),
        bead: Bead {
            id,
            title,
            description,
            design,
            acceptance_criteria,
            notes,
            status,
            priority,
            issue_type,
            assignee,
            created_at,
            created_by,
            updated_at,
            closed_at,
            close_reason,
            defer_until: defer.map(|(s, _)| s),
            ephemeral,
            pinned,
            metadata,
            extra: f.map,
            labels,
            dependencies,
            comments,
            blocked: false,
        },
    })
}

fn put_text(m: &mut Map<String, Value>, k: &str, v: &str) {
    if !v.is_empty() {
        m.insert(k.into(), Value::String(v.into()));
    }
}

/// A bead as a Beads JSONL record (also the shape of `--json` output): known fields in a fixed
/// order, empty ones left out as `bd` does, then the fields kept from an import.
pub fn bead_to_json(b: &Bead) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), b.id.clone().into());
    m.insert("title".into(), b.title.clone().into());
    put_text(&mut m, "description", &b.description);
    put_text(&mut m, "design", &b.design);
    put_text(&mut m, "acceptance_criteria", &b.acceptance_criteria);
    put_text(&mut m, "notes", &b.notes);
    m.insert("status".into(), b.status.clone().into());
    m.insert("priority".into(), b.priority.into());
    m.insert("issue_type".into(), b.issue_type.clone().into());
    put_text(&mut m, "assignee", &b.assignee);
    m.insert("created_at".into(), b.created_at.clone().into());
    put_text(&mut m, "created_by", &b.created_by);
    m.insert("updated_at".into(), b.updated_at.clone().into());
    if let Some(c) = &b.closed_at {
        m.insert("closed_at".into(), c.clone().into());
    }
    put_text(&mut m, "close_reason", &b.close_reason);
    if let Some(d) = &b.defer_until {
        m.insert("defer_until".into(), d.clone().into());
    }
    if let Some(meta) = &b.metadata {
        m.insert("metadata".into(), meta.clone());
    }
    if b.ephemeral {
        m.insert("ephemeral".into(), true.into());
    }
    if b.pinned {
        m.insert("pinned".into(), true.into());
    }
    if !b.labels.is_empty() {
        m.insert("labels".into(), b.labels.clone().into());
    }
    if !b.dependencies.is_empty() {
        let deps = b
            .dependencies
            .iter()
            .map(|d| {
                let mut o = Map::new();
                o.insert("issue_id".into(), d.issue_id.clone().into());
                o.insert("depends_on_id".into(), d.depends_on_id.clone().into());
                o.insert("type".into(), d.dep_type.clone().into());
                o.insert("created_at".into(), d.created_at.clone().into());
                put_text(&mut o, "created_by", &d.created_by);
                o.extend(d.extra.clone());
                Value::Object(o)
            })
            .collect::<Vec<_>>();
        m.insert("dependencies".into(), deps.into());
    }
    if !b.comments.is_empty() {
        let cs = b
            .comments
            .iter()
            .map(|c| {
                let mut o = Map::new();
                o.insert("id".into(), c.id.into());
                o.insert("issue_id".into(), c.issue_id.clone().into());
                o.insert("author".into(), c.author.clone().into());
                o.insert("text".into(), c.text.clone().into());
                o.insert("created_at".into(), c.created_at.clone().into());
                o.extend(c.extra.clone());
                Value::Object(o)
            })
            .collect::<Vec<_>>();
        m.insert("comments".into(), cs.into());
    }
    m.extend(b.extra.clone());
    m
}

fn json_text(m: &Map<String, Value>) -> Option<String> {
    (!m.is_empty()).then(|| Value::Object(m.clone()).to_string())
}

/// The line each id is on.
type FirstLines = HashMap<String, usize>;

/// Reads and checks every record of a JSONL stream: the records with their line numbers,
/// and the line each id is on.
fn parse_all(
    reader: impl BufRead,
    source: &str,
    now: &str,
    now_ns: i64,
) -> Result<(Vec<(usize, Record)>, FirstLines)> {
    let mut records = Vec::new();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    for (i, line) in reader.lines().enumerate() {
        let lineno = i + 1;
        let line = line.map_err(|e| bad(source, lineno, "", format!("cannot read: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let rec = parse_record(&line, lineno, source, now, now_ns)?;
        if let Some(first) = first_line.insert(rec.bead.id.clone(), lineno) {
            return Err(bad(
                source,
                lineno,
                "id",
                format!("duplicate id '{}' (first on line {first})", rec.bead.id),
            ));
        }
        records.push((lineno, rec));
    }
    Ok((records, first_line))
}

/// Writes the parsed records (each bead with its labels, dependencies in their order and
/// comments, marked as imported) and an event each; how many were new and how many updated.
fn write_records(
    tx: &Tx,
    records: &[(usize, Record)],
    source: &str,
    actor: &str,
) -> Result<(usize, usize)> {
    let c = tx.conn;
    let mut exists = c.prepare("SELECT 1 FROM beads WHERE id = ?1")?;
    let mut upsert = c.prepare(
        "INSERT INTO beads(id, title, description, design, acceptance_criteria, notes, status,
            priority, issue_type, assignee, created_at, created_ns, created_by, updated_at,
            closed_at, close_reason, defer_until, defer_ns, ephemeral, metadata, extra,
            pinned, imported)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
            ?17, ?18, ?19, ?20, ?21, ?22, 1)
         ON CONFLICT(id) DO UPDATE SET title = excluded.title,
            description = excluded.description, design = excluded.design,
            acceptance_criteria = excluded.acceptance_criteria, notes = excluded.notes,
            status = excluded.status, priority = excluded.priority,
            issue_type = excluded.issue_type, assignee = excluded.assignee,
            created_at = excluded.created_at, created_ns = excluded.created_ns,
            created_by = excluded.created_by, updated_at = excluded.updated_at,
            closed_at = excluded.closed_at, close_reason = excluded.close_reason,
            defer_until = excluded.defer_until, defer_ns = excluded.defer_ns,
            ephemeral = excluded.ephemeral, metadata = excluded.metadata,
            extra = excluded.extra, pinned = excluded.pinned, imported = 1",
    )?;
    let mut del_labels = c.prepare("DELETE FROM labels WHERE issue_id = ?1")?;
    let mut del_deps = c.prepare("DELETE FROM deps WHERE issue_id = ?1")?;
    let mut del_comments = c.prepare("DELETE FROM comments WHERE issue_id = ?1")?;
    let mut ins_label =
        c.prepare("INSERT OR IGNORE INTO labels(issue_id, label) VALUES (?1, ?2)")?;
    let mut ins_dep = c.prepare(
        "INSERT OR REPLACE INTO deps(issue_id, depends_on_id, type, created_at, created_by, extra, seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut ins_comment = c.prepare(
        "INSERT INTO comments(comment_id, issue_id, author, text, created_at, extra)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut next_comment: i64 =
        c.query_row("SELECT IFNULL(MAX(comment_id), 0) FROM comments", [], |r| {
            r.get(0)
        })?;
    next_comment = next_comment.max(
        records
            .iter()
            .flat_map(|(_, r)| r.bead.comments.iter().map(|c| c.id))
            .max()
            .unwrap_or(0),
    );
    let (mut created, mut updated) = (0, 0);
    for (_, rec) in records {
        let b = &rec.bead;
        if exists.exists([&b.id])? {
            updated += 1;
        } else {
            created += 1;
        }
        let metadata = b.metadata.as_ref().map(|v| v.to_string());
        upsert.execute(params![
            b.id,
            b.title,
            b.description,
            b.design,
            b.acceptance_criteria,
            b.notes,
            b.status,
            b.priority,
            b.issue_type,
            b.assignee,
            b.created_at,
            rec.created_ns,
            b.created_by,
            b.updated_at,
            b.closed_at,
            b.close_reason,
            b.defer_until,
            rec.defer_ns,
            b.ephemeral as i64,
            metadata,
            json_text(&b.extra),
            b.pinned as i64,
        ])?;
        del_labels.execute([&b.id])?;
        del_deps.execute([&b.id])?;
        del_comments.execute([&b.id])?;
        for l in &b.labels {
            ins_label.execute([&b.id, l])?;
        }
        for (seq, d) in b.dependencies.iter().enumerate() {
            ins_dep.execute(params![
                d.issue_id,
                d.depends_on_id,
                d.dep_type,
                d.created_at,
                d.created_by,
                json_text(&d.extra),
                seq as i64,
            ])?;
        }
        for cm in &b.comments {
            let cid = if cm.id > 0 {
                cm.id
            } else {
                next_comment += 1;
                next_comment
            };
            ins_comment.execute(params![
                cid,
                b.id,
                cm.author,
                cm.text,
                cm.created_at,
                json_text(&cm.extra)
            ])?;
        }
        tx.event(NewEvent {
            subject: &b.id,
            kind: ev::IMPORTED,
            actor,
            detail: Some(source),
            ..Default::default()
        })?;
    }
    Ok((created, updated))
}

/// Id bookkeeping after an import: per-prefix counts (for id length) and child counters (so
/// new children never reuse an imported number).
fn id_bookkeeping(c: &rusqlite::Connection, records: &[(usize, Record)]) -> Result<()> {
    c.execute("DELETE FROM prefix_counts", [])?;
    let mut counts: HashMap<String, i64> = HashMap::new();
    {
        let mut all = c.prepare("SELECT id FROM beads WHERE instr(id, '.') = 0")?;
        let rows = all.query_map([], |r| r.get::<_, String>(0))?;
        for id in rows {
            let id = id?;
            *counts.entry(ids::prefix_of(&id).to_string()).or_default() += 1;
        }
    }
    for (p, n) in counts {
        c.execute(
            "INSERT INTO prefix_counts(prefix, n) VALUES (?1, ?2)",
            params![p, n],
        )?;
    }
    for (_, rec) in records {
        if let Some((parent, n)) = ids::parent_of(&rec.bead.id) {
            c.execute(
                "UPDATE beads SET child_counter = MAX(child_counter, ?2) WHERE id = ?1",
                params![parent, n as i64],
            )?;
        }
    }
    Ok(())
}

impl Store {
    /// Imports a Beads JSONL stream, all or nothing. `source` names it in error messages.
    pub fn import_jsonl(
        &self,
        reader: impl BufRead,
        source: &str,
        actor: &str,
    ) -> Result<ImportReport> {
        let actor = check_actor(actor)?.to_string();
        let (now, now_ns) = (self.now_string(), self.now_ns());
        // Every line is read and checked before anything is written.
        let (records, first_line) = parse_all(reader, source, &now, now_ns)?;
        let lines = records.len();
        self.write(|tx| {
            let (created, updated) = write_records(tx, &records, source, &actor)?;
            if let Some(on_cycle) = find_cycle(tx.conn)? {
                let line = first_line.get(&on_cycle).copied().unwrap_or(0);
                return Err(bad(
                    source,
                    line,
                    "dependencies",
                    format!(
                        "{on_cycle} is on a cycle of blocking dependencies; nothing was imported"
                    ),
                ));
            }
            recompute_all_blocked(tx.conn)?;
            id_bookkeeping(tx.conn, &records)?;
            Ok(ImportReport {
                lines,
                created,
                updated,
            })
        })
    }

    /// Writes the beads as Beads JSONL, sorted by id; returns the count. Wisps made here stay
    /// out; whatever came in from a JSONL file goes out again, wisps included.
    pub fn export_jsonl(&self, mut w: impl Write) -> Result<usize> {
        let n = self.read(|c| {
            let mut labels: HashMap<String, Vec<String>> = HashMap::new();
            {
                let mut st =
                    c.prepare("SELECT issue_id, label FROM labels ORDER BY issue_id, label")?;
                let rows =
                    st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
                for row in rows {
                    let (id, l) = row?;
                    labels.entry(id).or_default().push(l);
                }
            }
            let mut deps: HashMap<String, Vec<Dependency>> = HashMap::new();
            {
                let mut st = c.prepare(
                    "SELECT issue_id, depends_on_id, type, created_at, created_by, extra
                     FROM deps ORDER BY issue_id, seq, depends_on_id",
                )?;
                for d in st.query_map([], dep_from_row)? {
                    let d = d?;
                    deps.entry(d.issue_id.clone()).or_default().push(d);
                }
            }
            let mut comments: HashMap<String, Vec<Comment>> = HashMap::new();
            {
                let mut st = c.prepare(
                    "SELECT comment_id, issue_id, author, text, created_at, extra
                     FROM comments ORDER BY issue_id, comment_id",
                )?;
                for cm in st.query_map([], comment_from_row)? {
                    let cm = cm?;
                    comments.entry(cm.issue_id.clone()).or_default().push(cm);
                }
            }
            let mut st = c.prepare(&format!(
                "SELECT {BEAD_COLS} FROM beads WHERE ephemeral = 0 OR imported = 1 ORDER BY id"
            ))?;
            let mut n = 0;
            for b in st.query_map([], bead_from_row)? {
                let mut b = b?;
                b.labels = labels.remove(&b.id).unwrap_or_default();
                b.dependencies = deps.remove(&b.id).unwrap_or_default();
                b.comments = comments.remove(&b.id).unwrap_or_default();
                let line = Value::Object(bead_to_json(&b)).to_string();
                w.write_all(line.as_bytes())
                    .and_then(|_| w.write_all(b"\n"))
                    .map_err(|e| Error::io("write", "export", e))?;
                n += 1;
            }
            Ok(n)
        })?;
        w.flush().map_err(|e| Error::io("write", "export", e))?;
        Ok(n)
    }

    /// Exports to `path` atomically: a private temp file beside it, then a rename.
    pub fn export_to_file(&self, path: &Path) -> Result<usize> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".export-")
            .suffix(".jsonl.tmp")
            .tempfile_in(dir)
            .map_err(|e| Error::io("create a temp file in", dir, e))?;
        let mut out = std::io::BufWriter::new(tmp.as_file());
        let n = self.export_jsonl(&mut out)?;
        drop(out);
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io("sync", tmp.path(), e))?;
        tmp.persist(path)
            .map_err(|e| Error::io("rename into", path, e.error))?;
        Ok(n)
    }

    /// Whether changes since the last flush are waiting to reach `.beads/issues.jsonl`.
    pub fn export_dirty(&self) -> Result<bool> {
        let c = self.conn();
        Ok(meta_i64(c, "export_version")? != meta_i64(c, "flushed_version")?)
    }

    /// Writes `path` if the store changed since the last flush (or the file is missing).
    /// Returns whether it wrote.
    pub fn flush_jsonl(&self, path: &Path) -> Result<bool> {
        if !self.export_dirty()? && path.exists() {
            return Ok(false);
        }
        // The version read now is at most what the export below sees (it reads later), so
        // recording it can only under-state what was flushed, never over-state it.
        let version = meta_i64(self.conn(), "export_version")?;
        self.export_to_file(path)?;
        self.write_bookkeeping(|tx| {
            let flushed = meta_i64(tx.conn, "flushed_version")?;
            if version > flushed {
                meta_set(tx.conn, "flushed_version", &version.to_string())?;
            }
            Ok(())
        })?;
        Ok(true)
    }

    /// Takes the flusher slot if there is unflushed work and no live flusher holds it (a slot
    /// older than `stale_after` is taken over). True means: the caller must start a flusher.
    pub fn claim_flush_slot(&self, stale_after: Duration) -> Result<bool> {
        // A cheap read first, so commands that changed nothing never take the write lock.
        let slot_fresh = |c: &rusqlite::Connection, now_ns: i64| -> Result<bool> {
            Ok(meta_get(c, "flush_slot_ns")?
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|t| now_ns.saturating_sub(t) < stale_after.as_nanos() as i64))
        };
        if !self.export_dirty()? || slot_fresh(self.conn(), self.now_ns())? {
            return Ok(false);
        }
        self.write_bookkeeping(|tx| {
            let c = tx.conn;
            if meta_i64(c, "export_version")? == meta_i64(c, "flushed_version")? {
                return Ok(false);
            }
            if slot_fresh(c, tx.now_ns)? {
                return Ok(false);
            }
            meta_set(c, "flush_slot_ns", &tx.now_ns.to_string())?;
            Ok(true)
        })
    }

    /// Called by the flusher after a flush: keeps (and refreshes) the slot and returns true
    /// when more changes arrived meanwhile, else frees the slot.
    pub fn release_flush_slot(&self) -> Result<bool> {
        self.write_bookkeeping(|tx| {
            let c = tx.conn;
            if meta_i64(c, "export_version")? != meta_i64(c, "flushed_version")? {
                meta_set(c, "flush_slot_ns", &tx.now_ns.to_string())?;
                return Ok(true);
            }
            c.execute("DELETE FROM meta WHERE key = 'flush_slot_ns'", [])?;
            Ok(false)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{store, task};
    use super::super::NewBead;
    use super::*;

    const SAMPLE: &str = r#"{"id":"bd-a1b","title":"Parent epic","description":"Big","status":"open","priority":1,"issue_type":"epic","created_at":"2025-10-30T12:00:00.123456-07:00","created_by":"steve","updated_at":"2025-10-30T12:00:00.123456-07:00","labels":["backend","auth"],"compaction_level":0,"source_repo":"."}
{"id":"bd-a1b.1","title":"Child","status":"in_progress","priority":2,"issue_type":"task","assignee":"nux","created_at":"2025-10-30T12:01:00Z","updated_at":"2025-10-30T12:05:00Z","dependencies":[{"issue_id":"bd-a1b.1","depends_on_id":"bd-a1b","type":"parent-child","created_at":"2025-10-30T12:01:00Z","created_by":"steve"}],"comments":[{"id":7,"issue_id":"bd-a1b.1","author":"nux","text":"on it","created_at":"2025-10-30T12:02:00Z"}],"estimated_minutes":30}
{"id":"bd-c2d","title":"Closed one","status":"closed","priority":0,"issue_type":"bug","created_at":"2025-10-29T08:00:00Z","updated_at":"2025-10-29T09:00:00Z","closed_at":"2025-10-29T09:00:00Z","close_reason":"fixed","metadata":{"k":"v"}}
{"id":"bd-e3f","title":"Blocked by a1b.1","status":"open","priority":2,"issue_type":"task","created_at":"2025-10-29T08:00:00Z","updated_at":"2025-10-29T08:00:00Z","dependencies":[{"issue_id":"bd-e3f","depends_on_id":"bd-a1b.1","type":"blocks","created_at":"2025-10-29T08:00:00Z"}]}
{"id":"bd-g4h","title":"Tombstoned","status":"tombstone","priority":3,"issue_type":"role","created_at":"2025-10-29T08:00:00Z","updated_at":"2025-10-29T08:00:00Z","deleted_at":"2025-10-31T00:00:00Z"}
"#;

    fn import(s: &Store, text: &str) -> Result<ImportReport> {
        s.import_jsonl(text.as_bytes(), "issues.jsonl", "overseer")
    }

    fn parse_lines(text: &str) -> Vec<Value> {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn import_then_export_gives_the_same_records() {
        let s = store();
        let r = import(&s, SAMPLE).unwrap();
        assert_eq!(
            r,
            ImportReport {
                lines: 5,
                created: 5,
                updated: 0
            }
        );
        let mut out = Vec::new();
        assert_eq!(s.export_jsonl(&mut out).unwrap(), 5);
        let out = String::from_utf8(out).unwrap();
        let mut expected = parse_lines(SAMPLE);
        expected.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        // Labels come back sorted, as Beads writes them.
        expected[0]["labels"] = serde_json::json!(["auth", "backend"]);
        assert_eq!(parse_lines(&out), expected);
        // Readiness follows the imported graph: the epic is ready, its in-progress child
        // blocks bd-e3f, tombstones and foreign types are never ready.
        let ready: Vec<String> = s.ready(None).unwrap().into_iter().map(|b| b.id).collect();
        assert_eq!(ready, vec!["bd-a1b".to_string()]);
        // A second import of the same file updates in place.
        let r = import(&s, SAMPLE).unwrap();
        assert_eq!((r.created, r.updated), (0, 5));
        let mut again = Vec::new();
        s.export_jsonl(&mut again).unwrap();
        assert_eq!(String::from_utf8(again).unwrap(), out);
        // New children of an imported parent do not reuse imported numbers.
        let child = s
            .create(
                &NewBead {
                    parent: Some("bd-a1b".into()),
                    ..task("next")
                },
                "x",
            )
            .unwrap();
        assert_eq!(child.id, "bd-a1b.2");
    }

    #[test]
    fn a_bad_line_is_reported_and_nothing_is_imported() {
        let s = store();
        s.create(&task("existing"), "x").unwrap();
        let cases = [
            ("{\"id\":\"bd-1\",\"title\":\"ok\"}\n{not json\n", "issues.jsonl:2: not valid JSON"),
            ("{\"id\":\"bd-1\",\"title\":\"ok\"}\n\n{\"id\":\"bd-2\",\"title\":\"x\",\"priority\":\"high\"}\n", "issues.jsonl:3: priority: expected an integer"),
            ("{\"id\":\"bd-1\",\"title\":\"ok\",\"priority\":9}\n", "issues.jsonl:1: priority: 9 is out of range"),
            ("{\"id\":\"bd-1\"}\n", "issues.jsonl:1: title: missing or empty"),
            ("{\"title\":\"x\"}\n", "issues.jsonl:1: id: missing or empty"),
            ("{\"id\":\"no dash\",\"title\":\"x\"}\n", "issues.jsonl:1: id: 'no dash' is not a bead id"),
            ("{\"id\":\"bd-1\",\"title\":\"x\",\"created_at\":\"yesterday\"}\n", "issues.jsonl:1: created_at:"),
            ("{\"id\":\"bd-1\",\"title\":\"x\",\"labels\":\"a,b\"}\n", "issues.jsonl:1: labels: expected an array"),
            ("{\"id\":\"bd-1\",\"title\":\"x\",\"dependencies\":[{\"type\":\"blocks\"}]}\n", "issues.jsonl:1: dependencies[].depends_on_id: missing"),
            ("{\"id\":\"bd-1\",\"title\":\"a\"}\n{\"id\":\"bd-1\",\"title\":\"b\"}\n", "issues.jsonl:2: id: duplicate id 'bd-1' (first on line 1)"),
            ("[1,2]\n", "issues.jsonl:1: expected a JSON object"),
            (
                "{\"id\":\"bd-1\",\"title\":\"a\",\"dependencies\":[{\"depends_on_id\":\"bd-2\"}]}\n{\"id\":\"bd-2\",\"title\":\"b\",\"dependencies\":[{\"depends_on_id\":\"bd-1\"}]}\n",
                "cycle of blocking dependencies",
            ),
        ];
        for (text, want) in cases {
            let err = import(&s, text).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{want}");
            assert!(
                err.to_string().contains(want),
                "{err} should contain {want}"
            );
            assert_eq!(s.count().unwrap(), 1, "nothing half-imported for {want}");
        }
    }

    #[test]
    fn wisps_are_stored_but_never_exported() {
        let s = store();
        let w = s
            .create(
                &NewBead {
                    ephemeral: true,
                    ..task("wisp")
                },
                "x",
            )
            .unwrap();
        let kept = s.create(&task("kept"), "x").unwrap();
        assert!(s.get(&w.id).unwrap().ephemeral);
        let mut out = Vec::new();
        assert_eq!(s.export_jsonl(&mut out).unwrap(), 1);
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains(&kept.id) && !out.contains(&w.id));
    }

    #[test]
    fn flush_writes_only_when_dirty_and_slots_are_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("issues.jsonl");
        let s = store();
        s.create(&task("one"), "x").unwrap();
        assert!(s.export_dirty().unwrap());
        assert!(s.claim_flush_slot(Duration::from_secs(60)).unwrap());
        assert!(
            !s.claim_flush_slot(Duration::from_secs(60)).unwrap(),
            "one flusher at a time"
        );
        assert!(s.flush_jsonl(&path).unwrap());
        assert!(!s.export_dirty().unwrap());
        assert!(!s.release_flush_slot().unwrap());
        assert!(!s.flush_jsonl(&path).unwrap(), "nothing new to write");
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
        s.create(&task("two"), "x").unwrap();
        assert!(s.flush_jsonl(&path).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // A stale slot (its flusher died) is taken over.
        s.create(&task("three"), "x").unwrap();
        assert!(s.claim_flush_slot(Duration::from_secs(60)).unwrap());
        assert!(s.claim_flush_slot(Duration::ZERO).unwrap());
    }
}
