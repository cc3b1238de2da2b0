//! A scripted OpenAI Responses API, as Codex CLI (0.171) speaks it.
//!
//! Codex sends every model call as `POST <base_url>/responses` with `"stream": true` and reads
//! server-sent events back: `response.created`, then each output item as
//! `response.output_item.added` .. deltas .. `response.output_item.done`, then
//! `response.completed` carrying the usage. The conversation so far is the request's `input`:
//! developer and user messages (Codex injects some of its own, see [`INJECTED`]), the
//! assistant's earlier messages and tool calls, and the tools' outputs
//! (`function_call_output` / `custom_tool_call_output`).
//!
//! A turn's action becomes the tool Codex offered for it in the request's `tools`: a shell
//! command is a call of the `exec_command` function (the "unified exec" tool; `shell` or
//! `shell_command` when offered instead), a file write is a call of the freeform
//! `apply_patch` custom tool with an `*** Add File` patch, and a saying is a final assistant
//! message. The title Codex asks for after the first prompt (a request with a JSON schema
//! output format and `thread_source: thread_title`) is answered as a side request.

#![allow(dead_code)]

use crate::models::{Action, Incoming, Outgoing, Script, Server, Turn};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The usage every answer reports, so a test can look for these numbers in Codex's
/// rollout (`token_count` events) and status line.
pub const INPUT_TOKENS: u64 = 1200;
pub const CACHED_TOKENS: u64 = 200;
pub const OUTPUT_TOKENS: u64 = 34;
pub const REASONING_TOKENS: u64 = 5;
pub const TOTAL_TOKENS: u64 = INPUT_TOKENS + OUTPUT_TOKENS;

/// The title given to Codex's title request.
pub const TITLE: &str = "Scripted task";

/// How the user-role messages Codex writes itself begin; they are context, not prompts.
pub const INJECTED: &[&str] = &[
    "<environment_context>",
    "<permissions instructions>",
    "<skills_instructions>",
    "<apps_instructions>",
    "<plugins_instructions>",
    "<user_instructions>",
    "<user_shell_command>",
    "<turn_aborted>",
    "<collaboration_mode>",
    "# AGENTS.md instructions",
];

/// Starts a server answering Codex's requests with `script`.
pub fn start(script: Script) -> Server {
    let ids = Arc::new(AtomicU64::new(0));
    Server::start(move |req| handle(&script, &ids, req))
}

fn handle(script: &Script, ids: &AtomicU64, req: &Incoming) -> Outgoing {
    let path = req.url.split('?').next().unwrap_or("");
    let n = ids.fetch_add(1, Ordering::Relaxed) + 1;
    match (req.method, path) {
        ("POST", p) if p.ends_with("/responses") => {
            if is_title_request(req.body) {
                let mut out = stream(
                    n,
                    Item::Message(json!({ "title": TITLE }).to_string()),
                    None,
                );
                out.side = true;
                out
            } else {
                let turn = turn_of(req.body);
                let action = script(&turn);
                let item = item_for(&action, req.body);
                stream(n, item, Some(action))
            }
        }
        ("POST", p) if p.ends_with("/responses/compact") => {
            Outgoing::json(&json!({ "output": [] }))
        }
        ("GET", p) if p.ends_with("/models") => Outgoing::json(&json!({ "models": [] })),
        _ => Outgoing::json(&json!({})),
    }
}

/// Whether a request is Codex's request for a thread title rather than a turn.
pub fn is_title_request(body: &Value) -> bool {
    let schema_title = body
        .pointer("/text/format/schema/properties/title")
        .is_some();
    let source_title = body
        .pointer("/client_metadata/x-codex-turn-metadata")
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|m| {
            m.get("thread_source")
                .and_then(Value::as_str)
                .map(String::from)
        })
        .is_some_and(|s| s == "thread_title");
    schema_title || source_title
}

/// The text of a message item's `input_text` / `output_text` parts, joined.
fn message_text(item: &Value) -> String {
    match item.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// A tool output's text: a string, or the text parts of a content list.
fn output_text(item: &Value) -> String {
    crate::models::text_of(item.get("output"))
}

/// Whether a user message is one of the context blocks Codex injects.
pub fn is_injected(text: &str) -> bool {
    let t = text.trim_start();
    INJECTED.iter().any(|p| t.starts_with(p))
}

/// The turn a request's `input` describes.
pub fn turn_of(body: &Value) -> Turn {
    let mut turn = Turn::default();
    let items = body
        .get("input")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for item in &items {
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message");
        let role = item.get("role").and_then(Value::as_str).unwrap_or("");
        match kind {
            "message" if role == "user" => {
                let text = message_text(item);
                if !is_injected(&text) {
                    turn.prompt = text.clone();
                    turn.user_texts.push(text);
                    turn.results.clear();
                }
            }
            "function_call_output" | "custom_tool_call_output" => {
                turn.results.push(output_text(item));
            }
            _ => {}
        }
    }
    turn
}

/// One output item of an answer.
enum Item {
    Message(String),
    /// A function call: name, JSON arguments.
    Function(String, Value),
    /// A custom (freeform) tool call: name, input text.
    Custom(String, String),
}

/// The tool Codex offered with `name`, as `(type, name)`.
fn offered(body: &Value, name: &str) -> Option<String> {
    body.get("tools")
        .and_then(Value::as_array)?
        .iter()
        .find(|t| t.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|t| t.get("type").and_then(Value::as_str).map(String::from))
}

/// An `apply_patch` patch that creates (or replaces) `path` with `content`.
pub fn add_file_patch(path: &str, content: &str) -> String {
    let mut patch = format!("*** Begin Patch\n*** Add File: {path}\n");
    for line in content.lines() {
        patch.push('+');
        patch.push_str(line);
        patch.push('\n');
    }
    patch.push_str("*** End Patch\n");
    patch
}

/// The shell call for `cmd` with whichever shell tool the request offers.
fn shell_item(cmd: &str, body: &Value) -> Item {
    if offered(body, "exec_command").is_some() {
        Item::Function("exec_command".into(), json!({ "cmd": cmd }))
    } else if offered(body, "shell_command").is_some() {
        Item::Function("shell_command".into(), json!({ "command": cmd }))
    } else {
        Item::Function("shell".into(), json!({ "command": ["bash", "-lc", cmd] }))
    }
}

fn item_for(action: &Action, body: &Value) -> Item {
    match action {
        Action::Say(text) => Item::Message(text.clone()),
        Action::Shell(cmd) => shell_item(cmd, body),
        Action::Write { path, content } => {
            let patch = add_file_patch(path, content);
            match offered(body, "apply_patch").as_deref() {
                Some("custom") => Item::Custom("apply_patch".into(), patch),
                Some(_) => Item::Function("apply_patch".into(), json!({ "input": patch })),
                // No edit tool: a here-document through the shell (Codex runs
                // `apply_patch` given to its shell as its own patch tool too).
                None => shell_item(&format!("apply_patch <<'GT_PATCH'\n{patch}GT_PATCH"), body),
            }
        }
    }
}

fn usage() -> Value {
    json!({
        "input_tokens": INPUT_TOKENS,
        "input_tokens_details": { "cached_tokens": CACHED_TOKENS },
        "output_tokens": OUTPUT_TOKENS,
        "output_tokens_details": { "reasoning_tokens": REASONING_TOKENS },
        "total_tokens": TOTAL_TOKENS,
    })
}

/// The event stream of an answer with one output item.
fn stream(n: u64, item: Item, action: Option<Action>) -> Outgoing {
    let resp_id = format!("resp_{n}");
    let mut events: Vec<(&str, Value)> = vec![(
        "response.created",
        json!({
            "type": "response.created",
            "response": { "id": resp_id, "object": "response", "status": "in_progress" },
        }),
    )];
    let done = match item {
        Item::Message(text) => {
            let id = format!("msg_{n}");
            events.push((
                "response.output_item.added",
                json!({
                    "type": "response.output_item.added",
                    "output_index": 0,
                    "item": { "type": "message", "id": id, "role": "assistant",
                              "status": "in_progress", "content": [] },
                }),
            ));
            // Two deltas, as a model streams.
            let mid = text
                .char_indices()
                .nth(text.chars().count() / 2)
                .map_or(text.len(), |(i, _)| i);
            for part in [&text[..mid], &text[mid..]] {
                if !part.is_empty() {
                    events.push((
                        "response.output_text.delta",
                        json!({
                            "type": "response.output_text.delta",
                            "item_id": id, "output_index": 0, "content_index": 0,
                            "delta": part,
                        }),
                    ));
                }
            }
            json!({
                "type": "message", "id": id, "role": "assistant", "status": "completed",
                "content": [{ "type": "output_text", "text": text, "annotations": [] }],
            })
        }
        Item::Function(name, args) => {
            let id = format!("fc_{n}");
            let args = args.to_string();
            events.push((
                "response.output_item.added",
                json!({
                    "type": "response.output_item.added",
                    "output_index": 0,
                    "item": { "type": "function_call", "id": id, "call_id": format!("call_{n}"),
                              "name": name, "arguments": "", "status": "in_progress" },
                }),
            ));
            events.push((
                "response.function_call_arguments.delta",
                json!({
                    "type": "response.function_call_arguments.delta",
                    "item_id": id, "output_index": 0, "delta": args,
                }),
            ));
            json!({
                "type": "function_call", "id": id, "call_id": format!("call_{n}"),
                "name": name, "arguments": args, "status": "completed",
            })
        }
        Item::Custom(name, input) => {
            let id = format!("ctc_{n}");
            events.push((
                "response.output_item.added",
                json!({
                    "type": "response.output_item.added",
                    "output_index": 0,
                    "item": { "type": "custom_tool_call", "id": id, "call_id": format!("call_{n}"),
                              "name": name, "input": "", "status": "in_progress" },
                }),
            ));
            events.push((
                "response.custom_tool_call_input.delta",
                json!({
                    "type": "response.custom_tool_call_input.delta",
                    "item_id": id, "output_index": 0, "delta": input,
                }),
            ));
            json!({
                "type": "custom_tool_call", "id": id, "call_id": format!("call_{n}"),
                "name": name, "input": input, "status": "completed",
            })
        }
    };
    events.push((
        "response.output_item.done",
        json!({ "type": "response.output_item.done", "output_index": 0, "item": done }),
    ));
    events.push((
        "response.completed",
        json!({
            "type": "response.completed",
            "response": {
                "id": resp_id, "object": "response", "status": "completed",
                "output": [done], "usage": usage(),
            },
        }),
    ));
    Outgoing::sse(&events, action)
}
