//! Hand-written histories for the checker tests.
//!
//! `HistoryBuilder` appends ops in file order, numbering them and stamping
//! each with a time: the one set by `at(t)`, else the previous time + 10.
//! Completions copy the node of their process's open invocation, as the
//! recorder does.

use std::collections::HashMap;

use history::{History, Op, OpType, Resolution, RunConfig, Version};
use serde_json::{json, Value};

/// A version with the given clock entries and timestamp.
pub fn v(clock: &[(&str, u64)], ts: u64) -> Version {
    Version { clock: clock.iter().map(|(n, c)| (n.to_string(), *c)).collect(), ts, dot: None }
}

/// A register run with the given N/W/R, strict (not sloppy), siblings mode.
pub fn run(n: u32, w: u32, r: u32) -> RunConfig {
    let value = json!({
        "nodes": ["n1", "n2", "n3"], "n": n, "w": w, "r": r,
        "sloppy_quorum": false, "resolution": "siblings",
        "hinted_handoff": true, "read_repair": true, "anti_entropy": true,
        "workload": "register", "nemesis": ["partition"], "seed": 42,
        "time_limit_s": 60, "concurrency": 10, "rate": 200.0,
        "backend": "docker", "node_image": "test", "started_at": "2024-11-24T00:00:00Z"
    });
    serde_json::from_value(value).expect("test run config parses")
}

/// `run(3, 2, 2)`: overlapping quorums.
pub fn strict() -> RunConfig {
    run(3, 2, 2)
}

/// The same run under last-write-wins.
pub fn lww(mut run: RunConfig) -> RunConfig {
    run.resolution = Resolution::Lww;
    run
}

/// A sibling as a read returns it: `None` is a tombstone.
pub fn sib(value: Option<&str>, version: Version) -> (Option<String>, Version) {
    (value.map(str::to_string), version)
}

#[derive(Default)]
pub struct HistoryBuilder {
    ops: Vec<Op>,
    next_time: u64,
    open_node: HashMap<u64, String>,
}

impl HistoryBuilder {
    pub fn new() -> HistoryBuilder {
        HistoryBuilder::default()
    }

    /// The time (ns) of the next op.
    pub fn at(&mut self, time: u64) -> &mut Self {
        self.next_time = time;
        self
    }

    fn push(&mut self, mut op: Op) -> &mut Self {
        op.index = self.ops.len() as u64;
        op.time = self.next_time;
        self.next_time += 10;
        self.ops.push(op);
        self
    }

    fn invoke(&mut self, p: u64, f: &str, key: &str, node: &str, value: Value) -> &mut Self {
        self.open_node.insert(p, node.to_string());
        let mut op = Op::client(p, OpType::Invoke, f, key, node);
        op.value = value;
        self.push(op)
    }

    fn complete(&mut self, p: u64, kind: OpType, f: &str, key: &str) -> Op {
        let node = self.open_node.remove(&p).unwrap_or_else(|| "n1".to_string());
        Op::client(p, kind, f, key, &node)
    }

    pub fn invoke_write(&mut self, p: u64, key: &str, val: &str, node: &str) -> &mut Self {
        self.invoke(p, "write", key, node, json!(val))
    }

    pub fn ok_write(&mut self, p: u64, key: &str, val: &str, version: Version) -> &mut Self {
        let mut op = self.complete(p, OpType::Ok, "write", key);
        op.value = json!(val);
        op.version = Some(version);
        self.push(op)
    }

    pub fn invoke_delete(&mut self, p: u64, key: &str, node: &str) -> &mut Self {
        self.invoke(p, "delete", key, node, Value::Null)
    }

    pub fn ok_delete(&mut self, p: u64, key: &str, version: Version) -> &mut Self {
        let mut op = self.complete(p, OpType::Ok, "delete", key);
        op.version = Some(version);
        self.push(op)
    }

    pub fn invoke_read(&mut self, p: u64, key: &str, node: &str) -> &mut Self {
        self.invoke(p, "read", key, node, Value::Null)
    }

    pub fn ok_read(&mut self, p: u64, key: &str, siblings: &[(Option<String>, Version)]) -> &mut Self {
        let mut op = self.complete(p, OpType::Ok, "read", key);
        op.value =
            Value::Array(siblings.iter().map(|(value, version)| json!({"value": value, "version": version})).collect());
        self.push(op)
    }

    pub fn invoke_add(&mut self, p: u64, key: &str, element: &str, node: &str) -> &mut Self {
        self.invoke(p, "add", key, node, json!(element))
    }

    pub fn ok_add(&mut self, p: u64, key: &str, element: &str, version: Version) -> &mut Self {
        let mut op = self.complete(p, OpType::Ok, "add", key);
        op.value = json!(element);
        op.version = Some(version);
        self.push(op)
    }

    /// An `ok` read of a set: each sibling holds a JSON array of elements.
    pub fn ok_read_set(&mut self, p: u64, key: &str, siblings: &[(&[&str], Version)]) -> &mut Self {
        let mut op = self.complete(p, OpType::Ok, "read", key);
        op.value =
            Value::Array(siblings.iter().map(|(els, version)| json!({"value": els, "version": version})).collect());
        self.push(op)
    }

    /// A `fail` or `info` completion of `f`, with an error.
    pub fn end(&mut self, p: u64, kind: OpType, f: &str, key: &str) -> &mut Self {
        let mut op = self.complete(p, kind, f, key);
        op.error = Some("timeout".into());
        self.push(op)
    }

    /// Marks the last op (an `ok` write/add/delete) as hinted for `homes`.
    pub fn hinted_for(&mut self, homes: &[&str]) -> &mut Self {
        let last = self.ops.last_mut().expect("an op to mark");
        last.hinted_for = homes.iter().map(|h| h.to_string()).collect();
        self
    }

    /// Marks the last op (an `ok` read) as answered by `replicas`, as our
    /// store reports it.
    pub fn answered_by(&mut self, replicas: &[&str]) -> &mut Self {
        let last = self.ops.last_mut().expect("an op to mark");
        last.answered_by = Some(replicas.iter().map(|r| r.to_string()).collect());
        self
    }

    /// A nemesis-process event with its value (an action, or the workload's summary).
    pub fn nemesis_value(&mut self, f: &str, value: Value) -> &mut Self {
        self.push(Op::nemesis(f, value))
    }

    /// A phase marker, as the workload records it.
    pub fn phase(&mut self, name: &str) -> &mut Self {
        self.push(Op::nemesis("phase", json!({"phase": name})))
    }

    /// Some other nemesis action.
    pub fn nemesis(&mut self, f: &str) -> &mut Self {
        self.push(Op::nemesis(f, json!({})))
    }

    pub fn build(&self) -> History {
        History::new(self.ops.clone())
    }
}

/// A figure as u64, panicking with the figure's name if absent.
pub fn count(result: &checker::CheckResult, key: &str) -> u64 {
    result.figure(key).and_then(Value::as_u64).unwrap_or_else(|| panic!("figure {key}: {:?}", result.figures))
}

/// A write of `val` by `p` to `key`, invoked at `t0` and acked at `t1`.
pub fn acked_write(b: &mut HistoryBuilder, p: u64, key: &str, val: &str, version: Version, t0: u64, t1: u64) {
    b.at(t0).invoke_write(p, key, val, "n1");
    b.at(t1).ok_write(p, key, val, version);
}

/// A read of `key` by `p` on `node`, invoked at `t0`, answered at `t1`.
pub fn read(b: &mut HistoryBuilder, p: u64, key: &str, siblings: &[(Option<String>, Version)], t0: u64, t1: u64) {
    b.at(t0).invoke_read(p, key, "n3");
    b.at(t1).ok_read(p, key, siblings);
}

/// Four nodes in two DCs (n1, n2 in dc1; n3, n4 in dc2), local quorums.
pub fn two_dcs() -> RunConfig {
    let mut run = run(4, 2, 2);
    run.topology.w_quorum = Some("local".into());
    run.topology.r_quorum = Some("local".into());
    let dcs = [("n1", "dc1"), ("n2", "dc1"), ("n3", "dc2"), ("n4", "dc2")];
    run.topology.datacenters = Some(dcs.iter().map(|(n, d)| (n.to_string(), d.to_string())).collect());
    run
}
