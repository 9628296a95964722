//! Reads a run's `history.jsonl` line by line into the compact form and
//! prints what it holds, so its cost can be measured apart from the
//! checkers (`/usr/bin/time -v target/release/examples/compact_load <file>`
//! gives its peak RSS: the compact form with no JSON tree kept).

use std::path::PathBuf;
use std::time::Instant;

use history::compact::CompactHistory;

fn main() {
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: compact_load <history.jsonl>");
        std::process::exit(2);
    };
    let started = Instant::now();
    let compact = match CompactHistory::read(&path) {
        Ok(compact) => compact,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let reads = compact.ops().iter().filter(|op| op.siblings.is_some()).count();
    println!(
        "{}: {} lines, {} ok reads with siblings, {} distinct versions, {} nodes in clocks, read in {:.2} s",
        path.display(),
        compact.ops().len(),
        reads,
        compact.versions().len(),
        compact.versions().node_count(),
        started.elapsed().as_secs_f64()
    );
}
