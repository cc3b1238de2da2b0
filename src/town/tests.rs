use super::*;
use std::collections::BTreeMap;
use std::time::Duration;

/// A town.toml with every section set.
const FULL_TOWN: &str = r#"name = "demo"
default_runtime = "claude"
theme = "default"
max_polecats = 8
[rigs.demo]
url = "/path/or/git/url"
branch = "main"
test_command = "./test.sh"
test_timeout = "10m"
[runtimes.claude]
command = ["claude", "--dangerously-skip-permissions"]
prompt = "argument"            # argument | flag:<name> | type-after-ready
ready = '❯ '
busy = 'esc to interrupt'
waiting = 'Do you want to'
[patrol]
gupp_idle_after = "30s"
witness_every = "5s"
stall_after = "5m"
deacon_every = "10s"
reap_after = "15m"
max_restarts = 3
"#;

const FILE: &str = "/tmp/t/town.toml";

fn parse(src: &str) -> Result<TownConfig> {
    TownConfig::parse(src, Path::new(FILE))
}

/// The BadInput message for `src`; fails the test on success or another error kind.
fn bad(src: &str) -> String {
    match parse(src) {
        Err(Error::BadInput(msg)) => {
            assert!(!msg.contains('\n'), "message is not one line: {msg:?}");
            msg
        }
        other => panic!("expected BadInput for {src:?}, got {other:?}"),
    }
}

// ------------------------------------------------------------------------------- parsing

#[test]
fn empty_file_gives_defaults_named_after_the_directory() {
    let c = TownConfig::parse("", Path::new("/home/u/My Town/town.toml")).unwrap();
    assert_eq!(c, TownConfig::new("my-town"));
    assert_eq!(c.prefix, "gt");
    assert_eq!(c.default_runtime, "claude");
    assert_eq!(c.theme, "default");
    assert_eq!(c.max_polecats, 8);
    assert!(c.rigs.is_empty() && c.runtimes.is_empty());
    assert_eq!(c.patrol.gupp_idle_after, Duration::from_secs(30));
    assert_eq!(c.patrol.witness_every, Duration::from_secs(5));
    assert_eq!(c.patrol.stall_after, Duration::from_secs(300));
    assert_eq!(c.patrol.deacon_every, Duration::from_secs(10));
    assert_eq!(c.patrol.reap_after, Duration::from_secs(900));
    assert_eq!(c.patrol.max_restarts, 3);
    assert_eq!(c.store.flush_debounce, Duration::from_secs(2));
}

#[test]
fn spec_example_parses() {
    let c = parse(FULL_TOWN).unwrap();
    assert_eq!(c.name, "demo");
    let rig = &c.rigs["demo"];
    assert_eq!(rig.url, "/path/or/git/url");
    assert_eq!(rig.branch, "main");
    assert_eq!(rig.test_command.as_deref(), Some("./test.sh"));
    assert_eq!(rig.test_timeout, Duration::from_secs(600));
    assert!(!rig.merge_without_tests);
    let rt = &c.runtimes["claude"];
    assert_eq!(rt.command, ["claude", "--dangerously-skip-permissions"]);
    assert_eq!(rt.prompt, Some(PromptMode::Argument));
    assert_eq!(rt.ready.as_deref(), Some("❯ "));
    assert_eq!(rt.busy.as_deref(), Some("esc to interrupt"));
    assert_eq!(rt.waiting.as_deref(), Some("Do you want to"));
    assert_eq!(c.patrol, PatrolConfig::default());
}

#[test]
fn every_key_is_accepted_and_read() {
    let src = r#"
name = "big town"
prefix = "bt-2"
default_runtime = "mine"
theme = "light"
max_polecats = 100
[rigs.web_app-2]
url = "git@github.com:me/app.git"
branch = "release/1.x"
test_command = "make test"
setup_command = "npm ci"
test_timeout = "1h 30m"
merge_without_tests = true
push_remote = "origin"
[runtimes.mine]
command = ["my-agent"]
prompt = "flag:--prompt"
ready = '^> $'
env = { FOO = "bar", EMPTY = "" }
[runtimes.typer]
command = ["x"]
prompt = "type-after-ready"
[patrol]
gupp_idle_after = "500ms"
witness_every = "1s"
stall_after = "2m"
deacon_every = "3s"
reap_after = "1h"
max_restarts = 0
[store]
flush_debounce = "0s"
"#;
    let c = parse(src).unwrap();
    assert_eq!(c.name, "big town");
    assert_eq!(c.prefix, "bt-2");
    assert_eq!(c.max_polecats, 100);
    let rig = &c.rigs["web_app-2"];
    assert_eq!(rig.test_timeout, Duration::from_secs(90 * 60));
    assert!(rig.merge_without_tests);
    assert_eq!(rig.setup_command.as_deref(), Some("npm ci"));
    assert_eq!(rig.push_remote.as_deref(), Some("origin"));
    assert_eq!(
        c.runtimes["mine"].prompt,
        Some(PromptMode::Flag("--prompt".into()))
    );
    assert_eq!(c.runtimes["typer"].prompt, Some(PromptMode::TypeAfterReady));
    assert_eq!(c.runtimes["mine"].env["FOO"], "bar");
    assert_eq!(c.patrol.gupp_idle_after, Duration::from_millis(500));
    assert_eq!(c.patrol.max_restarts, 0);
    assert_eq!(c.store.flush_debounce, Duration::ZERO);

    // What serde writes back parses to the same config (used by `config show`).
    let text = toml::to_string(&c).unwrap();
    assert_eq!(parse(&text).unwrap(), c, "round trip through:\n{text}");
}

#[test]
fn bad_duration_names_line_and_key() {
    let src =
        "name = \"x\"\n\n[patrol]\nwitness_every = \"5s\"\n\n# comment\nstall_after = \"5x\"\n";
    assert_eq!(
        bad(src),
        "/tmp/t/town.toml:7: patrol.stall_after: invalid duration \"5x\" (examples: 30s, 5m, 1h)"
    );
    let msg = bad("[rigs.a]\nurl = \"u\"\ntest_timeout = \"ten minutes\"\n");
    assert!(
        msg.starts_with(
            "/tmp/t/town.toml:3: rigs.a.test_timeout: invalid duration \"ten minutes\""
        ),
        "{msg}"
    );
    let msg = bad("[store]\nflush_debounce = 2\n");
    assert_eq!(
        msg,
        "/tmp/t/town.toml:2: store.flush_debounce: expected a string, found an integer"
    );
}

#[test]
fn the_terminal_scrollback_is_bounded_and_named_when_wrong() {
    let c = TownConfig::parse(
        "[terminal]\nscrollback_lines = 200\n",
        Path::new("/tmp/t/town.toml"),
    )
    .unwrap();
    assert_eq!(c.terminal.scrollback_lines, 200);
    assert_eq!(
        TownConfig::new("x").terminal.scrollback_lines as usize,
        crate::agent::DEFAULT_SCROLLBACK
    );
    assert_eq!(
        bad("name = \"x\"\n[terminal]\nscrollback_lines = 200000\n"),
        "/tmp/t/town.toml:3: terminal.scrollback_lines: must be at most 100000"
    );
    assert_eq!(
        bad("[terminal]\nscrollback_lines = \"lots\"\n"),
        "/tmp/t/town.toml:2: terminal.scrollback_lines: expected a whole number, found a string"
    );
}

#[test]
fn budgets_prices_and_notify_parse_and_their_mistakes_name_the_line_and_key() {
    let c = parse(
        "[budget]\ndaily_usd = 50\nper_bead_usd = 2.5\n\
         [prices.\"my-model\"]\ninput = 1\noutput = 2.5\n\
         [notify]\ncommand = [\"notify-send\", \"gastown\"]\nevents = [\"waiting\", \"budget\"]\nbell = false\n",
    )
    .unwrap();
    assert_eq!(c.budget.daily_usd, Some(50.0));
    assert_eq!(c.budget.per_bead_usd, Some(2.5));
    assert_eq!(c.prices["my-model"].output, 2.5);
    assert_eq!(c.prices["my-model"].cache_read, 0.0);
    assert_eq!(c.notify.command, vec!["notify-send", "gastown"]);
    assert!(!c.notify.bell);
    let defaults = parse("").unwrap();
    assert_eq!(defaults.budget.daily_usd, None);
    assert!(defaults.notify.bell);
    assert_eq!(defaults.notify.events.len(), 6);

    assert_eq!(
        bad("[budget]\ndaily_usd = \"fifty\"\n"),
        "/tmp/t/town.toml:2: budget.daily_usd: expected a number, found a string"
    );
    assert_eq!(
        bad("[budget]\nper_bead_usd = -1\n"),
        "/tmp/t/town.toml:2: budget.per_bead_usd: must be a number of at least 0, found -1"
    );
    assert_eq!(
        bad("[prices.\"m\"]\ninput = 1\noutptu = 2\n"),
        "/tmp/t/town.toml:3: unknown key 'prices.m.outptu' (did you mean 'output'? expected one of: input, output, cache_read, cache_write)"
    );
    assert_eq!(
        bad("[notify]\nevents = [\"waiting\", \"bored\"]\n"),
        "/tmp/t/town.toml:2: notify.events: unknown event \"bored\" (expected some of: waiting, stalled, dead, rejected, escalated, budget)"
    );
    assert_eq!(
        bad("[notify]\ncommand = \"notify-send\"\n"),
        "/tmp/t/town.toml:2: notify.command: expected an array of strings (e.g. [\"claude\", \"--flag\"]), found a string"
    );
}

#[test]
fn unknown_keys_name_the_dotted_path_and_the_choices() {
    let msg = bad("name = \"x\"\nprefix = \"gt\"\nmax_polecat = 3\n");
    assert!(
        msg.starts_with(
            "/tmp/t/town.toml:3: unknown key 'max_polecat' (did you mean 'max_polecats'? \
             expected one of: name, prefix, default_runtime, theme, max_polecats, rigs, runtimes, patrol, store, terminal, prices, budget, notify)"
        ),
        "{msg}"
    );
    let msg = bad("[patrol]\nstall_after = \"5m\"\nstal_after = \"5m\"\n");
    assert!(
        msg.starts_with(
            "/tmp/t/town.toml:3: unknown key 'patrol.stal_after' (did you mean 'stall_after'?"
        ),
        "{msg}"
    );
    let msg = bad("[rigs.demo]\nurl = \"u\"\nbranc = \"main\"\n");
    assert!(
        msg.starts_with("/tmp/t/town.toml:3: unknown key 'rigs.demo.branc'"),
        "{msg}"
    );
    assert!(msg.contains("expected one of: url, branch,"), "{msg}");
    // In inline tables and with dotted keys too.
    let msg = bad("name = \"x\"\nrigs = { demo = { url = \"u\", bogus = 1 } }\n");
    assert!(
        msg.starts_with("/tmp/t/town.toml:2: unknown key 'rigs.demo.bogus'"),
        "{msg}"
    );
    let msg = bad("\n\npatrol.deacon = \"1s\"\n");
    assert!(
        msg.starts_with("/tmp/t/town.toml:3: unknown key 'patrol.deacon'"),
        "{msg}"
    );
    // A table the town does not know.
    let msg = bad("[rig.demo]\nurl = \"u\"\n");
    assert!(
        msg.starts_with("/tmp/t/town.toml:1: unknown key 'rig' (did you mean 'rigs'?"),
        "{msg}"
    );
    // A far-off name gets no suggestion.
    let msg = bad("zzzzzzzz = 1\n");
    assert!(!msg.contains("did you mean"), "{msg}");
}

#[test]
fn bad_regex_names_line_and_key() {
    let src = format!(
        "{}\n[runtimes.x]\ncommand = [\"x\"]\n",
        FULL_TOWN.replace("ready = '❯ '", "ready = '❯ ('")
    );
    let msg = bad(&src);
    assert!(
        msg.starts_with("/tmp/t/town.toml:13: runtimes.claude.ready: invalid regex: "),
        "{msg}"
    );
    assert!(msg.contains("unclosed group"), "{msg}");
    let msg = bad("[runtimes.r]\ncommand = [\"r\"]\nbusy = 'ok'\nwaiting = '[z-a]'\n");
    assert!(
        msg.starts_with("/tmp/t/town.toml:4: runtimes.r.waiting: invalid regex: "),
        "{msg}"
    );
}

#[test]
fn syntax_errors_give_line_column_and_key() {
    assert_eq!(
        bad("name = \"x\"\nmax_polecats = \n"),
        "/tmp/t/town.toml:2:16: max_polecats: missing value after ="
    );
    let msg = bad("name = \"x\"\n[patrol\n");
    assert!(
        msg.starts_with("/tmp/t/town.toml:2:8: unclosed table"),
        "{msg}"
    );
    // Inside an array of tables, the key is named with its table.
    let msg = bad("[[x.y]]\na = 1\n[[x.y]]\nb = 2 3\n");
    assert!(msg.starts_with("/tmp/t/town.toml:4:5: x.y.b: "), "{msg}");
}

#[test]
fn a_duplicate_key_names_the_key_and_both_lines() {
    assert_eq!(
        bad("[patrol]\nmax_restarts = 1\n# again\nmax_restarts = 2\n"),
        "/tmp/t/town.toml:4: patrol.max_restarts: duplicate key, set twice (first on line 2); keep one"
    );
    // At the top, with a multi-line value first, and as a dotted key.
    assert_eq!(
        bad("theme = \"dark\"\nmax_polecats = [\n  1,\n]\nmax_polecats = 3\n"),
        "/tmp/t/town.toml:5: max_polecats: duplicate key, set twice (first on line 2); keep one"
    );
    assert_eq!(
        bad("patrol.idle_after = \"1m\"\nname = \"x\"\npatrol.idle_after = \"2m\"\n"),
        "/tmp/t/town.toml:3: patrol.idle_after: duplicate key, set twice (first on line 1); keep one"
    );
    // Spelled differently ("quoted" and bare) is still the same key.
    assert_eq!(
        bad("[rigs.app]\nurl = \"a\"\n\"url\" = \"b\"\n"),
        "/tmp/t/town.toml:3: rigs.app.url: duplicate key, set twice (first on line 2); keep one"
    );
    // Inside an inline table: the value's key is named.
    assert_eq!(
        bad("[runtimes.x]\ncommand = [\"x\"]\nenv = { A = \"1\", A = \"2\" }\n"),
        "/tmp/t/town.toml:3: runtimes.x.env: the key A is given twice in this value"
    );
}

#[test]
fn a_duplicate_table_names_the_table_and_both_lines() {
    assert_eq!(
        bad("[patrol]\nidle_after = \"1m\"\n\n[budget]\ndaily_usd = 5\n\n[patrol]\nstall_after = \"9m\"\n"),
        "/tmp/t/town.toml:7: patrol: the table [patrol] is defined twice (first on line 1); merge the two"
    );
    assert_eq!(
        bad("[rigs.app]\nurl = \"a\"\n[rigs.web]\nurl = \"b\"\n[rigs.app]\nbranch = \"dev\"\n"),
        "/tmp/t/town.toml:5: rigs.app: the table [rigs.app] is defined twice (first on line 1); merge the two"
    );
}

#[test]
fn a_wrong_type_names_the_key_and_its_line() {
    assert_eq!(
        bad("name = \"x\"\n\n[patrol]\nmax_restarts = \"three\"\n"),
        "/tmp/t/town.toml:4: patrol.max_restarts: expected a whole number, found a string"
    );
    assert_eq!(
        bad("[rigs.app]\nurl = 5\n"),
        "/tmp/t/town.toml:2: rigs.app.url: expected a string, found an integer"
    );
}

#[test]
fn an_unterminated_string_names_the_key_and_its_line() {
    assert_eq!(
        bad("prefix = \"gt\"\nname = \"my town\ntheme = \"dark\"\n"),
        "/tmp/t/town.toml:2:8: name: unterminated string: the closing \" is missing (a \"...\" string ends on its line)"
    );
    assert_eq!(
        bad("[rigs.app]\nurl = 'git@host:app\n"),
        "/tmp/t/town.toml:2:7: rigs.app.url: unterminated string: the closing ' is missing (a '...' string ends on its line)"
    );
    // A multi-line string is reported where it opens, not at the end of the file.
    assert_eq!(
        bad("[patrol]\nidle_after = \"1m\"\n[rigs.app]\nurl = \"\"\"abc\nmore\n\n"),
        "/tmp/t/town.toml:4:7: rigs.app.url: unterminated multi-line string: no closing \"\"\" before the end of the file"
    );
}

#[test]
fn missing_rig_url_names_the_table_line() {
    let msg = bad("name = \"x\"\n\n[rigs.demo]\nbranch = \"main\"\n");
    assert_eq!(
        msg,
        "/tmp/t/town.toml:3: rigs.demo: missing required key 'url' (the rig's git URL or path)"
    );
    let msg = bad("[rigs.demo]\nurl = \"  \"\n");
    assert_eq!(msg, "/tmp/t/town.toml:2: rigs.demo.url: must not be empty");
}

#[test]
fn rig_names_are_checked() {
    let msg = bad("[rigs.\"My Rig\"]\nurl = \"u\"\n");
    assert!(
        msg.starts_with("/tmp/t/town.toml:1: rigs.\"My Rig\": invalid rig name \"My Rig\""),
        "{msg}"
    );
    let msg = bad("\n[rigs.logs]\nurl = \"u\"\n");
    assert!(
        msg.starts_with("/tmp/t/town.toml:2: rigs.logs: rig name \"logs\" is reserved"),
        "{msg}"
    );
    let long = "a".repeat(41);
    let msg = bad(&format!("[rigs.{long}]\nurl = \"u\"\n"));
    assert!(msg.contains("invalid rig name"), "{msg}");
    parse(&format!("[rigs.{}]\nurl = \"u\"\n", "a".repeat(40))).unwrap();
    let msg = bad("[rigs.a]\nurl = \"u\"\nbranch = \"bad..name\"\n");
    assert!(
        msg.starts_with("/tmp/t/town.toml:3: rigs.a.branch: invalid branch name"),
        "{msg}"
    );
    let msg = bad("[rigs.a]\nurl = \"u\"\ntest_command = \"\"\n");
    assert!(
        msg.starts_with("/tmp/t/town.toml:3: rigs.a.test_command: must not be empty"),
        "{msg}"
    );
    let msg = bad("[rigs.a]\nurl = \"u\"\ntest_timeout = \"0s\"\n");
    assert_eq!(
        msg,
        "/tmp/t/town.toml:3: rigs.a.test_timeout: must be greater than 0"
    );
    let msg = bad("[rigs]\ndemo = \"https://x\"\n");
    assert_eq!(
        msg,
        "/tmp/t/town.toml:2: rigs.demo: expected a table, found a string"
    );
    let msg = bad("rigs = 5\n");
    assert_eq!(
        msg,
        "/tmp/t/town.toml:1: rigs: expected a table, found an integer"
    );
}

#[test]
fn runtime_tables_are_checked() {
    // A runtime of the town's own needs its command; a table over a preset may leave it out.
    let msg = bad("[runtimes.mine]\nprompt = \"argument\"\n");
    assert!(
        msg.starts_with("/tmp/t/town.toml:1: runtimes.mine: missing required key 'command'"),
        "{msg}"
    );
    let c = parse("[runtimes.claude.env]\nIS_SANDBOX = \"1\"\n").unwrap();
    let claude = c.runtime("claude").unwrap();
    assert_eq!(claude.command[0], "claude", "the preset's command stays");
    assert_eq!(claude.env["IS_SANDBOX"], "1");
    let msg = bad("[runtimes.codex]\ncommand = []\n");
    assert_eq!(
        msg,
        "/tmp/t/town.toml:2: runtimes.codex.command: must not be empty"
    );
    let msg = bad("[runtimes.codex]\ncommand = [\"\", \"x\"]\n");
    assert!(
        msg.starts_with("/tmp/t/town.toml:2: runtimes.codex.command: the first element"),
        "{msg}"
    );
    let msg = bad("[runtimes.codex]\ncommand = \"codex --yolo\"\n");
    assert!(
        msg.starts_with("/tmp/t/town.toml:2: runtimes.codex.command: expected an array of strings"),
        "{msg}"
    );
    let msg = bad("[runtimes.codex]\ncommand = [\"codex\", 1]\n");
    assert!(msg.contains("element 2 is an integer"), "{msg}");
    let msg = bad("[runtimes.codex]\ncommand = [\"codex\"]\n\nprompt = \"flag\"\n");
    assert_eq!(
        msg,
        "/tmp/t/town.toml:4: runtimes.codex.prompt: invalid prompt mode \"flag\" (expected argument, flag:<name> or type-after-ready)"
    );
    let msg = bad("[rigs.app]\nurl = \"/x\"\nmerge_style = \"octopus\"\n");
    assert_eq!(
        msg,
        "/tmp/t/town.toml:3: rigs.app.merge_style: unknown merge style \"octopus\" (expected one of: squash, merge, rebase)"
    );
    let ok = TownConfig::parse(
        "[rigs.app]\nurl = \"/x\"\nmerge_style = \"merge\"\n",
        Path::new("/tmp/t/town.toml"),
    )
    .unwrap();
    assert_eq!(ok.rigs["app"].merge_style, crate::town::MergeStyle::Merge);
    assert_eq!(
        TownConfig::parse("[rigs.app]\nurl = \"/x\"\n", Path::new("/tmp/t/town.toml"))
            .unwrap()
            .rigs["app"]
            .merge_style,
        crate::town::MergeStyle::Squash,
        "squash unless said otherwise"
    );
    let msg = bad("[runtimes.codex]\ncommand = [\"codex\"]\nprompt = \"flag:\"\n");
    assert!(
        msg.starts_with("/tmp/t/town.toml:3: runtimes.codex.prompt: flag name is empty"),
        "{msg}"
    );
    let msg = bad("[runtimes.Codex]\ncommand = [\"codex\"]\n");
    assert!(
        msg.starts_with("/tmp/t/town.toml:1: runtimes.Codex: invalid runtime name"),
        "{msg}"
    );
    let msg = bad("[runtimes.c]\ncommand = [\"c\"]\nenv = { \"A=B\" = \"x\" }\n");
    assert!(
        msg.starts_with(
            "/tmp/t/town.toml:3: runtimes.c.env.\"A=B\": invalid environment variable name"
        ),
        "{msg}"
    );
    let msg = bad("[runtimes.c]\ncommand = [\"c\"]\nenv = { A = 1 }\n");
    assert_eq!(
        msg,
        "/tmp/t/town.toml:3: runtimes.c.env.A: expected a string, found an integer"
    );
}

#[test]
fn default_runtime_must_exist() {
    let msg = bad("name = \"x\"\ndefault_runtime = \"claud\"\n");
    assert!(msg.starts_with("/tmp/t/town.toml:2: default_runtime: unknown runtime \"claud\" (expected one of: claude, codex, gemini, cursor, auggie, amp, opencode, shell, sim"), "{msg}");
    for builtin in crate::agent::runtime::builtin_names() {
        parse(&format!("default_runtime = \"{builtin}\"\n")).unwrap();
    }
    let c = parse("default_runtime = \"mine\"\n[runtimes.mine]\ncommand = [\"m\"]\n").unwrap();
    assert_eq!(c.default_runtime, "mine");
}

#[test]
fn prefix_rules() {
    for ok in ["gt", "a", "bd-2", "abcdefghijklmnop"] {
        assert_eq!(parse(&format!("prefix = \"{ok}\"\n")).unwrap().prefix, ok);
    }
    for bad_prefix in ["", "GT", "2gt", "gt-", "g_t", "abcdefghijklmnopq", "g t"] {
        let msg = bad(&format!("\nprefix = \"{bad_prefix}\"\n"));
        assert!(
            msg.starts_with("/tmp/t/town.toml:2: prefix: invalid prefix"),
            "{msg}"
        );
    }
}

#[test]
fn number_and_interval_ranges() {
    assert_eq!(
        bad("max_polecats = 0\n"),
        "/tmp/t/town.toml:1: max_polecats: must be at least 1"
    );
    let msg = bad("max_polecats = -1\n");
    assert!(
        msg.starts_with("/tmp/t/town.toml:1: max_polecats: must be a whole number from 0 to"),
        "{msg}"
    );
    assert_eq!(
        bad("max_polecats = \"8\"\n"),
        "/tmp/t/town.toml:1: max_polecats: expected a whole number, found a string"
    );
    assert_eq!(
        bad("[patrol]\nmax_restarts = 1.5\n"),
        "/tmp/t/town.toml:2: patrol.max_restarts: expected a whole number, found a float"
    );
    assert_eq!(
        bad("[patrol]\nwitness_every = \"0s\"\n"),
        "/tmp/t/town.toml:2: patrol.witness_every: must be greater than 0"
    );
    assert_eq!(
        bad("[patrol]\n\ndeacon_every = \"0ms\"\n"),
        "/tmp/t/town.toml:3: patrol.deacon_every: must be greater than 0"
    );
    assert_eq!(
        bad("patrol = []\n"),
        "/tmp/t/town.toml:1: patrol: expected a table, found an array"
    );
    assert_eq!(
        bad("[rigs.a]\nurl = \"u\"\nmerge_without_tests = \"yes\"\n"),
        "/tmp/t/town.toml:3: rigs.a.merge_without_tests: expected true or false, found a string"
    );
}

#[test]
fn the_first_problem_in_the_file_is_reported() {
    // The semantic problem on line 2 comes before the one on line 5, whatever the
    // order the checks run in.
    let src = "[patrol]\nwitness_every = \"0s\"\n[rigs.x]\nurl = \"u\"\ntest_timeout = \"0s\"\n";
    assert!(bad(src).starts_with("/tmp/t/town.toml:2: patrol.witness_every"));
    let src = "[rigs.x]\nbogus = 1\n[patrol]\nstal_after = \"1s\"\n";
    assert!(bad(src).starts_with("/tmp/t/town.toml:2: unknown key 'rigs.x.bogus'"));
}

#[test]
fn other_top_level_values_are_checked() {
    assert_eq!(
        bad("name = \"\"\n"),
        "/tmp/t/town.toml:1: name: must not be empty"
    );
    assert_eq!(
        bad("name = 3\n"),
        "/tmp/t/town.toml:1: name: expected a string, found an integer"
    );
    let msg = bad("theme = \"../x\"\n");
    assert!(
        msg.starts_with("/tmp/t/town.toml:1: theme: invalid theme name"),
        "{msg}"
    );
}

#[test]
fn parse_never_panics_on_mutated_input() {
    // A small deterministic xorshift so the test is reproducible.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet: Vec<char> = "[]{}=\"'.,#\n \\-_0123456789azAZ:❯\u{0}\t+e"
        .chars()
        .collect();
    let seeds = [
        FULL_TOWN,
        "",
        "[rigs.a]\nurl = \"u\"\n",
        "rigs = { a = { url = 'u' } }",
    ];
    let mut outcomes = [0usize; 2];
    for round in 0..1000 {
        let mut chars: Vec<char> = seeds[round % seeds.len()].chars().collect();
        let edits = 1 + (next() % 8) as usize;
        for _ in 0..edits {
            let pos = if chars.is_empty() {
                0
            } else {
                (next() as usize) % (chars.len() + 1)
            };
            let c = alphabet[(next() as usize) % alphabet.len()];
            match next() % 4 {
                0 => chars.insert(pos, c),
                1 if pos < chars.len() => {
                    chars.remove(pos);
                }
                2 if pos < chars.len() => chars[pos] = c,
                _ => chars.truncate(pos),
            }
        }
        let src: String = chars.into_iter().collect();
        match parse(&src) {
            Ok(_) => outcomes[0] += 1,
            Err(Error::BadInput(msg)) => {
                assert!(msg.starts_with("/tmp/t/town.toml"), "{msg} for {src:?}");
                assert!(
                    !msg.contains('\n'),
                    "multi-line message {msg:?} for {src:?}"
                );
                outcomes[1] += 1;
            }
            Err(other) => panic!("unexpected error {other:?} for {src:?}"),
        }
    }
    // Both paths were exercised.
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let src = format!("x = {}{}\n", "[".repeat(5000), "]".repeat(5000));
    assert!(bad(&src).starts_with("/tmp/t/town.toml:1:"));
}

// ----------------------------------------------------------------------------- discovery

fn touch_town(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(CONFIG_FILE), "").unwrap();
}

#[test]
fn locate_order_explicit_env_walk_up_home() {
    let tmp = tempfile::tempdir().unwrap();
    let walk = tmp.path().join("walk");
    touch_town(&walk);
    let cwd = walk.join("rig/polecats/nux");
    fs::create_dir_all(&cwd).unwrap();
    let explicit = tmp.path().join("explicit");
    let env = tmp.path().join("env");
    let home = tmp.path().join("home");

    let found = |e: Option<&Path>, v: Option<&Path>, c: &Path, h: Option<&Path>| {
        locate(e, v.map(Path::as_os_str), c, h)
    };
    assert_eq!(
        found(Some(&explicit), Some(&env), &cwd, Some(&home)),
        Some(explicit.clone())
    );
    assert_eq!(
        found(None, Some(&env), &cwd, Some(&home)),
        Some(env.clone())
    );
    // walk-up finds the town.toml three levels up
    assert_eq!(found(None, None, &cwd, Some(&home)), Some(walk.clone()));
    // nowhere to walk to: ~/gt
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    assert_eq!(
        found(None, None, &elsewhere, Some(&home)),
        Some(home.join("gt"))
    );
    assert_eq!(found(None, None, &elsewhere, None), None);
    // an empty $GT_TOWN counts as unset; relative paths are taken from cwd
    assert_eq!(
        locate(None, Some(OsStr::new("")), &cwd, None),
        Some(walk.clone())
    );
    assert_eq!(
        locate(Some(Path::new("sub")), None, &elsewhere, None),
        Some(elsewhere.join("sub"))
    );
    assert_eq!(
        locate(None, Some(OsStr::new("../t")), &elsewhere, None),
        Some(elsewhere.join("../t"))
    );
}

#[test]
fn walk_up_stops_at_the_nearest_town() {
    let tmp = tempfile::tempdir().unwrap();
    touch_town(tmp.path());
    let inner = tmp.path().join("a/inner");
    touch_town(&inner);
    let cwd = inner.join("b");
    fs::create_dir_all(&cwd).unwrap();
    assert_eq!(locate(None, None, &cwd, None), Some(inner.clone()));
    // a directory named town.toml does not count
    let trap = tmp.path().join("x");
    fs::create_dir_all(trap.join("y").join(CONFIG_FILE)).unwrap();
    assert_eq!(
        locate(None, None, &trap.join("y"), None),
        Some(tmp.path().to_path_buf())
    );
}

#[test]
fn discover_with_explicit_dir_loads_it_or_says_how_to_create_it() {
    let tmp = tempfile::tempdir().unwrap();
    let town = tmp.path().join("t");
    touch_town(&town);
    fs::write(town.join(CONFIG_FILE), "name = \"found\"\n").unwrap();
    let t = Town::discover(Some(&town)).unwrap();
    assert_eq!(t.config.name, "found");
    assert_eq!(t.root, town);

    let empty = tmp.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    match Town::discover(Some(&empty)) {
        Err(Error::BadInput(msg)) => {
            assert!(
                msg.starts_with(&format!("--town {}: no town.toml there", empty.display())),
                "{msg}"
            );
            assert!(
                msg.contains(&format!("gastown-tui init {}", empty.display())),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn load_without_town_toml_says_how_to_create_one() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Town::load(tmp.path()).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let msg = err.to_string();
    assert!(msg.contains("town.toml not found"), "{msg}");
    assert!(
        msg.contains(&format!("gastown-tui init {}", tmp.path().display())),
        "{msg}"
    );

    let missing = tmp.path().join("no such dir");
    let msg = Town::load(&missing).unwrap_err().to_string();
    assert!(msg.contains("does not exist"), "{msg}");
    assert!(
        msg.contains(&format!("gastown-tui init '{}'", missing.display())),
        "{msg}"
    );
}

#[test]
fn load_reports_errors_with_the_real_path_and_rejects_non_utf8() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(CONFIG_FILE);
    fs::write(&path, "name = \"x\"\n[patrol]\nreap_after = \"soon\"\n").unwrap();
    let msg = Town::load(tmp.path()).unwrap_err().to_string();
    assert!(
        msg.starts_with(&format!(
            "{}:3: patrol.reap_after: invalid duration",
            path.display()
        )),
        "{msg}"
    );
    fs::write(&path, b"name = \"x\"\ntheme = \"\xff\"\n").unwrap();
    let msg = Town::load(tmp.path()).unwrap_err().to_string();
    assert_eq!(msg, format!("{}:2: not valid UTF-8 text", path.display()));
}

#[test]
fn town_paths() {
    let t = Town {
        root: PathBuf::from("/t"),
        config: TownConfig::default(),
    };
    assert_eq!(t.config_path(), Path::new("/t/town.toml"));
    assert_eq!(t.beads_dir(), Path::new("/t/.beads"));
    assert_eq!(t.db_path(), Path::new("/t/.beads/beads.db"));
    assert_eq!(t.jsonl_path(), Path::new("/t/.beads/issues.jsonl"));
    assert_eq!(t.logs_dir(), Path::new("/t/logs"));
    assert_eq!(t.formulas_dir(), Path::new("/t/formulas"));
}

// ---------------------------------------------------------------------------------- init

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file under `dir` with its bytes (for "changes nothing" checks).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                out.insert(p.clone(), Vec::new());
                stack.push(p);
            } else {
                out.insert(p.clone(), fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn init_creates_the_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("My Town!");
    let out = init(&dir, &InitOptions::default()).unwrap();
    assert_eq!(
        out,
        InitOutcome {
            root: dir.clone(),
            created: true
        }
    );

    let text = fs::read_to_string(dir.join(CONFIG_FILE)).unwrap();
    assert_eq!(text, template("my-town", "gt"));
    let town = Town::load(&dir).unwrap();
    assert_eq!(town.config, TownConfig::new("my-town"));
    for sub in [town.beads_dir(), town.logs_dir(), town.formulas_dir()] {
        assert!(sub.is_dir(), "{}", sub.display());
        #[cfg(unix)]
        assert_eq!(mode(&sub), 0o700, "{}", sub.display());
    }
    #[cfg(unix)]
    assert_eq!(mode(&town.config_path()), 0o600);
    // The store is the caller's job.
    assert!(!town.db_path().exists());

    let repo = git2::Repository::open(&dir).unwrap();
    let head = repo.find_reference("HEAD").unwrap();
    assert_eq!(head.symbolic_target_bytes(), Some(&b"refs/heads/main"[..]));
    assert_eq!(
        fs::read_to_string(dir.join(".gitignore")).unwrap(),
        GITIGNORE
    );
    for ignored in [
        ".beads/beads.db",
        ".beads/beads.db-wal",
        ".beads/beads.db-shm",
        "logs/gastown-tui.log",
        "logs/nux/1.cast",
        "demo/repo/src/main.rs",
        "demo/polecats/nux/README",
        "demo/crew/ann/x",
        "demo/refinery/x",
    ] {
        assert!(
            repo.is_path_ignored(ignored).unwrap(),
            "{ignored} should be ignored"
        );
    }
    for tracked in [
        ".beads/issues.jsonl",
        "town.toml",
        "formulas/release.toml",
        ".gitignore",
    ] {
        assert!(
            !repo.is_path_ignored(tracked).unwrap(),
            "{tracked} should be tracked"
        );
    }
}

#[test]
fn init_is_idempotent_and_repairs_missing_pieces() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("town");
    init(&dir, &InitOptions::default()).unwrap();
    // The user edits town.toml; a second init must not touch it.
    let path = dir.join(CONFIG_FILE);
    let edited = format!(
        "{}\n[rigs.demo]\nurl = \"/src/demo\"\n",
        fs::read_to_string(&path).unwrap()
    );
    fs::write(&path, &edited).unwrap();
    fs::remove_dir(dir.join("logs")).unwrap();
    fs::remove_file(dir.join(".gitignore")).unwrap();

    let out = init(
        &dir,
        &InitOptions {
            name: Some("other".into()),
            prefix: None,
        },
    )
    .unwrap();
    assert!(!out.created);
    assert_eq!(fs::read_to_string(&path).unwrap(), edited);
    assert!(dir.join("logs").is_dir());
    #[cfg(unix)]
    assert_eq!(mode(&dir.join("logs")), 0o700);
    assert_eq!(
        fs::read_to_string(dir.join(".gitignore")).unwrap(),
        GITIGNORE
    );

    let before = snapshot(&dir);
    assert!(!init(&dir, &InitOptions::default()).unwrap().created);
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn init_refuses_a_non_empty_foreign_directory_and_leaves_it_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("project");
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::write(dir.join("README.md"), "mine").unwrap();
    let before = snapshot(&dir);
    match init(&dir, &InitOptions::default()) {
        Err(Error::BadInput(msg)) => {
            assert!(msg.contains(&dir.display().to_string()), "{msg}");
            assert!(msg.contains("not empty"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(snapshot(&dir), before);

    // A file where the town should go is refused too.
    let file = tmp.path().join("file");
    fs::write(&file, "x").unwrap();
    let msg = init(&file, &InitOptions::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("not a directory"), "{msg}");
}

#[test]
fn init_with_an_invalid_existing_town_toml_fails_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(CONFIG_FILE);
    fs::write(&path, "max_polecats = 0\n").unwrap();
    let msg = init(tmp.path(), &InitOptions::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        format!("{}:1: max_polecats: must be at least 1", path.display())
    );
    assert!(!tmp.path().join(".beads").exists());
    assert!(!tmp.path().join(".git").exists());
}

#[test]
fn init_options_are_validated_before_anything_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new");
    let opts = InitOptions {
        name: None,
        prefix: Some("Bad_".into()),
    };
    let msg = init(&dir, &opts).unwrap_err().to_string();
    assert!(msg.starts_with("invalid prefix \"Bad_\""), "{msg}");
    let opts = InitOptions {
        name: Some(" ".into()),
        prefix: None,
    };
    assert!(init(&dir, &opts).is_err());
    assert!(!dir.exists());

    // A name with quotes survives the round trip through the template.
    let opts = InitOptions {
        name: Some("Joe's \"big\" town \\o/".into()),
        prefix: Some("jt".into()),
    };
    init(&dir, &opts).unwrap();
    let town = Town::load(&dir).unwrap();
    assert_eq!(town.config.name, "Joe's \"big\" town \\o/");
    assert_eq!(town.config.prefix, "jt");
}

#[test]
fn init_into_an_existing_empty_directory_and_an_existing_repo() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(init(tmp.path(), &InitOptions::default()).unwrap().created);
    assert!(tmp.path().join(".git").is_dir());

    // A town whose town.toml exists inside an existing repo keeps that repo.
    let other = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init(other.path()).unwrap();
    let head_before: Option<Vec<u8>> = repo
        .find_reference("HEAD")
        .unwrap()
        .symbolic_target_bytes()
        .map(|s| s.to_vec());
    fs::write(other.path().join(CONFIG_FILE), "").unwrap();
    assert!(!init(other.path(), &InitOptions::default()).unwrap().created);
    let repo = git2::Repository::open(other.path()).unwrap();
    assert_eq!(
        repo.find_reference("HEAD")
            .unwrap()
            .symbolic_target_bytes()
            .map(|s| s.to_vec()),
        head_before
    );
    assert!(other.path().join(".beads").is_dir());
}

#[test]
fn template_documents_every_key_with_its_default() {
    // Uncommenting the example lines gives a valid file whose values are the defaults.
    let text = template("t", "gt");
    let key_line = regex::Regex::new(r"^# (\[[a-z.]+\]|[a-z_]+ = )").unwrap();
    let uncommented: String = text
        .lines()
        .map(|l| if key_line.is_match(l) { &l[2..] } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    let c = parse(&uncommented).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
    let defaults = TownConfig::new("t");
    assert_eq!(c.prefix, defaults.prefix);
    assert_eq!(c.default_runtime, defaults.default_runtime);
    assert_eq!(c.theme, defaults.theme);
    assert_eq!(c.max_polecats, defaults.max_polecats);
    assert_eq!(c.patrol, defaults.patrol);
    assert_eq!(c.store, defaults.store);
    assert_eq!(c.budget, defaults.budget);
    assert_eq!(c.notify, defaults.notify);
    let rig = &c.rigs["myproject"];
    assert_eq!(rig.branch, RigConfig::default().branch);
    assert_eq!(rig.test_timeout, RigConfig::default().test_timeout);
    assert_eq!(
        rig.merge_without_tests,
        RigConfig::default().merge_without_tests
    );
    assert_eq!(c.runtimes["claude"].prompt, Some(PromptMode::Argument));
    // Every key the parser accepts appears in the template.
    for key in [
        "name",
        "prefix",
        "default_runtime",
        "theme",
        "max_polecats",
        "url",
        "branch",
        "test_command",
        "setup_command",
        "test_timeout",
        "merge_without_tests",
        "push_remote",
        "command",
        "prompt",
        "ready",
        "busy",
        "waiting",
        "env",
        "gupp_idle_after",
        "witness_every",
        "stall_after",
        "deacon_every",
        "reap_after",
        "max_restarts",
        "flush_debounce",
        "scrollback_lines",
        "daily_usd",
        "per_bead_usd",
        "input",
        "output",
        "cache_read",
        "cache_write",
        "events",
        "bell",
        "timeout",
    ] {
        assert!(text.contains(&format!("{key} = ")), "template lacks {key}");
    }
}

// ------------------------------------------------------------------------- config edits

#[test]
fn add_rig_keeps_comments_and_validates() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path(), &InitOptions::default()).unwrap();
    let mut town = Town::load(tmp.path()).unwrap();
    let mut rig = RigConfig::new("/src/demo");
    rig.test_command = Some("./test.sh".into());
    town.add_rig("demo", &rig).unwrap();
    assert_eq!(town.config.rigs["demo"], rig);
    let text = fs::read_to_string(town.config_path()).unwrap();
    assert!(text.starts_with("# town.toml: the configuration"), "{text}");
    assert!(text.contains("[rigs.demo]\nurl = \"/src/demo\""), "{text}");
    assert_eq!(Town::load(tmp.path()).unwrap().config.rigs["demo"], rig);
    #[cfg(unix)]
    assert_eq!(mode(&town.config_path()), 0o600);

    assert!(matches!(
        town.add_rig("demo", &rig),
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        town.add_rig("logs", &rig),
        Err(Error::BadInput(_))
    ));
    // An invalid rig is refused and the file is unchanged.
    let err = town.add_rig("other", &RigConfig::new("")).unwrap_err();
    assert!(
        err.to_string()
            .contains("rigs.other.url: must not be empty"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(town.config_path()).unwrap(), text);
}

#[test]
fn runtime_edits() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path(), &InitOptions::default()).unwrap();
    let mut town = Town::load(tmp.path()).unwrap();
    let before = fs::read_to_string(town.config_path()).unwrap();
    assert!(matches!(
        town.set_default_runtime("nope"),
        Err(Error::BadInput(_))
    ));
    assert_eq!(fs::read_to_string(town.config_path()).unwrap(), before);

    town.set_runtime_command("mine", &["my-agent".into(), "--fast".into()])
        .unwrap();
    town.set_default_runtime("mine").unwrap();
    let reloaded = Town::load(tmp.path()).unwrap();
    assert_eq!(reloaded.config.default_runtime, "mine");
    assert_eq!(
        reloaded.config.runtimes["mine"].command,
        ["my-agent", "--fast"]
    );
    assert_eq!(reloaded, town);

    town.set_runtime_command("mine", &["other".into()]).unwrap();
    assert_eq!(
        Town::load(tmp.path()).unwrap().config.runtimes["mine"].command,
        ["other"]
    );
    assert!(town.set_runtime_command("mine", &[]).is_err());
}
#[test]
fn new_tables_are_appended_after_the_comments_at_the_end() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path(), &InitOptions::default()).unwrap();
    let mut town = Town::load(tmp.path()).unwrap();
    let original = fs::read_to_string(town.config_path()).unwrap();
    town.add_rig("demo", &RigConfig::new("/x")).unwrap();
    town.set_runtime_command("mine", &["a".into()]).unwrap();
    let text = fs::read_to_string(town.config_path()).unwrap();
    assert_eq!(
        text,
        format!("{original}\n[rigs.demo]\nurl = \"/x\"\nbranch = \"main\"\n\n[runtimes.mine]\ncommand = [\"a\"]\n")
    );
    // So a commented default the user uncomments later still sets the top-level key.
    let uncommented = text.replace(
        "# default_runtime = \"claude\"",
        "default_runtime = \"mine\"",
    );
    fs::write(town.config_path(), uncommented).unwrap();
    assert_eq!(
        Town::load(tmp.path()).unwrap().config.default_runtime,
        "mine"
    );

    // A file that ends in a table and a comment.
    fs::write(
        town.config_path(),
        "[patrol]\nmax_restarts = 1\n# the end\n",
    )
    .unwrap();
    let mut town = Town::load(tmp.path()).unwrap();
    town.add_rig("b", &RigConfig::new("/b")).unwrap();
    assert_eq!(
        fs::read_to_string(town.config_path()).unwrap(),
        "[patrol]\nmax_restarts = 1\n# the end\n\n[rigs.b]\nurl = \"/b\"\nbranch = \"main\"\n"
    );
    // Inline tables are extended in place.
    fs::write(
        town.config_path(),
        "rigs = { a = { url = \"/a\" } }\n# end\n",
    )
    .unwrap();
    let mut town = Town::load(tmp.path()).unwrap();
    town.add_rig("b", &RigConfig::new("/b")).unwrap();
    let text = fs::read_to_string(town.config_path()).unwrap();
    assert!(text.ends_with("# end\n"), "{text}");
    assert_eq!(Town::load(tmp.path()).unwrap().config.rigs.len(), 2);
}
