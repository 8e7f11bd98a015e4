//! Teardown of a stack whose program section no longer reads.
//!
//! A stack file whose program settings were broken by an edit, or were
//! written for an older version of the program, must not block `destroy`:
//! the state alone says what to delete. The generic keys (kubeconfig,
//! context, namespace, backend) are still needed to reach the cluster and
//! the state, so they must read; the program's keys are skipped.

use std::marker::PhantomData;

use serde::de::{IgnoredAny, MapAccess};

use crate::error::Error;
use crate::program::{ConfigOf, NoCommands, Program, StackInfo};
use crate::stack::{ProgramConfig, Source, StackError};
use echo_iac_engine::declare::Resources;

/// Program `P` with its section skipped: the same name, so the same
/// identity (labels, field manager, state and lock names), and nothing to
/// declare.
pub(crate) struct Unreadable<P> {
    /// Why the section could not be read, for the note `declare` returns.
    pub(crate) reason: String,
    program: PhantomData<fn() -> P>,
}

impl<P> Unreadable<P> {
    pub(crate) fn new(reason: String) -> Self {
        Unreadable {
            reason,
            program: PhantomData,
        }
    }
}

impl<P: Program> Program for Unreadable<P> {
    const NAME: &'static str = P::NAME;
    const ABOUT: &'static str = P::ABOUT;
    type Config = Skipped<P::Config>;
    type Command = NoCommands;

    fn declare(&self, _stack: &StackInfo, _config: &ConfigOf<Self>) -> Result<Resources, Error> {
        Err(Error::refused(
            format!(
                "the stack file's {} settings cannot be read: {}",
                P::NAME,
                self.reason
            ),
            "fix the stack file to preview or update the stack",
        ))
    }
}

/// Accepts the keys of program config `C` without reading their values.
pub(crate) struct Skipped<C>(PhantomData<fn() -> C>);

impl<C> Default for Skipped<C> {
    fn default() -> Self {
        Skipped(PhantomData)
    }
}

impl<C: ProgramConfig> ProgramConfig for Skipped<C> {
    const KEYS: &'static [&'static str] = C::KEYS;
    type Validated = ();

    fn read_key<'de, A: MapAccess<'de>>(
        &mut self,
        _key: &str,
        map: &mut A,
    ) -> Result<(), A::Error> {
        map.next_value::<IgnoredAny>().map(drop)
    }

    fn validate(self, _source: &Source<'_>) -> Result<(), StackError> {
        Ok(())
    }
}

/// Whether `error`, from reading a stack file, lies in what a teardown can
/// skip: the file exists and reads, but does not validate.
pub(crate) fn skippable(error: &Error) -> bool {
    matches!(error, Error::Stack(StackError::Invalid(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::testing::{Greeting, parse_as};

    #[test]
    fn a_section_that_does_not_validate_is_skipped_with_the_generic_keys_kept() {
        let text = "namespace: echo-dev\ngreeting: ''\n";
        assert!(parse_as::<Greeting>("dev", text, None).is_err());
        let stack = parse_as::<Skipped<Greeting>>("dev", text, None).unwrap();
        assert_eq!(stack.namespace, "echo-dev");
    }

    #[test]
    fn a_section_of_the_wrong_shape_is_skipped_but_unknown_keys_are_not() {
        let text = "namespace: echo-dev\ngreeting: {deep: [1, 2]}\n";
        assert!(parse_as::<Skipped<Greeting>>("dev", text, None).is_ok());
        let text = "namespace: echo-dev\ngreting: hello\n";
        assert!(parse_as::<Skipped<Greeting>>("dev", text, None).is_err());
    }

    #[test]
    fn broken_generic_keys_are_not_skipped() {
        let text = "namespace: [echo-dev]\ngreeting: hello\n";
        assert!(parse_as::<Skipped<Greeting>>("dev", text, None).is_err());
    }
}
