//! `timeline.html` rendered by a real browser: headless Chromium loads the
//! page from the file system and dumps the DOM it built, and the test reads
//! the planted anomaly's highlight and link back from that DOM.
//!
//! Why a browser and not only string checks on the generated HTML: the
//! page is what a reader opens, and a browser repairs or drops malformed
//! markup silently (an unclosed tag swallowing the bars, an id in the wrong
//! element). What the dumped DOM holds is what the reader gets.
//!
//! Chromium is Debian's `chromium` package (`apt-get install -y chromium`).
//! Without a binary the tests skip, and say so on the terminal even though
//! the test harness captures a passing test's output: the message is written
//! to the process's stderr directly, not through `eprintln!`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::timeline::tests::{bar_around, history, page_of};

/// Binaries tried, in order, on `PATH`; `CHROMIUM` names another.
const CANDIDATES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// How long one page may take to load and dump.
const DUMP_TIMEOUT: Duration = Duration::from_secs(60);

/// The Chromium binary, if any.
fn chromium() -> Option<PathBuf> {
    if let Some(explicit) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(explicit));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).flat_map(|dir| CANDIDATES.map(|c| dir.join(c))).find(|p| p.is_file())
}

/// Says, where the terminal shows it, that a browser test did not run.
fn skip(test: &str) {
    let msg = format!(
        "SKIPPED {test}: no Chromium binary on PATH (tried {CANDIDATES:?}, or set CHROMIUM); install it with `apt-get install -y chromium`\n"
    );
    let _ = std::io::stderr().write_all(msg.as_bytes());
}

/// Writes `html` to a file and returns the DOM Chromium built from it.
fn dump_dom(browser: &Path, html: &str, name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("wb-timeline-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let page = dir.join("timeline.html");
    std::fs::write(&page, html).expect("the page is written");
    let mut child = Command::new(browser)
        .args(["--headless", "--disable-gpu", "--no-sandbox", "--virtual-time-budget=2000", "--dump-dom"])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.display()));
    let started = Instant::now();
    while child.try_wait().expect("the browser can be waited for").is_none() {
        if started.elapsed() > DUMP_TIMEOUT {
            let _ = child.kill();
            panic!("{} did not dump the DOM within {DUMP_TIMEOUT:?}", browser.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("the browser's output");
    assert!(output.status.success(), "{} failed: {:?}", browser.display(), output.status);
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8(output.stdout).expect("the DOM is UTF-8")
}

#[test]
fn chromium_shows_the_planted_stale_read_highlighted_and_linked() {
    let Some(browser) = chromium() else { return skip("chromium_shows_the_planted_stale_read_highlighted_and_linked") };
    let dom = dump_dom(&browser, &page_of(&history(200, true)), "planted");
    assert!(
        dom.contains("<ol id=\"anomalies\">"),
        "the browser kept the anomaly list: {}",
        &dom[..dom.len().min(2000)]
    );
    let bar = bar_around(&dom, "anomaly-stale-reads-0");
    assert!(
        bar.contains("class=\"op ok anomaly\"") && bar.contains("data-key=\"planted\""),
        "the mark sits in the highlighted bar: {bar}"
    );
    assert!(dom.contains("href=\"#anomaly-stale-reads-0\">read of planted by p1"), "the sentence links to the bar");
    assert!(dom.contains("class=\"op ok related\" data-key=\"planted\""), "the missed write is outlined");
    assert_eq!(dom.matches("<div class=\"op ").count(), 202, "every bar survived parsing");
}

#[test]
fn chromium_shows_no_anomaly_in_a_clean_history() {
    let Some(browser) = chromium() else { return skip("chromium_shows_no_anomaly_in_a_clean_history") };
    let dom = dump_dom(&browser, &page_of(&history(200, false)), "clean");
    assert!(dom.contains("id=\"no-anomalies\""));
    assert!(!dom.contains("anomaly-"), "no mark and no link");
    assert!(!dom.contains("anomaly\" data-key"), "no highlighted bar");
    assert_eq!(dom.matches("<div class=\"op ").count(), 200);
}
