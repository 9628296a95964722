//! The cas-register model, and Jepsen's EDN histories read in.
//!
//! Histories are generated from a seed: clients call read, write and cas
//! on a few registers with overlapping windows, each op taking effect at a
//! random instant inside its window, applied in that order to real
//! registers; what each op returned is what the registers said then. So a
//! generated history is linearizable by construction. A planted violation
//! is then added at the end, where nothing overlaps it: a cas that
//! succeeded expecting a value the register did not hold, or a read of a
//! value overwritten before it began. Each history is written both as
//! Jepsen's EDN and as this project's JSONL, and both must get the same
//! verdict.

use std::collections::HashMap;

use checker::linearizable::{check_history, Model};
use checker::{CheckResult, Validity};
use history::jepsen::{self, Options};
use history::{History, Op, OpType};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// One generated op: what was called, when, and what it returned.
#[derive(Debug, Clone)]
struct Generated {
    process: u64,
    key: u32,
    f: &'static str,
    /// `write`: the value; `cas`: `[expected, new]`; `read`: null.
    value: Value,
    call_ns: u64,
    /// When it took effect.
    effect_ns: u64,
    return_ns: u64,
    /// `ok`, or `fail` for a cas that found another value.
    outcome: OpType,
    /// A read's result (null: never written).
    read: Value,
}

/// A linearizable history of `ops_per_process` ops by each of `processes`
/// clients on `keys` registers, values drawn from a small set so they repeat.
fn generate(seed: u64, processes: u64, keys: u32, ops_per_process: usize) -> Vec<Generated> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ops = Vec::new();
    for process in 0..processes {
        let mut now_ns = rng.random_range(0..50u64);
        for _ in 0..ops_per_process {
            let call_ns = now_ns;
            let effect_ns = call_ns + rng.random_range(1..40u64);
            let return_ns = effect_ns + rng.random_range(1..40u64);
            let (f, value) = match rng.random_range(0..3) {
                0 => ("read", Value::Null),
                1 => ("write", json!(rng.random_range(1..6))),
                _ => ("cas", json!([rng.random_range(1..6), rng.random_range(1..6)])),
            };
            let key = rng.random_range(0..keys);
            ops.push(Generated {
                process,
                key,
                f,
                value,
                call_ns,
                effect_ns,
                return_ns,
                outcome: OpType::Ok,
                read: Value::Null,
            });
            now_ns = return_ns + rng.random_range(1..30u64);
        }
    }
    apply_in_effect_order(&mut ops);
    ops
}

/// Applies the ops to real registers in the order they take effect, and
/// records what each returned.
fn apply_in_effect_order(ops: &mut [Generated]) {
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| (ops[i].effect_ns, i));
    let mut registers: HashMap<u32, Value> = HashMap::new();
    for i in order {
        let op = &mut ops[i];
        let current = registers.get(&op.key).cloned().unwrap_or(Value::Null);
        match op.f {
            "read" => op.read = current,
            "write" => {
                registers.insert(op.key, op.value.clone());
            }
            _ if op.value[0] == current => {
                registers.insert(op.key, op.value[1].clone());
            }
            _ => op.outcome = OpType::Fail,
        }
    }
}

/// After everything: a write of 9 acked, then (alone) `planted`.
fn plant(ops: &mut Vec<Generated>, planted: &str) {
    let end = ops.iter().map(|o| o.return_ns).max().unwrap_or(0) + 100;
    let at = |call_ns: u64, f: &'static str, value: Value, read: Value| Generated {
        process: 100,
        key: 0,
        f,
        value,
        call_ns,
        effect_ns: call_ns + 1,
        return_ns: call_ns + 2,
        outcome: OpType::Ok,
        read,
    };
    ops.push(at(end, "write", json!(9), Value::Null));
    match planted {
        "cas" => ops.push(at(end + 10, "cas", json!([7, 8]), Value::Null)),
        _ => ops.push(at(end + 10, "read", Value::Null, json!(6))),
    }
}

/// The ops as history lines (invocation, completion), in time order.
fn lines(ops: &[Generated]) -> Vec<(u64, &Generated, OpType)> {
    let mut lines: Vec<(u64, &Generated, OpType)> =
        ops.iter().flat_map(|o| [(o.call_ns, o, OpType::Invoke), (o.return_ns, o, o.outcome)]).collect();
    lines.sort_by_key(|(t, o, kind)| (*t, *kind != OpType::Invoke, o.process));
    lines
}

fn edn_of(value: &Value) -> String {
    match value {
        Value::Null => "nil".to_string(),
        Value::Array(items) => format!("[{}]", items.iter().map(edn_of).collect::<Vec<_>>().join(" ")),
        other => other.to_string(),
    }
}

/// Jepsen's EDN, independent keys: `:value [key value]`.
fn as_edn(ops: &[Generated]) -> String {
    let mut text = String::new();
    for (time, op, kind) in lines(ops) {
        let value = if op.f == "read" && kind == OpType::Ok { &op.read } else { &op.value };
        let kind = format!("{kind:?}").to_lowercase();
        text.push_str(&format!(
            "{{:type :{kind}, :f :{}, :value [{} {}], :process {}, :time {time}}}\n",
            op.f,
            op.key,
            edn_of(value),
            op.process
        ));
    }
    text
}

/// This project's JSONL (`history.jsonl`), written and read back.
fn as_jsonl(ops: &[Generated], name: &str) -> History {
    let mut text = String::new();
    for (index, (time, op, kind)) in lines(ops).into_iter().enumerate() {
        let mut line = Op::client(op.process, kind, op.f, &op.key.to_string(), "n1");
        (line.index, line.time) = (index as u64, time);
        line.value = match (op.f, kind) {
            ("read", OpType::Ok) if op.read.is_null() => json!([]),
            ("read", OpType::Ok) => json!([{"value": op.read, "version": {}}]),
            _ => op.value.clone(),
        };
        text.push_str(&serde_json::to_string(&line).unwrap());
        text.push('\n');
    }
    let path = std::env::temp_dir().join(format!("cas-register-{}-{name}.jsonl", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let history = history::read_history(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    history
}

fn answer(result: &CheckResult) -> Value {
    result.figure("linearizable").cloned().unwrap_or(Value::Null)
}

/// Both forms of `ops`, checked as a cas-register: the same answer, which
/// is returned.
fn same_verdict_both_ways(ops: &[Generated], name: &str) -> CheckResult {
    let edn = jepsen::parse(&as_edn(ops), Options { independent: true }).unwrap();
    let from_edn = check_history(&edn, Model::CasRegister);
    let from_jsonl = check_history(&as_jsonl(ops, name), Model::CasRegister);
    assert_eq!(answer(&from_edn), answer(&from_jsonl), "{name}");
    for figure in ["keys", "keys_decided", "keys_violating"] {
        assert_eq!(from_edn.figure(figure), from_jsonl.figure(figure), "{name}: {figure}");
    }
    from_edn
}

#[test]
fn generated_cas_register_histories_are_linearizable_both_ways() {
    for seed in 0..20 {
        let ops = generate(seed, 4, 3, 30);
        assert!(ops.iter().any(|o| o.f == "cas" && o.outcome == OpType::Ok), "seed {seed} exercises a cas");
        let result = same_verdict_both_ways(&ops, &format!("clean-{seed}"));
        assert_eq!(answer(&result), json!(true), "seed {seed}: {:?}", result.figures);
        assert_eq!(result.valid, Validity::True);
        assert_eq!(result.figure("model"), Some(&json!("cas-register")));
    }
}

#[test]
fn a_planted_cas_or_stale_read_is_flagged_both_ways_with_a_witness() {
    for seed in 0..10 {
        for planted in ["cas", "read"] {
            let mut ops = generate(seed, 4, 3, 30);
            plant(&mut ops, planted);
            let result = same_verdict_both_ways(&ops, &format!("{planted}-{seed}"));
            assert_eq!(answer(&result), json!(false), "seed {seed}, planted {planted}");
            assert_eq!(result.figure("keys_violating"), Some(&json!(["0"])));
            let sentence = result.figure("examples").unwrap()[0]["sentence"].as_str().unwrap().to_string();
            let expected = if planted == "cas" { "cas from 7 to 8" } else { "saw 6" };
            assert!(sentence.contains(expected), "{sentence}");
        }
    }
}

#[test]
fn a_cas_under_the_register_model_is_not_understood_and_its_key_not_decided() {
    let ops = generate(3, 4, 3, 30);
    let history = jepsen::parse(&as_edn(&ops), Options { independent: true }).unwrap();
    let result = check_history(&history, Model::Register);
    assert_eq!(result.valid, Validity::Unknown);
    assert_ne!(answer(&result), json!(true), "never true on ops it did not read");
    let reason = result.figure("reason").and_then(Value::as_str).unwrap_or_default();
    assert!(reason.contains("\"cas\"") && reason.contains("register model"), "{reason}");
}

#[test]
fn a_cas_whose_value_is_not_a_pair_is_not_understood() {
    let text = "{:type :invoke, :f :write, :value 1, :process 0, :time 1}\n\
                {:type :ok, :f :write, :value 1, :process 0, :time 2}\n\
                {:type :invoke, :f :cas, :value 1, :process 1, :time 3}\n\
                {:type :ok, :f :cas, :value 1, :process 1, :time 4}\n";
    let history = jepsen::parse(text, Options::default()).unwrap();
    let result = check_history(&history, Model::CasRegister);
    assert_eq!(result.valid, Validity::Unknown);
    assert_eq!(answer(&result), json!("unknown"));
    let reason = result.figure("reason").and_then(Value::as_str).unwrap_or_default();
    assert!(reason.contains("[expected, new]"), "{reason}");
}

#[test]
fn a_failed_cas_constrains_nothing_and_an_info_cas_may_have_happened() {
    // write 1; cas 1->2 info (no answer); read 2: linearizable only if the
    // info cas took effect, which it may have.
    let text = "{:type :invoke, :f :write, :value 1, :process 0, :time 1}\n\
                {:type :ok, :f :write, :value 1, :process 0, :time 2}\n\
                {:type :invoke, :f :cas, :value [1 2], :process 1, :time 3}\n\
                {:type :info, :f :cas, :value [1 2], :process 1, :time 4}\n\
                {:type :invoke, :f :cas, :value [5 3], :process 2, :time 5}\n\
                {:type :fail, :f :cas, :value [5 3], :process 2, :time 6}\n\
                {:type :invoke, :f :read, :value nil, :process 0, :time 7}\n\
                {:type :ok, :f :read, :value 2, :process 0, :time 8}\n";
    let history = jepsen::parse(text, Options::default()).unwrap();
    assert_eq!(answer(&check_history(&history, Model::CasRegister)), json!(true));
}
