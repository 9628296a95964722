//! Why a simulation first spends a few task ids, and how.
//!
//! tokio numbers every task from one process-wide counter. A runtime keeps
//! its tasks in a list sharded by task id (four shards for a
//! current-thread runtime), and when a runtime is dropped it shuts its
//! tasks down shard by shard. A simulated host's crash is exactly that
//! drop (turmoil drops the host's runtime), and each task dropped there
//! drops its sockets, whose closing segments go out in that order. So
//! which peer hears of a crash first depended on the task ids the run
//! happened to get: on how many tasks the process had spawned before the
//! simulation began. One run alone in a fresh process always replayed; the
//! same seed after other runs in the same process (a campaign's later runs,
//! `explore`'s seeds) could differ by a few simulated milliseconds, and a
//! verdict could flip (seen on seeds combining kills with latency).
//!
//! [`align`] spends task ids until the next one is a multiple of
//! [`ALIGNMENT`], a multiple of every shard count a runtime of the
//! simulator has: every simulation then numbers its tasks alike modulo the
//! shard count, whatever ran before it, and a crash drops them in the same
//! order. That holds when nothing else in the process spawns tasks while a
//! simulation runs; `explore` therefore runs each worker's seeds in a
//! process of its own.

/// Task ids are aligned to this (tokio's largest shard count is 2^16; a
/// current-thread runtime, every simulated host's, has 4 shards).
pub const ALIGNMENT: u64 = 64;

/// How many task ids [`align`] spends at most. Alone in its process it
/// needs fewer than [`ALIGNMENT`]; the slack is for threads that spawn
/// tasks at the same time (a test binary's other tests), which can carry
/// the counter past the boundary it aims at.
const MAX_SPENT: u64 = 16 * ALIGNMENT;

/// Spends task ids on a throwaway runtime until the next task spawned in
/// this process gets an id that is a multiple of [`ALIGNMENT`]. Bounded:
/// at most [`MAX_SPENT`] tasks. Returns whether it got there: it always
/// does when nothing else in the process spawns tasks meanwhile, and when
/// something does, the alignment could not hold anyway, so a miss is not an
/// error (a run in such a process may simply not replay byte for byte).
pub fn align() -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime builds");
    for _ in 0..MAX_SPENT {
        let handle = runtime.spawn(async {});
        let id = task_number(handle.id());
        runtime.block_on(handle).expect("an empty task completes");
        if (id + 1).is_multiple_of(ALIGNMENT) {
            return true;
        }
    }
    false
}

/// A task id as its number (tokio shows it as one).
fn task_number(id: tokio::task::Id) -> u64 {
    id.to_string().parse().expect("a tokio task id displays as its number")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_aligning_the_next_task_id_is_a_multiple() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        for spent in 0..5 {
            for _ in 0..spent {
                runtime.block_on(runtime.spawn(async {})).unwrap();
            }
            // Tests run in parallel threads and spawn tasks too: this one
            // checks only that aligning, when it lands, ends on the
            // boundary it aims at.
            if align() {
                let next = task_number(runtime.spawn(async {}).id());
                assert!(next % ALIGNMENT < 8, "next id {next} right after aligning to {ALIGNMENT}");
            }
        }
    }
}
