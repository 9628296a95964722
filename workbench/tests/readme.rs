//! The docs check (`make docs-check`): every command in the README's `sh`
//! blocks is run, so the README cannot drift from the binary.
//!
//! - `target/release/workbench ...` runs this build's binary. The quick
//!   start's commands run for real, in the simulator, into a scratch
//!   `--results-dir`; the table the README shows from it must have the
//!   header and the rows (configuration and verdict) the run printed.
//!   Every other `campaign` or `explore` command runs with `--dry-run`
//!   (its flags parsed and its matrix validated, nothing run); `check` runs
//!   for real on the quick start's results; `clean`, which needs Docker,
//!   runs with `--help` (the subcommand and its flags exist).
//! - `make <target>` must be a target of the Makefile (not run: those are
//!   the real campaigns and test suites).
//! - `cargo build ...` is what built this test.
//!
//! Also: the README's legend is the one the campaigns print, no line of a
//! README table is over 200 characters, and every relative link resolves
//! to a file in the repository.

use std::path::{Path, PathBuf};
use std::process::Command;

const WORKBENCH: &str = env!("CARGO_BIN_EXE_workbench");
const MAX_TABLE_LINE: usize = 200;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn readme() -> String {
    std::fs::read_to_string(repo().join("README.md")).unwrap()
}

/// One command of a `sh` block: its words, and the section it is under.
#[derive(Debug)]
struct Example {
    section: String,
    words: Vec<String>,
}

/// The words of a shell line: quotes grouped, a `#` comment dropped.
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quote, mut started) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (c, quote) {
            ('\'' | '"', None) => (quote, started) = (Some(c), true),
            (c, Some(q)) if c == q => quote = None,
            ('#', None) if !started => break,
            (' ' | '\t', None) => {
                if started {
                    words.push(std::mem::take(&mut word));
                }
                started = false;
            }
            (c, _) => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

/// Every command of the README's `sh` blocks, continuation lines joined.
fn examples(text: &str) -> Vec<Example> {
    let (mut out, mut section, mut in_sh, mut pending) = (Vec::new(), String::new(), false, String::new());
    for line in text.lines() {
        if let Some(title) = line.strip_prefix("## ").filter(|_| !in_sh) {
            section = title.to_string();
        } else if line.starts_with("```") {
            in_sh = !in_sh && line == "```sh";
        } else if in_sh {
            let (body, more) = line.strip_suffix('\\').map_or((line, false), |b| (b, true));
            pending.push_str(body);
            pending.push(' ');
            if !more {
                let words = shell_words(&std::mem::take(&mut pending));
                if !words.is_empty() {
                    out.push(Example { section: section.clone(), words });
                }
            }
        }
    }
    out
}

fn run(args: &[String]) -> (Option<i32>, String) {
    let out = Command::new(WORKBENCH).args(args).current_dir(repo()).output().unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// The value after `flag` in `words`.
fn value_of<'a>(words: &'a [String], flag: &str) -> Option<&'a str> {
    words.iter().position(|w| w == flag).map(|i| words[i + 1].as_str())
}

/// Table lines (`| a | b |`) of a markdown text, first cell trimmed.
fn first_cells(text: &str) -> Vec<String> {
    text.lines().filter(|l| l.starts_with("| N")).map(|l| l.split('|').nth(1).unwrap().trim().to_string()).collect()
}

/// The README's quick-start table must be the run's: its headers and rows.
fn check_excerpt(readme: &str, summary: &str) {
    let start = readme.find("What it printed here").expect("the quick start shows its output");
    let block = &readme[start..];
    let block = &block[block.find("```\n").unwrap() + 4..];
    let block = &block[..block.find("```").unwrap()];
    for heading in block.lines().filter(|l| l.starts_with("## ")) {
        assert!(summary.contains(heading), "{heading:?} is not in the quick start's summary:\n{summary}");
    }
    assert_eq!(first_cells(block), first_cells(summary), "the README's rows are not the run's:\n{summary}");
    let valid = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("| N"))
            .map(|l| l.trim_end_matches(['|', ' ']).rsplit('|').next().unwrap().trim().to_string())
            .collect()
    };
    assert_eq!(valid(block), valid(summary), "the README's verdicts are not the run's");
}

#[test]
fn every_readme_command_runs() {
    let text = readme();
    let scratch = std::env::temp_dir().join(format!("wb-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let results = scratch.to_str().unwrap().to_string();
    let makefile = std::fs::read_to_string(repo().join("Makefile")).unwrap();
    let all = examples(&text);
    assert!(all.len() >= 10, "the README's commands: {all:?}");
    let mut quick_start_ran = false;
    // The quick start first: `check` below reads its results.
    let (quick, rest): (Vec<&Example>, Vec<&Example>) = all.iter().partition(|e| e.section == "Quick start");
    for example in quick.into_iter().chain(rest) {
        let words = &example.words;
        match words[0].as_str() {
            "cargo" => assert_eq!(words[1], "build", "{words:?}"),
            "make" => {
                let target = &words[1];
                assert!(makefile.lines().any(|l| l.starts_with(&format!("{target}:"))), "no make target {target}");
            }
            "target/release/workbench" => {
                let mut args: Vec<String> = words[1..].to_vec();
                let sub = args[0].clone();
                if example.section == "Quick start" {
                    args.extend(["--results-dir".to_string(), results.clone()]);
                    let (code, out) = run(&args);
                    assert_eq!(code, Some(0), "{words:?}: {out}");
                    let name = value_of(&args, "--name").expect("the quick start names its campaign");
                    let summary = std::fs::read_to_string(scratch.join(name).join("summary.md")).unwrap();
                    check_excerpt(&text, &summary);
                    quick_start_ran = true;
                    continue;
                }
                match sub.as_str() {
                    _ if args.iter().any(|a| a == "--help") => {}
                    "campaign" | "explore" => args.push("--dry-run".into()),
                    "check" if args.iter().any(|a| a == "--jepsen") => {}
                    "check" => {
                        assert!(quick_start_ran, "check reads the quick start's results");
                        args[1] = args[1].replacen("results", &results, 1);
                    }
                    "clean" | "bench-peers" => args.push("--help".into()),
                    other => panic!("the README runs `workbench {other}`: teach this test how to run it"),
                }
                let (code, out) = run(&args);
                assert_eq!(code, Some(0), "{words:?}: {out}");
            }
            other => panic!("the README's command {other:?}: teach this test how to run it ({words:?})"),
        }
    }
    assert!(quick_start_ran, "the README has a quick start that runs");
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn the_readme_legend_is_the_one_campaigns_print() {
    // The legend's text in the source (workbench/src/table.rs), unescaped.
    let source = std::fs::read_to_string(repo().join("workbench/src/table.rs")).unwrap();
    let start = source.find("pub const LEGEND: &str = \"\\\n").unwrap() + "pub const LEGEND: &str = \"\\\n".len();
    let body = &source[start..start + source[start..].find("\";").unwrap()];
    let legend = body.replace("\\\n", "").replace("\\\"", "\"");
    let text = readme();
    for line in legend.lines().filter(|l| !l.is_empty()) {
        assert!(text.contains(line), "the README lacks the legend line {line:?}");
    }
}

#[test]
fn readme_tables_are_readable_and_its_links_ship_with_the_repository() {
    let text = readme();
    for line in text.lines().filter(|l| l.starts_with('|')) {
        assert!(line.chars().count() <= MAX_TABLE_LINE, "a table line of {} chars: {line}", line.chars().count());
    }
    assert!(!text.contains("shared/spec"), "the README links outside the repository");
    for (i, _) in text.match_indices("](") {
        let target = &text[i + 2..i + 2 + text[i + 2..].find(')').unwrap()];
        if !target.starts_with("http") && !target.starts_with('#') {
            assert!(repo().join(target).exists(), "the README links {target}, which is not in the repository");
        }
    }
}
