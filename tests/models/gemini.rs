//! A scripted Gemini API (`generateContent`), as Gemini CLI (0.61) speaks it.
//!
//! Gemini CLI, with `GOOGLE_GEMINI_BASE_URL` pointing here and `GEMINI_API_KEY` set (the key
//! comes as the `x-goog-api-key` header), sends each turn of the conversation as
//! `POST /v1beta/models/<model>:streamGenerateContent?alt=sse` with the tools it offers in
//! `tools[].functionDeclarations`, and reads server-sent events back: `data: {candidates:
//! [{content: {role: "model", parts: [...]}, finishReason}], usageMetadata}` chunks. The
//! conversation so far is the request's `contents`: user contents whose parts are texts (the
//! first one carries the `<session_context>` block Gemini writes itself, see [`INJECTED`],
//! and the prompt as a separate part) or `functionResponse`s, and model contents with the
//! earlier answers' texts and `functionCall`s.
//!
//! A turn's action becomes a call of the tool Gemini offered for it: a shell command is
//! `run_shell_command {command, description}`, a file write is `write_file {file_path,
//! content}` with an absolute path (Gemini resolves it against its workspace, which the
//! `<session_context>` names, or the folder given to [`start_in`]), and a saying is a text
//! answer.
//!
//! Everything else is a side request and gets a short valid answer: the model router
//! (`:generateContent` with a `responseJsonSchema` asking for a complexity score), the
//! next-speaker and loop checks (JSON schemas too: any schema is answered by an object
//! that fills it), the session summary for the sessions list (a plain `:generateContent`
//! asking to "Summarize the user's primary intent"), and `:countTokens`.

#![allow(dead_code)]

use crate::models::{Action, Incoming, Outgoing, Script, Server, Turn};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The usage every answer reports (`usageMetadata`), so a test can look for these numbers
/// in Gemini's session file (`tokens: {input, output, cached, thoughts, total}`).
pub const PROMPT_TOKENS: u64 = 1200;
pub const CACHED_TOKENS: u64 = 200;
pub const CANDIDATES_TOKENS: u64 = 34;
pub const THOUGHTS_TOKENS: u64 = 5;
pub const TOTAL_TOKENS: u64 = PROMPT_TOKENS + CANDIDATES_TOKENS + THOUGHTS_TOKENS;

/// The model version the answers name.
pub const MODEL_VERSION: &str = "gemini-scripted";

/// The answer to the session-summary request.
pub const SUMMARY: &str = "Scripted task";

/// How the user texts Gemini writes itself begin; they are context, not prompts.
pub const INJECTED: &[&str] = &["<session_context>", "<hook_context>", "<state_snapshot>"];

/// User texts Gemini writes itself whole (its continuation sentinel).
pub const INJECTED_EXACT: &[&str] = &["Please continue.", "System: Please continue."];

/// Starts a server answering Gemini CLI's requests with `script`; the working directory
/// for relative write paths is taken from each request's `<session_context>`.
pub fn start(script: Script) -> Server {
    start_with(script, None, Duration::ZERO)
}

/// As [`start`], with `cwd` as the working directory when a request names none.
pub fn start_in(script: Script, cwd: &Path) -> Server {
    start_with(script, Some(cwd.to_path_buf()), Duration::ZERO)
}

/// As [`start`], waiting `delay` before answering each turn (so the CLI shows its busy
/// screen for that long).
pub fn start_with(script: Script, cwd: Option<PathBuf>, delay: Duration) -> Server {
    let ids = Arc::new(AtomicU64::new(0));
    Server::start(move |req| {
        let out = handle(&script, cwd.as_deref(), &ids, req);
        if !out.side && !delay.is_zero() {
            std::thread::sleep(delay);
        }
        out
    })
}

fn handle(script: &Script, cwd: Option<&Path>, ids: &AtomicU64, req: &Incoming) -> Outgoing {
    let path = req.url.split('?').next().unwrap_or("");
    let n = ids.fetch_add(1, Ordering::Relaxed) + 1;
    if req.method != "POST" {
        return Outgoing::json(&json!({}));
    }
    if path.ends_with(":countTokens") {
        return Outgoing::json(&json!({ "totalTokens": PROMPT_TOKENS }));
    }
    let streaming = path.ends_with(":streamGenerateContent");
    if !streaming && !path.ends_with(":generateContent") {
        return Outgoing::json(&json!({}));
    }
    if is_turn(req.body) {
        let turn = turn_of(req.body);
        let action = script(&turn);
        let parts = parts_for(&action, req.body, cwd);
        let mut out = answer(n, parts, streaming);
        out.side = false;
        out.action = Some(action);
        out
    } else {
        let text = side_answer(req.body);
        let mut out = answer(n, vec![json!({ "text": text })], streaming);
        out.side = true;
        out
    }
}

/// Whether a request is a turn of the agent's conversation: it offers tools and asks for
/// no JSON schema. (The router, the next-speaker and loop checks and the summary offer no
/// tools.)
pub fn is_turn(body: &Value) -> bool {
    !offered_tools(body).is_empty() && schema_of(body).is_none()
}

/// The JSON schema a request asks its answer to follow, if any.
pub fn schema_of(body: &Value) -> Option<&Value> {
    let gc = body.get("generationConfig")?;
    gc.get("responseJsonSchema")
        .or_else(|| gc.get("responseSchema"))
        .filter(|s| !s.is_null())
}

/// Whether a request is Gemini's request for a session summary.
pub fn is_summary_request(body: &Value) -> bool {
    user_texts_raw(body)
        .iter()
        .any(|t| t.starts_with("Summarize the user's primary intent"))
}

/// The answer text of a side request.
fn side_answer(body: &Value) -> String {
    if let Some(schema) = schema_of(body) {
        fill_schema(schema).to_string()
    } else if is_summary_request(body) {
        SUMMARY.to_string()
    } else {
        "OK".to_string()
    }
}

/// A value that satisfies `schema` (the OpenAPI-style subset Gemini sends): objects with
/// all their properties, the first of an enum, "scripted" for strings, 1 for integers
/// (a complexity score of 1 routes to the light model), 0 for numbers (no loop), false,
/// empty arrays.
pub fn fill_schema(schema: &Value) -> Value {
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    let kind = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    match kind.as_str() {
        "object" => {
            let mut obj = Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, v) in props {
                    obj.insert(k.clone(), fill_schema(v));
                }
            }
            Value::Object(obj)
        }
        "string" => json!("scripted"),
        "integer" => json!(1),
        "number" => json!(0),
        "boolean" => json!(false),
        "array" => json!([]),
        _ => Value::Null,
    }
}

/// The names of the functions a request offers.
pub fn offered_tools(body: &Value) -> Vec<String> {
    body.get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("functionDeclarations").and_then(Value::as_array))
        .flatten()
        .filter_map(|f| f.get("name").and_then(Value::as_str).map(String::from))
        .collect()
}

fn offered(body: &Value, name: &str) -> bool {
    offered_tools(body).iter().any(|n| n == name)
}

/// Whether a user text is one Gemini writes itself.
pub fn is_injected(text: &str) -> bool {
    let t = text.trim();
    INJECTED.iter().any(|p| t.starts_with(p)) || INJECTED_EXACT.contains(&t)
}

/// Every text part of the request's user contents, injected ones included.
fn user_texts_raw(body: &Value) -> Vec<String> {
    contents(body)
        .iter()
        .filter(|c| c.get("role").and_then(Value::as_str).unwrap_or("user") == "user")
        .flat_map(parts)
        .filter_map(|p| p.get("text").and_then(Value::as_str).map(String::from))
        .collect()
}

fn contents(body: &Value) -> Vec<Value> {
    body.get("contents")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn parts(content: &Value) -> Vec<Value> {
    content
        .get("parts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// A `functionResponse`'s output: its `response.output` (or `error`) string, else the
/// response as JSON.
fn response_text(fr: &Value) -> String {
    let resp = fr.get("response").cloned().unwrap_or(Value::Null);
    for key in ["output", "error"] {
        if let Some(s) = resp.get(key).and_then(Value::as_str) {
            return s.to_string();
        }
    }
    match resp {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// The turn a request's `contents` describes.
pub fn turn_of(body: &Value) -> Turn {
    let mut turn = Turn::default();
    for content in contents(body) {
        if content
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("user")
            != "user"
        {
            continue;
        }
        for part in parts(&content) {
            if let Some(fr) = part.get("functionResponse") {
                turn.results.push(response_text(fr));
            } else if let Some(text) = part.get("text").and_then(Value::as_str) {
                if !is_injected(text) {
                    turn.prompt = text.to_string();
                    turn.user_texts.push(text.to_string());
                    turn.results.clear();
                }
            }
        }
    }
    turn
}

/// The workspace folder a request's `<session_context>` names (its first "Workspace
/// Directories" entry).
pub fn workspace_of(body: &Value) -> Option<PathBuf> {
    let ctx = user_texts_raw(body)
        .into_iter()
        .find(|t| t.trim_start().starts_with("<session_context>"))?;
    let mut lines = ctx
        .lines()
        .skip_while(|l| !l.contains("**Workspace Directories:**"));
    lines.next()?;
    let first = lines.next()?.trim();
    first.strip_prefix("- ").map(|p| PathBuf::from(p.trim()))
}

/// The model's parts for an action, with the tools the request offers.
fn parts_for(action: &Action, body: &Value, cwd: Option<&Path>) -> Vec<Value> {
    match action {
        Action::Say(text) => vec![json!({ "text": text })],
        Action::Shell(cmd) => vec![shell_call(cmd, body)],
        Action::Write { path, content } => {
            let abs = if Path::new(path).is_absolute() {
                PathBuf::from(path)
            } else {
                match workspace_of(body).or_else(|| cwd.map(Path::to_path_buf)) {
                    Some(dir) => dir.join(path),
                    None => PathBuf::from(path),
                }
            };
            if offered(body, "write_file") {
                vec![json!({ "functionCall": {
                    "name": "write_file",
                    "args": { "file_path": abs.display().to_string(), "content": content },
                } })]
            } else {
                // No edit tool: a here-document through the shell.
                let dir = abs
                    .parent()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default();
                let cmd = format!(
                    "mkdir -p '{dir}' && cat > '{}' <<'GT_EOF'\n{content}GT_EOF",
                    abs.display()
                );
                vec![shell_call(&cmd, body)]
            }
        }
    }
}

fn shell_call(cmd: &str, body: &Value) -> Value {
    if offered(body, "run_shell_command") {
        json!({ "functionCall": {
            "name": "run_shell_command",
            "args": { "command": cmd, "description": "Run a scripted command" },
        } })
    } else {
        json!({ "text": format!("(no shell tool offered to run `{cmd}`)") })
    }
}

pub fn usage() -> Value {
    json!({
        "promptTokenCount": PROMPT_TOKENS,
        "cachedContentTokenCount": CACHED_TOKENS,
        "candidatesTokenCount": CANDIDATES_TOKENS,
        "thoughtsTokenCount": THOUGHTS_TOKENS,
        "totalTokenCount": TOTAL_TOKENS,
    })
}

fn chunk(n: u64, parts: Vec<Value>, finish: bool) -> Value {
    let mut candidate = json!({
        "content": { "role": "model", "parts": parts },
        "index": 0,
    });
    if finish {
        candidate["finishReason"] = json!("STOP");
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": usage(),
        "modelVersion": MODEL_VERSION,
        "responseId": format!("resp_{n}"),
    })
}

/// An answer with `parts`: one JSON response, or server-sent events where a lone text is
/// split in two chunks, as a model streams.
fn answer(n: u64, parts: Vec<Value>, streaming: bool) -> Outgoing {
    if !streaming {
        let mut out = Outgoing::json(&chunk(n, parts, true));
        out.side = true;
        return out;
    }
    let text = match parts.as_slice() {
        [p] => p.get("text").and_then(Value::as_str).map(String::from),
        _ => None,
    };
    let events: Vec<(&str, Value)> = match text {
        Some(text) if text.chars().count() > 1 => {
            let mid = text
                .char_indices()
                .nth(text.chars().count() / 2)
                .map_or(text.len(), |(i, _)| i);
            vec![
                ("", chunk(n, vec![json!({ "text": &text[..mid] })], false)),
                ("", chunk(n, vec![json!({ "text": &text[mid..] })], true)),
            ]
        }
        _ => vec![("", chunk(n, parts, true))],
    };
    Outgoing::sse(&events, None)
}
