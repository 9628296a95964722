//! Typed parsers for the campaign's flag values, so a bad value is refused
//! by the command-line parser (exit code 2, the flag and the allowed values
//! named) before a backend is chosen or a container started, and `--help`
//! lists what each flag takes.
//!
//! The enums belong to the crates that use them (`history::Resolution`,
//! `workload::Arrival`, ...); each keeps its one list of values (an `ALL`
//! constant and `as_str`), and [`one_of`] turns such a list into a parser,
//! so no name is written twice. Values with structure (`W,R` pairs, nemesis
//! compositions, fractions) get a parser function each.

use std::ffi::OsStr;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::error::ErrorKind;
use nemesis::{Composition, ALL_KINDS};
use workload::KeyShape;

/// A parser accepting exactly the names of `all` (listed by `--help`).
pub fn one_of<T: Copy + Send + Sync + 'static>(
    all: &'static [T],
    name: fn(T) -> &'static str,
) -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(all.iter().map(|v| PossibleValue::new(name(*v))))
        .map(move |s: String| *all.iter().find(|v| name(**v) == s).expect("clap passes only a listed value"))
}

/// One quorum: a number of replicas, or a word (`one`, `all`, `local`,
/// `each`): the node's own vocabulary, parsed by the node's own parser.
pub use dynamo_node::placement::quorum::Quorum as Word;

/// A read and a write quorum, `W,R`: numbers of at least 1, or words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorum {
    /// Write quorum.
    pub w: Word,
    /// Read quorum.
    pub r: Word,
}

/// `--quorums`: `W,R` pairs separated by spaces or semicolons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quorums(pub Vec<Quorum>);

/// Parses `"1,1 2,2"` (or `"1,1;2,2"`, or `"local,local each,local"`);
/// refuses an empty list, zeros and unknown words.
pub fn quorums(s: &str) -> Result<Quorums, String> {
    let pairs = s.split([' ', ';']).filter(|x| !x.is_empty()).map(quorum).collect::<Result<Vec<_>, _>>()?;
    if pairs.is_empty() {
        return Err("give at least one W,R pair, e.g. \"2,2\"".into());
    }
    Ok(Quorums(pairs))
}

fn quorum(pair: &str) -> Result<Quorum, String> {
    let (w, r) = pair.split_once(',').ok_or_else(|| format!("{pair:?} is not a W,R pair (e.g. \"2,2\")"))?;
    let count = |x: &str, what: &str| {
        x.trim().parse::<Word>().map_err(|_| {
            format!("{what} in {pair:?} must be a whole number of at least 1, or one of one, all, local, each")
        })
    };
    Ok(Quorum { w: count(w, "W")?, r: count(r, "R")? })
}

/// A probability in `0..=1` (`--read-fraction`, `--rmw-fraction`).
pub fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a fraction in 0..=1")),
    }
}

/// Ops/s, finite and not negative (0: as fast as possible, closed loop).
pub fn rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a rate in ops/s (a number >= 0)")),
    }
}

/// `--key-dist`: `uniform`, `zipfian` or `zipfian:<exponent >= 0>`.
pub fn key_shape(s: &str) -> Result<KeyShape, String> {
    s.parse()
}

/// `--nemesis` values: compositions of the nemesis names joined by `+`.
#[derive(Debug, Clone, Copy)]
pub struct CompositionParser;

impl TypedValueParser for CompositionParser {
    type Value = Composition;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Composition, clap::Error> {
        let text = value.to_string_lossy();
        text.parse::<Composition>().map_err(|why| {
            let flag = arg.map_or("--nemesis".to_string(), |a| a.to_string());
            let known: Vec<&str> = ALL_KINDS.iter().map(|k| k.as_str()).collect();
            let message = format!(
                "invalid value '{text}' for '{flag}': {why}\n  [possible values: {}; compose with +, e.g. kill+clock]\n",
                known.join(", ")
            );
            clap::Error::raw(ErrorKind::InvalidValue, message).with_cmd(cmd)
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(ALL_KINDS.iter().map(|k| PossibleValue::new(k.as_str()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorums_parse_and_refuse_zeros_and_junk() {
        let q = |w, r| Quorum { w: Word::Count(w), r: Word::Count(r) };
        assert_eq!(quorums("1,1 2,2;3,1").unwrap().0, vec![q(1, 1), q(2, 2), q(3, 1)]);
        let words = quorums("local,local each,local 3,2").unwrap().0;
        assert_eq!(words[1], Quorum { w: Word::Each, r: Word::Local });
        assert!(quorums("most,1").unwrap_err().contains("one of one, all, local, each"));
        assert!(quorums("0,1").unwrap_err().contains("W in \"0,1\""));
        assert!(quorums("2").unwrap_err().contains("not a W,R pair"));
        assert!(quorums("2,x").is_err());
        assert!(quorums(" ").is_err());
    }

    #[test]
    fn fractions_and_rates_have_their_ranges() {
        assert_eq!(fraction("0.25"), Ok(0.25));
        assert!(fraction("1.5").is_err() && fraction("-0.1").is_err() && fraction("NaN").is_err());
        assert_eq!(rate("0"), Ok(0.0));
        assert!(rate("-1").is_err() && rate("inf").is_err());
    }
}
