//! Failures injected per request: which requests they strike and how
//! they answer.

use super::{Logged, Verb};

/// How an injected failure answers.
#[derive(Clone, Debug)]
pub enum Answer {
    /// A `Status` with this code and the server's usual words for it.
    Status(u16),
    /// The connection drops before the request is carried out.
    Drop,
    /// The request is carried out, then the connection drops before the
    /// answer arrives.
    LoseAnswer,
}

/// A failure for the requests it matches: by verb, resource, name and
/// whether the request is a dry run. It skips the first `after` matches,
/// then answers the next `times` (default one; `None` for all).
#[derive(Clone, Debug)]
pub struct Fault {
    verb: Option<Verb>,
    plural: Option<String>,
    name: Option<String>,
    dry_run: Option<bool>,
    after: usize,
    times: Option<usize>,
    pub(super) answer: Answer,
    seen: usize,
}

impl Fault {
    /// A failure for requests of `verb`, answered with a 500 once.
    pub fn on(verb: Verb) -> Self {
        Fault {
            verb: Some(verb),
            plural: None,
            name: None,
            dry_run: None,
            after: 0,
            times: Some(1),
            answer: Answer::Status(500),
            seen: 0,
        }
    }

    /// Only requests for the resource `plural` (`configmaps`).
    pub fn resource(mut self, plural: &str) -> Self {
        self.plural = Some(plural.to_string());
        self
    }

    /// Only requests for objects named `name`.
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Only requests that are (or are not) dry runs.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = Some(dry_run);
        self
    }

    /// Lets the first `n` matching requests through.
    pub fn after(mut self, n: usize) -> Self {
        self.after = n;
        self
    }

    /// Strikes `n` matching requests, one after another.
    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }

    /// Strikes every matching request from then on.
    pub fn always(mut self) -> Self {
        self.times = None;
        self
    }

    /// Answers as `answer` says.
    pub fn answer(mut self, answer: Answer) -> Self {
        self.answer = answer;
        self
    }

    /// Answers with a `Status` of this code.
    pub fn status(self, code: u16) -> Self {
        self.answer(Answer::Status(code))
    }

    pub(super) fn matches(&self, request: &Logged) -> bool {
        self.verb.is_none_or(|v| v == request.verb)
            && self.plural.as_ref().is_none_or(|p| p == &request.plural)
            && self
                .name
                .as_ref()
                .is_none_or(|n| request.name.as_ref() == Some(n))
            && self.dry_run.is_none_or(|d| d == request.dry_run())
    }

    /// Counts a matching request; whether this one fails.
    pub(super) fn strikes(&mut self) -> bool {
        self.seen += 1;
        self.seen > self.after && self.times.is_none_or(|t| self.seen <= self.after + t)
    }
}
