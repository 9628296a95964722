//! The fast reader ([`CompactHistory::read`]) against the plain one
//! ([`CompactHistory::from_ops`] of the lines parsed as [`Op`]s): on
//! hostile hand-written lines and on random ops written with random
//! whitespace, the two must give the same history, id for id.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::tests::{assert_same, write_file};
use super::{CompactHistory, VersionId};
use crate::{Op, OpType};

/// Asserts `a` and `b` are the same history down to the ids: the same
/// lines, names, values, siblings and versions, numbered alike.
fn assert_identical(a: &CompactHistory, b: &CompactHistory) {
    assert_eq!(a.ops, b.ops, "the lines, ids and all");
    assert!(a.names.iter().eq(b.names.iter()), "the names, in id order");
    assert!(a.values.iter().eq(b.values.iter()), "the values, in id order");
    assert_eq!(a.siblings, b.siblings);
    assert_eq!(a.name_lists, b.name_lists);
    let (va, vb) = (a.versions(), b.versions());
    assert_eq!((va.len(), va.node_count()), (vb.len(), vb.node_count()));
    for node in 0..va.node_count() {
        let node = super::Id(node as u32);
        assert_eq!(va.node_name(node), vb.node_name(node));
    }
    for id in 0..va.len() {
        let id = VersionId(id as u32);
        assert_eq!(va.to_version(id), vb.to_version(id));
    }
}

/// Reads `lines` both ways and holds the two to each other and to the ops.
fn assert_read_as_parsed(name: &str, lines: &[String]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let path = write_file(name, &text);
    let fast = CompactHistory::read(&path).unwrap();
    let ops: Vec<Op> = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let plain = CompactHistory::from_ops(&ops);
    assert_identical(&fast, &plain);
    assert_same(&fast, &ops);
}

/// Lines written by hand to hit every case the fast path must hand back
/// or get exactly right; `#` stands for the line's index.
const HOSTILE: &[&str] = &[
    r#"{"index":#,"time":1,"process":0,"type":"invoke","f":"write","key":"k1","node":"n1","value":  "p0-1" }"#,
    r#"{ "time" : 2 , "index" : # , "type":"ok","process":0,"f":"write","key":"k1","node":"n1","value":"p0-1","version":{"ts":10,"clock":{"n2":1,"n1":4,"n2":3},"dot":{"counter":2,"node":"n1"}},"hinted_for":["n3","n2"]}"#,
    r#"{"index":#,"time":3,"process":"nemesis","type":"info","f":"start-partition","value":{"grudge":{"n1":["n3"]},"a":[1, 2]}}"#,
    r#"{"index":#,"time":4,"process":1,"type":"invoke","f":"write","key":"k\u0031","node":"n\u00e9","value":"a\u00e9\/"}"#,
    r#"{"index":#,"time":5,"process":1,"type":"ok","f":"write","key":"k1","node":"n1","value":1.0,"version":[{"n1":1},5]}"#,
    r#"{"index":#,"time":6,"process":2,"type":"invoke","f":"write","key":"k2","node":"n2","value":1e2}"#,
    r#"{"index":#,"time":7,"process":2,"type":"ok","f":"write","key":"k2","node":"n2","value":12345678901234567890,"version":{"dot":["n2",3]}}"#,
    r#"{"index":#,"time":8,"process":3,"type":"invoke","f":"write","key":"k2","node":"n2","value":[-5,-0,1234567890123456789,123456789012345678]}"#,
    r#"{"index":#,"time":9,"process":3,"type":"fail","f":"write","key":"k2","node":"n2","value":[[1,[2,[]]],"x",true,false,null],"error":"overloaded","dc":"dc2"}"#,
    r#"{"index":#,"time":10,"process":4,"type":"invoke","f":"read","key":"k1","node":"n1"}"#,
    r#"{"index":#,"time":11,"process":4,"type":"ok","f":"read","key":"k1","node":"n1","value":[["p0-1",{"clock":{"n1":1},"ts":5}],{"value":null,"version":{"ts":6,"dot":{"node":"n2","counter":1}},"extra":[1,{}]}],"answered_by":["n1","n2"]}"#,
    r#"{"index":#,"time":12,"process":4,"type":"ok","f":"read","key":"k1","node":"n1","value":[{"value":"x"}]}"#,
    r#"{"index":#,"time":13,"process":4,"type":"ok","f":"read","key":"k1","node":"n1","value":[{"value":"x","version":{"clock":{"n3":1,"n1":2,"n3":9}}, "extra" : 1.5 }]}"#,
    r#"{"index":#,"time":14,"process":4,"type":"ok","f":"read","key":"k1","node":"n1","value":[{"value":1,"value":2,"version":{}}]}"#,
    r#"{"index":#,"time":15,"process":4,"type":"ok","f":"read","key":"k1","node":"n1","value":[{"value":1,"version":{"ts":1,"ts":2}}]}"#,
    r#"{"index":#,"time":16,"process":4,"type":"ok","f":"read","key":"k1","node":"n1","value":"not a list"}"#,
    r#"{"index":#,"time":17,"process":4,"type":"ok","f":"read","key":"k1","node":"n1","value":null}"#,
    r#"{"index":#,"time":18,"process":4,"type":"ok","f":"read","key":"k1","node":"n1"}"#,
    r#"{"index":#,"time":19,"process":4,"type":"ok","f":"read","key":"k1","node":"n1","value":[{"value":"a\u00e9","version":{}},{"value":[ 3, 1 ],"version":{"clock":{}}}]}"#,
    r#"{"index":#,"time":20,"process":5,"type":"ok","f":"add","key":"k1","node":"n1","value":17,"version":{"clock":{"n1":1},"ts":5},"unknown":{"x":[1e400]}}"#,
    r#"{"index":#,"time":21,"process":5,"type":"ok","f":"read","key":"k1","node":"n1","value":[{"value":[1,2,3],"version":{"clock":{"n1":1},"ts":5}},["[1,2]",{"clock":{"n2":1},"ts":5,"dot":null}]]}"#,
    r#"{"index":#,"time":22,"process":5,"type":"ok","f":"read","key":"k1","node":"n1","value":[["a",{},"extra"]]}"#,
    r#"{"index":#,"time":23,"process":5,"type":"ok","f":"re\u0061d","key":"k1","node":"n1","value":[["a",{"ts":3}]]}"#,
    r#"{"index":#,"time":24,"process":18446744073709551615,"type":"info","f":"write","key":"k1","node":"n1","value":-7,"error":"timeout"}"#,
    r#"{"index":#,"time":25,"process":6,"type":"ok","f":"read","key":"k1","node":"n1","value":[{"value":"y","version":{"clock":{"n1":1}},"version2":1}],"answered_by":[]}"#,
    "",
    "   \t",
    r#"{"index":#,"time":26,"process":6,"type":"ok","f":"read","key":"k1","node":"n1","value":[{"value":"y","version":{"clock":{"n1":1}}}] }"#,
];

#[test]
fn hostile_lines_are_read_exactly_as_parsed_ops() {
    let mut index = 0;
    let lines: Vec<String> = HOSTILE
        .iter()
        .map(|line| {
            if line.trim().is_empty() {
                return line.to_string();
            }
            index += 1;
            line.replace('#', &(index - 1).to_string())
        })
        .collect();
    assert_read_as_parsed("hostile", &lines);
}

#[test]
fn a_value_the_plain_path_rejects_is_rejected_on_its_line() {
    let good = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","key":"k1","node":"n1","value":"v"}"#;
    let bad = [
        r#"{"index":1,"time":2,"process":0,"type":"invoke","f":"write","value":[1e400]}"#,
        r#"{"index":1,"time":2,"process":0,"type":"invoke","f":"write","value":"\ud800"}"#,
        r#"{"index":1,"time":2,"process":0,"type":"ok","f":"read","value":[{"value":1,"version":{},"x":1e400}]}"#,
        r#"{"index":1,"time":2,"process":0,"type":"ok","f":"read","value":[{"value":1,"version":{"ts":-1}}],"version":{"ts":"x"}}"#,
        r#"{"index":1,"time":2,"process":-1,"type":"invoke","f":"write"}"#,
        r#"{"index":1,"time":2,"process":0,"type":"invoke","f":"write","f":"read"}"#,
    ];
    for line in bad {
        assert!(serde_json::from_str::<Op>(line).is_err(), "the plain path rejects {line}");
        let path = write_file("rejects", &format!("{good}\n\n{line}\n"));
        let err = CompactHistory::read(&path).unwrap_err().to_string();
        let plain = serde_json::from_str::<Op>(line).unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains(&plain), "{line}: {err}");
    }
}

/// Whether `f` is finite and serde_json parses its text back to it.
fn reads_back(f: f64) -> bool {
    f.is_finite() && serde_json::from_str::<f64>(&serde_json::to_string(&f).unwrap()).ok() == Some(f)
}

/// A JSON value of any shape, with the texts that need escapes, numbers
/// of every kind and objects.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (0u64..100).prop_map(|n| json!(n)),
        // Floats serde_json reads back as written: others come back an ulp
        // off (without its float_roundtrip feature), on either path alike,
        // which `assert_same`'s comparison with the op would take for a change.
        any::<f64>().prop_filter("reads back", |f| reads_back(*f)).prop_map(|f| json!(f)),
        "[a-z0-9\"\\\\/é\u{1}\t -]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A version as the history writes it, in either form, sometimes broken.
fn any_version() -> impl Strategy<Value = Value> {
    let clock = proptest::collection::btree_map("n[1-4]", 0u64..5, 0..3);
    let dot = proptest::option::of(("n[1-4]", 1u64..5));
    (clock, 0u64..3, dot, 0..8u8).prop_map(|(clock, ts, dot, form)| {
        let dot = dot.map(|(node, counter)| json!({"node": node, "counter": counter}));
        match form {
            0 => json!([clock, ts]),
            1 => json!({"ts": ts}),
            2 => json!({"clock": clock, "ts": "late"}),
            _ => json!({"clock": clock, "ts": ts, "dot": dot}),
        }
    })
}

/// A read's value: siblings in either form, sometimes one that does not parse.
fn any_siblings() -> impl Strategy<Value = Value> {
    let sibling = (any_json(), any_version(), 0..10u8).prop_map(|(value, version, form)| match form {
        0 => json!([value, version]),
        1 => json!({"value": value}),
        2 => json!({"value": value, "version": version, "extra": [1.5]}),
        _ => json!({"value": value, "version": version}),
    });
    prop_oneof![
        4 => proptest::collection::vec(sibling, 0..4).prop_map(Value::Array),
        1 => any_json(),
    ]
}

/// One op of any shape a history holds.
fn any_op() -> impl Strategy<Value = Op> {
    let names = proptest::option::of("[kn][0-9é\"]{0,2}");
    (
        (0u64..4, prop_oneof![Just("read"), Just("write"), Just("add"), Just("start-partition")]),
        prop_oneof![Just(OpType::Invoke), Just(OpType::Ok), Just(OpType::Fail), Just(OpType::Info)],
        (names.clone(), names.clone(), names),
        prop_oneof![any_json(), any_siblings()],
        proptest::option::of(any_version()),
        proptest::collection::vec("n[1-3]", 0..3),
        proptest::option::of(proptest::collection::vec("n[1-3]", 0..3)),
    )
        .prop_map(|((process, f), kind, (key, node, error), value, version, hinted_for, answered_by)| {
            let mut op = if process == 0 { Op::nemesis(f, Value::Null) } else { Op::client(process, kind, f, "", "") };
            (op.key, op.node, op.error, op.value) = (key, node, error, value);
            op.version = version.and_then(|v| serde_json::from_value(v).ok());
            (op.hinted_for, op.answered_by) = (hinted_for, answered_by);
            op
        })
}

/// `json` with whitespace put after structural characters, as `spaces`
/// says (one entry per place, cycled).
fn with_whitespace(json: &str, spaces: &[&str]) -> String {
    let mut out = String::with_capacity(json.len() * 2);
    let (mut in_string, mut escaped, mut place) = (false, false, 0);
    for c in json.chars() {
        out.push(c);
        if in_string {
            (in_string, escaped) = (escaped || c != '"', !escaped && c == '\\');
            continue;
        }
        if c == '"' {
            in_string = true;
        } else if matches!(c, '{' | '[' | ',' | ':' | '}' | ']') {
            out.push_str(spaces[place % spaces.len()]);
            place += 1;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_ops_with_random_whitespace_are_read_exactly_as_parsed(
        ops in proptest::collection::vec(any_op(), 1..40),
        spaces in proptest::collection::vec(prop_oneof![Just(""), Just(""), Just(" "), Just("\t"), Just(" \r ")], 1..8),
    ) {
        let lines: Vec<String> = ops
            .into_iter()
            .enumerate()
            .map(|(i, mut op)| {
                op.index = i as u64;
                let json = serde_json::to_string(&op).unwrap();
                if i % 2 == 0 { json } else { with_whitespace(&json, &spaces) }
            })
            .collect();
        assert_read_as_parsed("random", &lines);
    }
}
