//! Reading a `.formula.toml`: syntax (toml_edit, for spans), shape (serde with
//! `deny_unknown_fields`), then the semantic checks (names, ids, needs, cycles, placeholders).
//! Every error reads `<file>:<line>: <dotted key>: <what is wrong>`, the key written with
//! array indexes where it is inside `[[steps]]` (`steps[2].needs`, counted from 0).

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;
use toml_edit::{Item, TableLike, Value};

use super::{Formula, FormulaType, Source, Step, Var, FILE_SUFFIX};
use crate::town::diag::{dotted, first_line, line_col, syntax_error};
use crate::{Error, Result};

/// `{{ name }}`: anything between double braces is a placeholder.
static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\{\{([^{}]*)\}\}").unwrap_or_else(|e| panic!("placeholder regex: {e}"))
});

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFormula {
    formula: Spanned<String>,
    description: Spanned<String>,
    version: Spanned<i64>,
    #[serde(rename = "type", default)]
    kind: FormulaType,
    #[serde(default)]
    vars: BTreeMap<String, Spanned<RawVar>>,
    steps: Spanned<Vec<Spanned<RawStep>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVar {
    #[serde(default)]
    description: String,
    default: Option<String>,
    #[serde(default)]
    required: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: Spanned<String>,
    title: Spanned<String>,
    description: Option<Spanned<String>>,
    #[serde(default)]
    needs: Vec<Spanned<String>>,
    acceptance: Option<Spanned<String>>,
}

/// One segment of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// `steps[2].needs`, `vars.bead`, `"odd key".x`.
pub(crate) fn render_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&dotted(&[k]));
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

fn step_key(i: usize, k: &str) -> Vec<Seg> {
    vec![key("steps"), Seg::Index(i), key(k)]
}

/// One problem found in a file: where (byte offset) and under which key.
struct Problem {
    pos: usize,
    path: Vec<Seg>,
    msg: String,
}

struct Ctx<'a> {
    file: &'a Path,
    src: &'a str,
}

impl Ctx<'_> {
    fn error(&self, pos: usize, path: &[Seg], msg: &str) -> Error {
        let line = line_col(self.src, pos).0;
        let file = self.file.display();
        if path.is_empty() {
            Error::BadInput(format!("{file}:{line}: {msg}"))
        } else {
            Error::BadInput(format!("{file}:{line}: {}: {msg}", render_path(path)))
        }
    }
}

/// Whether `name` can name a formula (and so be a file name): lowercase letters, digits,
/// `-` and `_`, starting with a letter or digit.
pub(crate) fn valid_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Whether `name` can name a step: lowercase letters, digits, `-` and `_`.
pub(crate) fn valid_step_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Whether `name` can name a variable: a letter or `_`, then letters, digits, `_` or `-`.
pub(crate) fn valid_var_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The placeholders of `text`: (byte range in `text`, the trimmed name between the braces).
pub(crate) fn placeholders(text: &str) -> impl Iterator<Item = (Range<usize>, &str)> {
    PLACEHOLDER.captures_iter(text).filter_map(|c| {
        let whole = c.get(0)?;
        let inner = c.get(1)?;
        Some((whole.range(), inner.as_str().trim()))
    })
}

/// `text` with every `{{name}}` replaced by `vars[name]`. Placeholders were checked when the
/// formula was parsed; one naming no value is left as it is. Values are not themselves
/// searched for placeholders.
pub(crate) fn substitute(text: &str, vars: &BTreeMap<String, String>) -> String {
    PLACEHOLDER
        .replace_all(text, |c: &regex::Captures| {
            let name = c.get(1).map_or("", |m| m.as_str().trim());
            match vars.get(name) {
                Some(v) => v.clone(),
                None => c.get(0).map_or("", |m| m.as_str()).to_string(),
            }
        })
        .into_owned()
}

/// The formula name a file name stands for: `release.formula.toml` -> `release`.
pub(crate) fn stem_of(file: &Path) -> Option<&str> {
    file.file_name()?.to_str()?.strip_suffix(FILE_SUFFIX)
}

pub(crate) fn parse(src: &str, file: &Path, source: Source) -> Result<Formula> {
    let cx = Ctx { file, src };
    let doc = toml_edit::Document::parse(src)
        .map_err(|e| syntax_error(file, src, e.span(), e.message()))?;
    let raw: RawFormula = toml::from_str(src).map_err(|e| serde_error(&cx, doc.as_table(), &e))?;
    check(&cx, raw, source)
}

/// A serde error located: the key under the error's position, the message reworded for
/// the two common cases (unknown and missing keys).
fn serde_error(cx: &Ctx<'_>, root: &toml_edit::Table, e: &toml::de::Error) -> Error {
    let span = e.span().unwrap_or(0..0);
    let pos = span.start;
    let mut path = Vec::new();
    // An empty span is the whole document (a top-level key is missing).
    if !span.is_empty() {
        find_in_table(root, pos, &mut path);
    }
    let msg = first_line(e.message());
    let msg = if let Some(rest) = msg.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or("");
        path.push(key(name));
        "required key is missing".to_string()
    } else if let Some(rest) = msg.strip_prefix("unknown field `") {
        let expected = rest
            .split_once("expected ")
            .map(|(_, e)| e.replace('`', "'"))
            .unwrap_or_default();
        if expected.is_empty() {
            "unknown key".to_string()
        } else {
            format!("unknown key (expected {expected})")
        }
    } else {
        msg.replace('`', "'")
    };
    cx.error(pos, &path, &msg)
}

fn covers(span: Option<Range<usize>>, pos: usize) -> bool {
    match span {
        Some(s) if s.start == s.end => s.start == pos,
        Some(s) => s.start <= pos && pos < s.end,
        None => false,
    }
}

/// Fills `path` with the key whose key or value covers byte `pos`; array elements are named
/// by their index.
fn find_in_table(table: &dyn TableLike, pos: usize, path: &mut Vec<Seg>) -> bool {
    for (name, item) in table.iter() {
        path.push(key(name));
        if table.key(name).is_some_and(|k| covers(k.span(), pos)) || find_in_item(item, pos, path) {
            return true;
        }
        path.pop();
    }
    false
}

fn find_in_item(item: &Item, pos: usize, path: &mut Vec<Seg>) -> bool {
    match item {
        Item::None => false,
        Item::Value(v) => find_in_value(v, pos, path),
        Item::Table(t) => find_in_table(t, pos, path) || covers(t.span(), pos),
        Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                if find_in_table(t, pos, path) || covers(t.span(), pos) {
                    return true;
                }
                path.pop();
            }
            covers(a.span(), pos)
        }
    }
}

fn find_in_value(value: &Value, pos: usize, path: &mut Vec<Seg>) -> bool {
    match value {
        Value::InlineTable(t) if find_in_table(t, pos, path) => return true,
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                if find_in_value(v, pos, path) {
                    return true;
                }
                path.pop();
            }
        }
        _ => {}
    }
    covers(value.span(), pos)
}

/// The semantic checks; reports the problem that comes first in the file (a cycle only
/// when there is nothing else wrong, since it needs every `needs` to name a step).
fn check(cx: &Ctx<'_>, raw: RawFormula, source: Source) -> Result<Formula> {
    let mut problems: Vec<Problem> = Vec::new();
    check_name(cx, &raw.formula, &mut problems);
    check_version(&raw.version, &mut problems);
    let vars = check_vars(&raw.vars, &mut problems);
    let declared: Vec<&str> = vars.iter().map(|v| v.name.as_str()).collect();
    // Placeholders must name declared variables.
    check_text(
        cx,
        &declared,
        &mut problems,
        &raw.description,
        vec![key("description")],
        "the description",
    );
    let first_at = check_steps(cx, &raw.steps, &declared, &mut problems);
    check_needs(raw.steps.get_ref(), &first_at, &mut problems);

    if let Some(p) = problems.into_iter().min_by_key(|p| p.pos) {
        return Err(cx.error(p.pos, &p.path, &p.msg));
    }

    let steps = build_steps(raw.steps.get_ref());
    if let Some(cycle) = find_cycle(&steps) {
        return Err(cycle_error(cx, raw.steps.get_ref(), &steps, &cycle));
    }

    Ok(Formula {
        name: raw.formula.into_inner(),
        description: raw.description.into_inner(),
        version: u32::try_from(*raw.version.get_ref()).unwrap_or(1),
        kind: raw.kind,
        source,
        path: cx.file.to_path_buf(),
        vars,
        steps,
    })
}

/// Checks that the formula's name is a valid name and matches its file name.
fn check_name(cx: &Ctx<'_>, formula: &Spanned<String>, problems: &mut Vec<Problem>) {
    let name = formula.get_ref();
    let stem = stem_of(cx.file).unwrap_or("");
    if !valid_name(name) {
        add(
            problems,
            formula.span().start,
            vec![key("formula")],
            format!(
                "'{name}' is not a formula name (lowercase letters, digits, '-' and '_', \
                 starting with a letter or digit)"
            ),
        );
    } else if name != stem {
        add(
            problems,
            formula.span().start,
            vec![key("formula")],
            format!(
                "'{name}' does not match the file name '{stem}{FILE_SUFFIX}' \
                 (the formula must be named like its file)"
            ),
        );
    }
}

/// Checks that the version is an integer from 1 to `u32::MAX`.
fn check_version(version: &Spanned<i64>, problems: &mut Vec<Problem>) {
    let value = *version.get_ref();
    if value < 1 || value > i64::from(u32::MAX) {
        add(
            problems,
            version.span().start,
            vec![key("version")],
            format!("{value} is not a version (an integer, 1 or more)"),
        );
    }
}

/// Checks each variable's name and that none is both required and defaulted; returns the
/// variables in file order.
fn check_vars(raw: &BTreeMap<String, Spanned<RawVar>>, problems: &mut Vec<Problem>) -> Vec<Var> {
    let mut vars: Vec<(usize, Var)> = Vec::new();
    for (vname, v) in raw {
        let pos = v.span().start;
        let path = vec![key("vars"), key(vname)];
        if !valid_var_name(vname) {
            add(
                problems,
                pos,
                path.clone(),
                format!(
                    "'{vname}' is not a variable name (a letter or '_', then letters, digits, \
                     '_' or '-')"
                ),
            );
        }
        let rv = v.get_ref();
        if rv.required && rv.default.is_some() {
            add(
                problems,
                pos,
                path,
                "a required variable cannot have a default (drop one of them)".to_string(),
            );
        }
        vars.push((
            pos,
            Var {
                name: vname.clone(),
                description: rv.description.clone(),
                default: rv.default.clone(),
                required: rv.required,
            },
        ));
    }
    vars.sort_by_key(|(pos, _)| *pos);
    vars.into_iter().map(|(_, v)| v).collect()
}

/// Checks that there is at least one step, then each step's id, title and placeholders;
/// returns the index of the first step with each valid id.
fn check_steps<'a>(
    cx: &Ctx<'_>,
    steps: &'a Spanned<Vec<Spanned<RawStep>>>,
    declared: &[&str],
    problems: &mut Vec<Problem>,
) -> HashMap<&'a str, usize> {
    if steps.get_ref().is_empty() {
        add(
            problems,
            steps.span().start,
            vec![key("steps")],
            "a formula needs at least one step ([[steps]] with id and title)".to_string(),
        );
    }
    let mut first_at: HashMap<&str, usize> = HashMap::new();
    for i in 0..steps.get_ref().len() {
        check_step_id(cx, steps.get_ref(), i, &mut first_at, problems);
        check_step_texts(cx, declared, i, steps.get_ref()[i].get_ref(), problems);
    }
    first_at
}

/// Checks that step `i`'s id is valid and not used by an earlier step, recording where it
/// is first used.
fn check_step_id<'a>(
    cx: &Ctx<'_>,
    steps: &'a [Spanned<RawStep>],
    i: usize,
    first_at: &mut HashMap<&'a str, usize>,
    problems: &mut Vec<Problem>,
) {
    let rs = steps[i].get_ref();
    let id = rs.id.get_ref().as_str();
    if !valid_step_id(id) {
        add(
            problems,
            rs.id.span().start,
            step_key(i, "id"),
            format!("'{id}' is not a step id (lowercase letters, digits, '-' and '_')"),
        );
    } else if let Some(&j) = first_at.get(id) {
        let first_line = line_col(cx.src, steps[j].get_ref().id.span().start).0;
        add(
            problems,
            rs.id.span().start,
            step_key(i, "id"),
            format!("duplicate step id '{id}' (first used by steps[{j}], line {first_line})"),
        );
    } else {
        first_at.insert(id, i);
    }
}

/// Checks that step `i`'s title is not empty and that the placeholders of its title,
/// description and acceptance name declared variables.
fn check_step_texts(
    cx: &Ctx<'_>,
    declared: &[&str],
    i: usize,
    rs: &RawStep,
    problems: &mut Vec<Problem>,
) {
    let owner = format!("step '{}'", rs.id.get_ref());
    if rs.title.get_ref().trim().is_empty() {
        add(
            problems,
            rs.title.span().start,
            step_key(i, "title"),
            format!("{owner}: the title is empty"),
        );
    }
    check_text(
        cx,
        declared,
        problems,
        &rs.title,
        step_key(i, "title"),
        &owner,
    );
    if let Some(d) = &rs.description {
        check_text(
            cx,
            declared,
            problems,
            d,
            step_key(i, "description"),
            &owner,
        );
    }
    if let Some(a) = &rs.acceptance {
        check_text(cx, declared, problems, a, step_key(i, "acceptance"), &owner);
    }
}

/// Checks that every step's needs name another step of the formula.
fn check_needs(
    steps: &[Spanned<RawStep>],
    first_at: &HashMap<&str, usize>,
    problems: &mut Vec<Problem>,
) {
    let ids: Vec<&str> = steps
        .iter()
        .map(|s| s.get_ref().id.get_ref().as_str())
        .collect();
    for (i, s) in steps.iter().enumerate() {
        let rs = s.get_ref();
        let id = rs.id.get_ref();
        for n in &rs.needs {
            let need = n.get_ref().as_str();
            if need == id {
                add(
                    problems,
                    n.span().start,
                    step_key(i, "needs"),
                    format!("step '{id}' needs itself"),
                );
            } else if !first_at.contains_key(need) {
                add(
                    problems,
                    n.span().start,
                    step_key(i, "needs"),
                    format!(
                        "step '{id}' needs '{need}', which is no step of this formula \
                         (steps: {})",
                        ids.join(", ")
                    ),
                );
            }
        }
    }
}

/// The checked steps as the formula holds them, each need listed once.
fn build_steps(steps: &[Spanned<RawStep>]) -> Vec<Step> {
    steps
        .iter()
        .map(|s| {
            let rs = s.get_ref();
            let mut needs: Vec<String> = Vec::new();
            for n in &rs.needs {
                if !needs.contains(n.get_ref()) {
                    needs.push(n.get_ref().clone());
                }
            }
            Step {
                id: rs.id.get_ref().clone(),
                title: rs.title.get_ref().clone(),
                description: rs
                    .description
                    .as_ref()
                    .map(|d| d.get_ref().clone())
                    .unwrap_or_default(),
                needs,
                acceptance: rs
                    .acceptance
                    .as_ref()
                    .map(|a| a.get_ref().clone())
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// The error for a cycle among the steps' needs, reported at the first step of the cycle
/// (in file order), at its `needs` entry that leads on around the cycle.
fn cycle_error(cx: &Ctx<'_>, raw: &[Spanned<RawStep>], steps: &[Step], cycle: &[usize]) -> Error {
    let first = cycle[0];
    let next = &steps[cycle[1 % cycle.len()]].id;
    let rs = raw[first].get_ref();
    let pos = rs
        .needs
        .iter()
        .find(|n| n.get_ref() == next)
        .map_or(raw[first].span().start, |n| n.span().start);
    let mut names: Vec<&str> = cycle.iter().map(|&i| steps[i].id.as_str()).collect();
    names.push(&steps[first].id);
    cx.error(
        pos,
        &step_key(first, "needs"),
        &format!(
            "the steps' needs form a cycle: {} (each needs the next, so none could ever \
             start)",
            names.join(" -> ")
        ),
    )
}

fn add(problems: &mut Vec<Problem>, pos: usize, path: Vec<Seg>, msg: String) {
    problems.push(Problem { pos, path, msg });
}

/// Checks that every placeholder of `text` names a declared variable.
fn check_text(
    cx: &Ctx<'_>,
    declared: &[&str],
    problems: &mut Vec<Problem>,
    text: &Spanned<String>,
    path: Vec<Seg>,
    owner: &str,
) {
    for (range, inner) in placeholders(text.get_ref()) {
        let placeholder = &text.get_ref()[range];
        let pos = locate_in_value(cx.src, text.span(), placeholder);
        let msg = if !valid_var_name(inner) {
            format!("{owner}: {placeholder} is not a placeholder (write {{{{name}}}})")
        } else if declared.contains(&inner) {
            continue;
        } else if declared.is_empty() {
            format!("{owner}: unknown variable {placeholder} (the formula declares no [vars])")
        } else {
            format!(
                "{owner}: unknown variable {placeholder} (declared: {})",
                declared.join(", ")
            )
        };
        add(problems, pos, path.clone(), msg);
    }
}

/// Where `needle` (a placeholder as decoded) is in the source of a string value spanning
/// `span`; the value's start when escapes make it impossible to find.
fn locate_in_value(src: &str, span: Range<usize>, needle: &str) -> usize {
    src.get(span.clone())
        .and_then(|raw| raw.find(needle))
        .map_or(span.start, |off| span.start + off)
}

/// A cycle among the steps' needs, as step indexes starting at the lowest index on it and
/// following `needs` edges; `None` when the needs form a DAG. Every need names a step.
fn find_cycle(steps: &[Step]) -> Option<Vec<usize>> {
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let edges: Vec<Vec<usize>> = steps
        .iter()
        .map(|s| {
            s.needs
                .iter()
                .filter_map(|n| index.get(n.as_str()).copied())
                .collect()
        })
        .collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut mark = vec![Mark::New; steps.len()];
    for start in 0..steps.len() {
        if mark[start] != Mark::New {
            continue;
        }
        // Iterative DFS; `stack` is the current path with the next edge to follow.
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = Mark::Active;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            match edges[node].get(*next).copied() {
                Some(to) => {
                    *next += 1;
                    match mark[to] {
                        Mark::New => {
                            mark[to] = Mark::Active;
                            stack.push((to, 0));
                        }
                        Mark::Active => {
                            let from = stack.iter().position(|&(n, _)| n == to).unwrap_or(0);
                            let mut cycle: Vec<usize> =
                                stack[from..].iter().map(|&(n, _)| n).collect();
                            let lowest = cycle
                                .iter()
                                .enumerate()
                                .min_by_key(|&(_, &n)| n)
                                .map_or(0, |(k, _)| k);
                            cycle.rotate_left(lowest);
                            return Some(cycle);
                        }
                        Mark::Done => {}
                    }
                }
                None => {
                    mark[node] = Mark::Done;
                    stack.pop();
                }
            }
        }
    }
    None
}
