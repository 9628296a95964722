//! The consistent-prefix workload's answer values: the one format the
//! workload writes and the `consistent-prefix` checker reads.
//!
//! In the `prefix` workload a client writes a *question* (a unique value such
//! as `p3-7`) to a question key, reads that key back, and then writes an
//! *answer* to the paired answer key. The answer must say which questions it
//! answers, in the value itself, because a reader who later sees the answer
//! learns only the stored value: `"p4-9 answers p3-7"` is the answer `p4-9`
//! to the question `p3-7`; under sibling resolution a read-back can return
//! several concurrent questions, and the answer names every one it saw,
//! comma-separated: `"p4-9 answers p3-7,p1-2"`.
//!
//! Question values are the workload's `p<process>-<seq>` ids, which hold no
//! space and no comma, so the format parses back without ambiguity; the
//! writer asserts that. An answer value is unique per run like every value
//! written (its id is), so the phantom-reads checker treats it like any
//! register value.

/// What separates an answer's id from the questions it answers.
const ANSWERS: &str = " answers ";

/// What separates the questions an answer names.
const QUESTION_SEPARATOR: char = ',';

/// An answer value, parsed: its own id and the questions it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<'a> {
    /// The answer's own unique id (`p4-9`).
    pub id: &'a str,
    /// The question values it answers, as the writer read them (at least one).
    pub questions: Vec<&'a str>,
}

impl<'a> Answer<'a> {
    /// Parses a stored value; `None` when it is not an answer (a question,
    /// a value from another workload, a malformed string).
    pub fn parse(value: &'a str) -> Option<Answer<'a>> {
        let (id, questions) = value.split_once(ANSWERS)?;
        let questions: Vec<&str> = questions.split(QUESTION_SEPARATOR).collect();
        if id.is_empty() || questions.iter().any(|q| q.is_empty()) {
            return None;
        }
        Some(Answer { id, questions })
    }
}

/// The value of answer `id` to `questions` (at least one; none may hold the
/// separators, which question ids never do).
pub fn answer_value(id: &str, questions: &[&str]) -> String {
    assert!(!questions.is_empty(), "an answer answers at least one question");
    let clean = |s: &str| !s.is_empty() && !s.contains(QUESTION_SEPARATOR) && !s.contains(' ');
    assert!(
        clean(id) && questions.iter().all(|q| clean(q)),
        "ids and questions hold no space or comma: {id} {questions:?}"
    );
    format!("{id}{ANSWERS}{}", questions.join(&QUESTION_SEPARATOR.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_parses_back_to_its_id_and_questions() {
        let one = answer_value("p4-9", &["p3-7"]);
        assert_eq!(one, "p4-9 answers p3-7");
        assert_eq!(Answer::parse(&one), Some(Answer { id: "p4-9", questions: vec!["p3-7"] }));
        let two = answer_value("p4-9", &["p3-7", "p1-2"]);
        assert_eq!(Answer::parse(&two).unwrap().questions, vec!["p3-7", "p1-2"]);
    }

    #[test]
    fn questions_and_other_values_are_not_answers() {
        assert_eq!(Answer::parse("p3-7"), None);
        assert_eq!(Answer::parse("p4-9 answers "), None);
        assert_eq!(Answer::parse(" answers p3-7"), None);
        assert_eq!(Answer::parse("p4-9 answers p3-7,"), None);
    }
}
