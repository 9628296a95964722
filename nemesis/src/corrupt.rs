//! File faults: SIGKILL a node, damage one of its data files, restart it
//! later (Jepsen's `nemesis.file`, aimed at our LSM engine).
//!
//! A window draws, from the schedule's random stream, the node, which kind
//! of file (a WAL segment or an SSTable), which damage (flip bits at one
//! byte, or cut the file short), and two raw picks that become the file and
//! the offset only when performed: what files a node holds, and how long
//! they are, is known only then. The picks are reduced modulo the count and
//! the size ([`choose`]), so one seed on one data directory always damages
//! the same byte. The node stays down until the window's restart, where
//! the engine's open finds the damage (a torn tail cut, a corrupt table or
//! segment quarantined) and anti-entropy and read repair restore what the
//! node lost from the other replicas.
//!
//! The event records exactly what was done: the node, the file and its
//! size, the offset and the mask of the flipped bits (or the length cut
//! to), and, when the drawn kind of file was missing, what was hit instead.

use docker::{DataFile, FileDamage};
use rand::Rng;
use serde_json::{json, Value};

use crate::action::{Action, ScheduledAction};

/// The kind of file and the damage a window draws: defined in [`crate::action`]
/// with the [`Action::Corrupt`] that carries them, re-exported here.
pub use crate::action::{Damage, Target};

/// One corrupt window: kill, damage and keep down one node, restart it at `end_ms`.
pub fn window(nodes: &[String], start_ms: u64, end_ms: u64, rng: &mut impl Rng) -> Vec<ScheduledAction> {
    assert!(!nodes.is_empty(), "a corrupt window needs a node");
    let node = nodes[rng.random_range(0..nodes.len())].clone();
    let corrupt = Action::Corrupt {
        node: node.clone(),
        target: Target::ALL[rng.random_range(0..Target::ALL.len())],
        damage: Damage::ALL[rng.random_range(0..Damage::ALL.len())],
        file_pick: rng.random(),
        offset_pick: rng.random(),
        mask: rng.random_range(1..=u8::MAX),
    };
    let restart = Action::Restart { nodes: vec![node], primaries_of: None };
    vec![ScheduledAction { at_ms: start_ms, action: corrupt }, ScheduledAction { at_ms: end_ms, action: restart }]
}

/// What was drawn, as the action carries it.
#[derive(Debug, Clone, Copy)]
pub struct Draw {
    /// The kind of file aimed at.
    pub target: Target,
    /// What is done to it.
    pub damage: Damage,
    /// Raw file pick (modulo the candidates).
    pub file_pick: u64,
    /// Raw offset pick (modulo the file's size).
    pub offset_pick: u64,
    /// Bits to flip.
    pub mask: u8,
}

/// The damage to do among `files` (a node's data files, in name order),
/// and the event fields saying what it is; None when the node has no
/// non-empty WAL segment or table at all. The drawn kind of file is used
/// when the node has one, else the other kind (the event says so).
pub fn choose(files: &[DataFile], draw: Draw) -> Option<(FileDamage, Value)> {
    let of = |target: Target| -> Vec<&DataFile> {
        files.iter().filter(|f| f.bytes > 0 && target.matches(&f.name)).collect()
    };
    let (target, candidates) = match of(draw.target) {
        c if !c.is_empty() => (draw.target, c),
        _ => (draw.target.other(), of(draw.target.other())),
    };
    if candidates.is_empty() {
        return None;
    }
    let file = candidates[(draw.file_pick % candidates.len() as u64) as usize];
    let at = draw.offset_pick % file.bytes;
    let mut done =
        json!({"target": target.as_str(), "file": file.name, "file_bytes": file.bytes, "damage": draw.damage.as_str()});
    if target != draw.target {
        done["drawn_target"] = json!(draw.target.as_str());
    }
    let damage = match draw.damage {
        Damage::Truncate => {
            done["truncated_to"] = json!(at);
            FileDamage::Truncate { file: file.name.clone(), len: at }
        }
        Damage::Flip => {
            done["offset"] = json!(at);
            done["mask"] = json!(draw.mask);
            FileDamage::Flip { file: file.name.clone(), offset: at, mask: draw.mask }
        }
    };
    Some((damage, done))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn files() -> Vec<DataFile> {
        let f = |name: &str, bytes| DataFile { name: name.into(), bytes };
        vec![
            f("00000000000000000004.sst", 9_000),
            f("00000000000000000007.sst", 5_000),
            f("LOCK", 0),
            f("MANIFEST", 80),
            f("wal-00000000000000000003.log", 0),
            f("wal-00000000000000000004.log", 1_234),
        ]
    }

    fn draw(target: Target, damage: Damage, file_pick: u64, offset_pick: u64) -> Draw {
        Draw { target, damage, file_pick, offset_pick, mask: 0x10 }
    }

    #[test]
    fn same_seed_same_window_and_choice_different_seed_differs() {
        let nodes: Vec<String> = (1..=3).map(|i| format!("n{i}")).collect();
        let w = |seed| window(&nodes, 100, 900, &mut ChaCha8Rng::seed_from_u64(seed));
        assert_eq!(w(5), w(5));
        assert_ne!(w(5), w(6));
        let Action::Corrupt { target, damage, file_pick, offset_pick, mask, .. } = &w(5)[0].action else {
            panic!("a corrupt action first")
        };
        let d =
            Draw { target: *target, damage: *damage, file_pick: *file_pick, offset_pick: *offset_pick, mask: *mask };
        assert_eq!(choose(&files(), d), choose(&files(), d), "the same draw on the same files damages the same byte");
        assert!(matches!(w(5)[1].action, Action::Restart { .. }));
    }

    #[test]
    fn flips_land_inside_a_nonempty_file_of_the_drawn_kind() {
        let (damage, done) = choose(&files(), draw(Target::Sstable, Damage::Flip, 3, 12_345)).unwrap();
        assert_eq!(
            damage,
            FileDamage::Flip { file: "00000000000000000007.sst".into(), offset: 12_345 % 5_000, mask: 0x10 }
        );
        assert_eq!(done["offset"], 2_345);
        assert_eq!(done["file_bytes"], 5_000);
        let (damage, _) = choose(&files(), draw(Target::Wal, Damage::Flip, 0, 99_999)).unwrap();
        assert_eq!(damage.file(), "wal-00000000000000000004.log", "the empty segment is never picked");
    }

    #[test]
    fn truncation_cuts_strictly_shorter() {
        let (damage, done) = choose(&files(), draw(Target::Wal, Damage::Truncate, 7, 1_234 * 3 + 10)).unwrap();
        assert_eq!(damage, FileDamage::Truncate { file: "wal-00000000000000000004.log".into(), len: 10 });
        assert_eq!(done["truncated_to"], 10);
    }

    #[test]
    fn a_missing_kind_falls_back_to_the_other_and_says_so() {
        let wal_only: Vec<DataFile> = files().into_iter().filter(|f| !f.name.ends_with(".sst")).collect();
        let (damage, done) = choose(&wal_only, draw(Target::Sstable, Damage::Flip, 0, 1)).unwrap();
        assert_eq!(damage.file(), "wal-00000000000000000004.log");
        assert_eq!(done["drawn_target"], "sstable");
        let nothing: Vec<DataFile> = files().into_iter().filter(|f| f.name == "MANIFEST").collect();
        assert!(choose(&nothing, draw(Target::Wal, Damage::Flip, 0, 1)).is_none());
    }

    #[test]
    fn names_in_schedules_and_events_are_the_strings_they_always_were() {
        for target in Target::ALL {
            assert_eq!(serde_json::to_value(target).unwrap(), json!(target.as_str()));
        }
        for damage in Damage::ALL {
            assert_eq!(serde_json::to_value(damage).unwrap(), json!(damage.as_str()));
        }
        let names = |t: &[Target], d: &[Damage]| -> Vec<&str> {
            t.iter().map(|t| t.as_str()).chain(d.iter().map(|d| d.as_str())).collect()
        };
        assert_eq!(names(&Target::ALL, &Damage::ALL), ["wal", "sstable", "flip", "truncate"], "the draw order too");
        let action = Action::Corrupt {
            node: "n2".into(),
            target: Target::Sstable,
            damage: Damage::Truncate,
            file_pick: 7,
            offset_pick: 9,
            mask: 3,
        };
        let text = r#"{"f":"corrupt","node":"n2","target":"sstable","damage":"truncate","file_pick":7,"offset_pick":9,"mask":3}"#;
        assert_eq!(serde_json::to_string(&action).unwrap(), text);
        assert_eq!(serde_json::from_str::<Action>(text).unwrap(), action);
        assert!(serde_json::from_str::<Action>(&text.replace("sstable", "sst")).is_err(), "a misspelt kind is refused");
    }
}
