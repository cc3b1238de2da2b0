//! Where each runtime writes down what its model calls cost, and reading it incrementally.
//!
//! - Claude Code: `<config>/projects/<project>/<session-id>.jsonl` (`<config>` is
//!   `$CLAUDE_CONFIG_DIR`, else `~/.claude`): assistant lines with `message.usage` and
//!   `message.model`. One answer can be written as several lines (one per content block) with
//!   the same `message.id`: it counts once, with its last line's figures.
//! - Codex: `<CODEX_HOME>/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl`: `turn_context` lines
//!   name the model; Codex 0.171 writes a `token_usage_record` per model response (its
//!   `usage`, keyed by the response id). A file without those (older Codex) is counted from
//!   its `token_count` events' running total instead: each answer is the total's growth, so
//!   a repeated event adds nothing. Its input counts the cached part: that part is moved to
//!   cache reads.
//! - Gemini CLI: `~/.gemini/tmp/<project>/chats/session-<time>-<id prefix>.jsonl`: a first line
//!   naming the session, then one line per message, model answers with `tokens` and `model`
//!   (a message rewritten later keeps its id). Its input counts the cached part, its
//!   thoughts are output.
//! - The town's own format, for the `sim` agent and any runtime that wants to report: the file
//!   in the session's `GT_USAGE_FILE`, one JSON object per line: `{"id", "model",
//!   "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"}`.
//!
//! A file is read from where the last read stopped, complete lines only, at most `MAX_READ`
//! bytes at a time; a file that shrank was replaced and is read again from its start (the
//! records' keys make that count nothing twice).

use crate::beads::{Tokens, UsageRecord};
use serde_json::Value;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The environment variable that tells a session where to write its usage in the town's own
/// format.
pub const USAGE_FILE_ENV: &str = "GT_USAGE_FILE";

/// Most bytes one read takes from a file (the rest waits for the next).
pub const MAX_READ: u64 = 4 << 20;

/// How a record file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Claude,
    Codex,
    Gemini,
    /// The town's own (`GT_USAGE_FILE`).
    Town,
}

impl Format {
    /// The format of the records a program of this name writes, if the town knows it.
    pub fn of_program(name: &str) -> Option<Format> {
        match name {
            "claude" => Some(Format::Claude),
            "codex" => Some(Format::Codex),
            "gemini" => Some(Format::Gemini),
            _ => None,
        }
    }
}

/// What one read found.
#[derive(Debug, Default, PartialEq)]
pub struct Batch {
    pub records: Vec<UsageRecord>,
    /// Where the next read starts.
    pub offset: u64,
    /// What the reader carries to the next read (Codex: the model and the running total).
    pub state: String,
}

/// The file holding conversation `id` of a `format` program whose home directories are
/// `homes` (what the session's environment says: `HOME`, `CLAUDE_CONFIG_DIR`, `CODEX_HOME`).
pub fn find(format: Format, homes: &Homes, id: &str) -> Option<PathBuf> {
    if id.is_empty() || id.contains('/') {
        return None;
    }
    match format {
        Format::Claude => {
            let projects = homes.claude.join("projects");
            let name = format!("{id}.jsonl");
            subdirs(&projects)
                .into_iter()
                .map(|d| d.join(&name))
                .find(|p| p.is_file())
        }
        Format::Codex => {
            // The newest, should a resumed conversation have a file of its own.
            let suffix = format!("-{id}.jsonl");
            let mut found = None;
            for y in subdirs(&homes.codex.join("sessions")) {
                for m in subdirs(&y) {
                    for d in subdirs(&m) {
                        found = file_ending(&d, &suffix).or(found);
                    }
                }
            }
            found
        }
        Format::Gemini => {
            let suffix = format!("-{}.jsonl", &id[..id.len().min(8)]);
            let want = format!("\"sessionId\":\"{id}\"");
            subdirs(&homes.home.join(".gemini").join("tmp"))
                .into_iter()
                .filter_map(|p| file_ending(&p.join("chats"), &suffix))
                .find(|f| first_line(f).is_some_and(|l| l.contains(&want)))
        }
        Format::Town => None,
    }
}

/// The home directories a session's program writes under.
#[derive(Debug, Clone, PartialEq)]
pub struct Homes {
    pub home: PathBuf,
    pub claude: PathBuf,
    pub codex: PathBuf,
}

impl Homes {
    /// From the session's own environment (`env`), else the engine's.
    pub fn of_env(env: &[(String, String)]) -> Homes {
        let var = |k: &str| {
            env.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| PathBuf::from(v))
                .or_else(|| std::env::var_os(k).map(PathBuf::from))
                .filter(|p| !p.as_os_str().is_empty())
        };
        let home = var("HOME").unwrap_or_else(|| PathBuf::from("/"));
        Homes {
            claude: var("CLAUDE_CONFIG_DIR").unwrap_or_else(|| home.join(".claude")),
            codex: var("CODEX_HOME").unwrap_or_else(|| home.join(".codex")),
            home,
        }
    }
}

/// The directories in `dir`, sorted by name (none when it cannot be read).
pub(crate) fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn file_ending(dir: &Path, suffix: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_str().is_some_and(|s| s.ends_with(suffix)))
}

fn first_line(path: &Path) -> Option<String> {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(std::fs::File::open(path).ok()?)
        .read_line(&mut line)
        .ok()?;
    Some(line)
}

/// Reads what `path` gained since `offset` (complete lines only), continuing from `state`.
pub fn read_new(format: Format, path: &Path, offset: u64, state: &str) -> std::io::Result<Batch> {
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let (mut offset, mut state) = (offset, state.to_string());
    if size < offset {
        // Replaced by a shorter file: read it again from the start.
        (offset, state) = (0, String::new());
    }
    if size == offset {
        return Ok(Batch {
            records: Vec::new(),
            offset,
            state,
        });
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    file.take((size - offset).min(MAX_READ))
        .read_to_end(&mut buf)?;
    let whole = match memchr::memrchr(b'\n', &buf) {
        Some(i) => i + 1,
        // One line longer than a read: skip past it rather than stall on it.
        None if buf.len() as u64 >= MAX_READ => {
            return Ok(Batch {
                records: Vec::new(),
                offset: offset + buf.len() as u64,
                state,
            })
        }
        None => 0,
    };
    let mut reader = LineReader::new(format, path, &state);
    let mut at = offset;
    for line in buf[..whole].split_inclusive(|b| *b == b'\n') {
        if let Ok(v) = serde_json::from_slice::<Value>(line) {
            reader.line(&v, at);
        }
        at += line.len() as u64;
    }
    let state = reader.state();
    Ok(Batch {
        records: reader.records,
        offset: offset + whole as u64,
        state,
    })
}

/// The per-file memory of the Codex reader.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct CodexState {
    model: String,
    /// The running total of the last `token_count` event: input, cached, output, cache
    /// writes.
    total: [i64; 4],
    /// The file has per-response records: its `token_count` events are not counted.
    #[serde(default)]
    per_response: bool,
}

/// Codex's usage object (input counting its cached part) as tokens of each kind.
fn codex_tokens(u: &Value) -> [i64; 4] {
    [
        int(&u["input_tokens"]),
        int(&u["cached_input_tokens"]),
        int(&u["output_tokens"]),
        int(&u["cache_write_input_tokens"]),
    ]
}

fn codex_split([input, cached, output, written]: [i64; 4]) -> Tokens {
    Tokens {
        input: (input - cached - written).max(0),
        output,
        cache_read: cached,
        cache_write: written,
    }
}

struct LineReader<'a> {
    format: Format,
    path: &'a Path,
    codex: CodexState,
    /// Gemini's session id, from the file's first line.
    session: String,
    records: Vec<UsageRecord>,
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0).max(0)
}

fn at_ns(v: &Value) -> Option<i64> {
    let t = v["timestamp"].as_str()?;
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()?
        .timestamp_nanos_opt()
}

impl<'a> LineReader<'a> {
    fn new(format: Format, path: &'a Path, state: &str) -> LineReader<'a> {
        let (codex, session) = match format {
            Format::Codex => (
                serde_json::from_str(state).unwrap_or_default(),
                String::new(),
            ),
            _ => (CodexState::default(), state.to_string()),
        };
        LineReader {
            format,
            path,
            codex,
            session,
            records: Vec::new(),
        }
    }

    fn state(&self) -> String {
        match self.format {
            Format::Codex => serde_json::to_string(&self.codex).unwrap_or_default(),
            _ => self.session.clone(),
        }
    }

    fn push(&mut self, key: String, model: &str, tokens: Tokens, at_ns: Option<i64>) {
        if tokens.total() == 0 || model.is_empty() || model.starts_with('<') {
            return;
        }
        // A later line for the same answer replaces the earlier one.
        if let Some(r) = self.records.iter_mut().find(|r| r.key == key) {
            r.model = model.to_string();
            r.tokens = tokens;
            return;
        }
        self.records.push(UsageRecord {
            key,
            model: model.to_string(),
            tokens,
            at_ns,
        });
    }

    fn line(&mut self, v: &Value, at: u64) {
        match self.format {
            Format::Claude => {
                let m = &v["message"];
                if v["type"] != "assistant" || !m["usage"].is_object() {
                    return;
                }
                let u = &m["usage"];
                let id = m["id"].as_str().or(v["uuid"].as_str());
                let key = match id {
                    Some(id) => format!("claude:{id}"),
                    None => format!("{}#{at}", self.path.display()),
                };
                let tokens = Tokens {
                    input: int(&u["input_tokens"]),
                    output: int(&u["output_tokens"]),
                    cache_read: int(&u["cache_read_input_tokens"]),
                    cache_write: int(&u["cache_creation_input_tokens"]),
                };
                self.push(key, m["model"].as_str().unwrap_or(""), tokens, at_ns(v));
            }
            Format::Codex => {
                let p = &v["payload"];
                if v["type"] == "turn_context" {
                    if let Some(m) = p["model"].as_str() {
                        self.codex.model = m.to_string();
                    }
                    return;
                }
                let model = self.codex.model.clone();
                if v["type"] == "token_usage_record" && p["usage"].is_object() {
                    self.codex.per_response = true;
                    let id = |k: &str| p[k].as_str().unwrap_or("").to_string();
                    let key = match p["response_id"].as_str() {
                        Some(r) => format!("codex:{}:{}:{r}", id("thread_id"), id("turn_id")),
                        None => format!("codex:{}#{at}", self.path.display()),
                    };
                    let tokens = codex_split(codex_tokens(&p["usage"]));
                    self.push(key, &model, tokens, at_ns(v));
                    return;
                }
                if v["type"] != "event_msg" || p["type"] != "token_count" {
                    return;
                }
                let total = &p["info"]["total_token_usage"];
                if !total.is_object() || self.codex.per_response {
                    return;
                }
                let now = codex_tokens(total);
                let before = self.codex.total;
                // A total that went down is a new count (a conversation started over).
                let base = if now.iter().zip(before).any(|(n, b)| *n < b) {
                    [0; 4]
                } else {
                    before
                };
                self.codex.total = now;
                let grew = [0, 1, 2, 3].map(|i| now[i] - base[i]);
                let key = format!("codex:{}#{at}", self.path.display());
                self.push(key, &model, codex_split(grew), at_ns(v));
            }
            Format::Gemini => {
                if let Some(id) = v["sessionId"].as_str() {
                    if v["tokens"].is_null() {
                        self.session = id.to_string();
                        return;
                    }
                }
                let t = &v["tokens"];
                if !t.is_object() {
                    return;
                }
                let Some(id) = v["id"].as_str() else { return };
                let cached = int(&t["cached"]);
                let tokens = Tokens {
                    input: (int(&t["input"]) - cached).max(0) + int(&t["tool"]),
                    output: int(&t["output"]) + int(&t["thoughts"]),
                    cache_read: cached,
                    cache_write: 0,
                };
                let key = format!("gemini:{}:{id}", self.session);
                self.push(key, v["model"].as_str().unwrap_or(""), tokens, at_ns(v));
            }
            Format::Town => {
                let key = match v["id"].as_str() {
                    Some(id) => format!("town:{}:{id}", self.path.display()),
                    None => format!("town:{}#{at}", self.path.display()),
                };
                let tokens = Tokens {
                    input: int(&v["input_tokens"]),
                    output: int(&v["output_tokens"]),
                    cache_read: int(&v["cache_read_tokens"]),
                    cache_write: int(&v["cache_write_tokens"]),
                };
                self.push(key, v["model"].as_str().unwrap_or(""), tokens, at_ns(v));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines in the shapes the real CLIs wrote against the scripted model servers (Claude Code
    /// 2.1.197, Codex 0.171.0, Gemini CLI 0.61.0), cut down to the fields that matter.
    const CLAUDE: &str = r#"{"type":"user","message":{"role":"user","content":"go"},"uuid":"u1"}
{"type":"assistant","timestamp":"2026-12-04T18:29:47.204Z","message":{"id":"msg_1","model":"claude-opus-4-8","content":[{"type":"thinking"}],"usage":{"input_tokens":1200,"cache_creation_input_tokens":100,"cache_read_input_tokens":200,"output_tokens":1}}}
{"type":"assistant","timestamp":"2026-12-04T18:29:47.300Z","message":{"id":"msg_1","model":"claude-opus-4-8","content":[{"type":"text"}],"usage":{"input_tokens":1200,"cache_creation_input_tokens":100,"cache_read_input_tokens":200,"output_tokens":34}}}
{"type":"assistant","message":{"id":"msg_2","model":"<synthetic>","usage":{"input_tokens":0,"output_tokens":0}}}
{"type":"assistant","message":{"id":"msg_3","model":"claude-opus-4-8","usage":{"input_tokens":5,"output_tokens":6}}}
"#;

    const CODEX: &str = r#"{"type":"session_meta","payload":{"id":"t1","cwd":"/w"}}
{"type":"turn_context","payload":{"model":"gpt-5.5"}}
{"timestamp":"2026-12-04T18:30:01.591Z","type":"token_usage_record","payload":{"thread_id":"t1","turn_id":"u1","response_id":"resp_1","usage":{"input_tokens":1200,"cached_input_tokens":200,"cache_write_input_tokens":0,"output_tokens":34,"reasoning_output_tokens":5,"total_tokens":1234}}}
{"type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":1200,"cached_input_tokens":200,"output_tokens":34}}}}
"#;

    const CODEX_OLD: &str = r#"{"type":"turn_context","payload":{"model":"gpt-5"}}
{"type":"event_msg","payload":{"type":"token_count","info":null}}
{"type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":100,"cached_input_tokens":40,"output_tokens":10}}}}
{"type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":100,"cached_input_tokens":40,"output_tokens":10}}}}
{"type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":250,"cached_input_tokens":90,"output_tokens":30}}}}
"#;

    const GEMINI: &str = r#"{"sessionId":"27937492-f558","projectHash":"abb2","kind":"main"}
{"id":"m0","type":"user","content":[{"text":"go"}]}
{"id":"m1","timestamp":"2026-12-04T18:30:12.201Z","type":"gemini","content":"","tokens":{"input":1200,"output":34,"cached":200,"thoughts":5,"tool":0,"total":1239},"model":"gemini-3.8-flash"}
{"$set":{"lastUpdated":"2026-12-04T18:30:12.201Z"}}
{"id":"m1","timestamp":"2026-12-04T18:30:12.201Z","type":"gemini","content":"","tokens":{"input":1200,"output":34,"cached":200,"thoughts":5,"tool":0,"total":1239},"model":"gemini-3.8-flash","toolCalls":[]}
{"$set":{"messages":[{"id":"m1","tokens":{"input":1200,"output":34}}]}}
"#;

    fn read_all(format: Format, text: &str) -> Batch {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        std::fs::write(&path, text).unwrap();
        read_new(format, &path, 0, "").unwrap()
    }

    #[test]
    fn claude_counts_each_answer_once_with_its_last_lines_figures() {
        let b = read_all(Format::Claude, CLAUDE);
        assert_eq!(b.records.len(), 2, "{:?}", b.records);
        let first = &b.records[0];
        assert_eq!(first.key, "claude:msg_1");
        assert_eq!(first.model, "claude-opus-4-8");
        assert_eq!(
            first.tokens,
            Tokens {
                input: 1200,
                output: 34,
                cache_read: 200,
                cache_write: 100
            }
        );
        assert!(first.at_ns.is_some());
        assert_eq!(b.offset, CLAUDE.len() as u64);
    }

    #[test]
    fn codex_counts_its_per_response_records_and_moves_cached_input_to_cache_reads() {
        let b = read_all(Format::Codex, CODEX);
        assert_eq!(
            b.records.len(),
            1,
            "the token_count after the record adds nothing"
        );
        assert_eq!(b.records[0].model, "gpt-5.5");
        assert_eq!(b.records[0].key, "codex:t1:u1:resp_1");
        assert_eq!(
            b.records[0].tokens,
            Tokens {
                input: 1000,
                output: 34,
                cache_read: 200,
                cache_write: 0
            }
        );
        // An older Codex: the running total's growth, a repeated event adding nothing.
        let old = read_all(Format::Codex, CODEX_OLD);
        let got: Vec<Tokens> = old.records.iter().map(|r| r.tokens).collect();
        assert_eq!(
            got,
            vec![
                Tokens {
                    input: 60,
                    output: 10,
                    cache_read: 40,
                    cache_write: 0
                },
                Tokens {
                    input: 100,
                    output: 20,
                    cache_read: 50,
                    cache_write: 0
                }
            ]
        );
    }

    #[test]
    fn gemini_counts_a_rewritten_message_once_and_its_thoughts_as_output() {
        let b = read_all(Format::Gemini, GEMINI);
        assert_eq!(b.records.len(), 1, "{:?}", b.records);
        assert_eq!(b.records[0].key, "gemini:27937492-f558:m1");
        assert_eq!(b.records[0].tokens.total(), 1239);
        assert_eq!(b.records[0].tokens.output, 39);
        assert_eq!(b.records[0].tokens.cache_read, 200);
        assert_eq!(b.state, "27937492-f558");
    }

    #[test]
    fn a_file_is_read_on_from_where_it_stopped_and_a_half_written_line_waits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.jsonl");
        let one = "{\"id\":\"a\",\"model\":\"sim\",\"input_tokens\":3,\"output_tokens\":4}\n";
        let half = "{\"id\":\"b\",\"model\":\"sim\",\"input_";
        std::fs::write(&path, format!("{one}{half}")).unwrap();
        let b = read_new(Format::Town, &path, 0, "").unwrap();
        assert_eq!(b.records.len(), 1);
        assert_eq!(b.offset, one.len() as u64, "the half line is not read yet");
        std::fs::write(&path, format!("{one}{half}tokens\":1}}\n")).unwrap();
        let b2 = read_new(Format::Town, &path, b.offset, &b.state).unwrap();
        assert_eq!(b2.records.len(), 1);
        assert_eq!(b2.records[0].tokens.input, 1);
        // A file replaced by a shorter one is read from its start.
        std::fs::write(&path, one).unwrap();
        let b3 = read_new(Format::Town, &path, b2.offset, "").unwrap();
        assert_eq!(b3.records.len(), 1);
        assert_eq!(b3.offset, one.len() as u64);
    }

    #[test]
    fn each_runtimes_file_is_found_by_its_conversation_id() {
        let home = tempfile::tempdir().unwrap();
        let h = Homes::of_env(&[("HOME".into(), home.path().display().to_string())]);
        let put = |rel: &str, text: &str| {
            let p = home.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
            p
        };
        let claude = put(".claude/projects/-w-nux/abc-123.jsonl", "");
        let codex = put(
            ".codex/sessions/2026/12/04/rollout-2026-12-04T18-30-01-t1.jsonl",
            "",
        );
        let gemini = put(
            ".gemini/tmp/nux/chats/session-2026-12-04T18-30-27937492.jsonl",
            "{\"sessionId\":\"27937492-f558\"}\n",
        );
        put(
            ".gemini/tmp/other/chats/session-2026-12-04T18-31-27937492.jsonl",
            "{\"sessionId\":\"27937492-ffff\"}\n",
        );
        assert_eq!(find(Format::Claude, &h, "abc-123"), Some(claude));
        assert_eq!(find(Format::Codex, &h, "t1"), Some(codex));
        assert_eq!(find(Format::Gemini, &h, "27937492-f558"), Some(gemini));
        assert_eq!(find(Format::Claude, &h, "missing"), None);
        assert_eq!(find(Format::Claude, &h, "../x"), None);
    }
}
