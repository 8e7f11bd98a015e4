//! [`Section`]: a program's stack-file section as a plain
//! `#[derive(Deserialize)]` struct under one top-level key, for programs
//! that need no checks beyond what serde expresses (types, unknown keys,
//! required keys), each reported at its file, line and column.

use serde::de::{DeserializeOwned, MapAccess};

use super::{ProgramConfig, Source, StackError};

/// A program's settings read from the stack file's key [`KEY`](Self::KEY).
///
/// Mark the struct `#[serde(deny_unknown_fields)]` so that a misspelt key is
/// an error with a suggestion, and give it defaults for keys a stack may
/// leave out: a stack file without the key gets [`Default::default`].
pub trait SectionConfig: DeserializeOwned + Default {
    /// The top-level key the settings sit under, e.g. `quorum`.
    const KEY: &'static str;

    /// Checks serde cannot express; `source` builds errors that name the
    /// file, line and column (read values as
    /// [`Spanned`](serde_saphyr::Spanned) to keep their positions).
    fn check(&self, source: &Source<'_>) -> Result<(), StackError> {
        let _ = source;
        Ok(())
    }
}

/// The [`ProgramConfig`] of a [`SectionConfig`]: `type Config = Section<MySettings>;`.
#[derive(Debug, Default)]
pub struct Section<T>(Option<T>);

impl<T: SectionConfig> ProgramConfig for Section<T> {
    const KEYS: &'static [&'static str] = &[T::KEY];
    type Validated = T;

    fn read_key<'de, A: MapAccess<'de>>(
        &mut self,
        _key: &str,
        map: &mut A,
    ) -> Result<(), A::Error> {
        self.0 = Some(map.next_value()?);
        Ok(())
    }

    fn validate(self, source: &Source<'_>) -> Result<T, StackError> {
        let settings = self.0.unwrap_or_default();
        settings.check(source)?;
        Ok(settings)
    }
}

/// The [`ProgramConfig`] of a program with no settings of its own, such as
/// one whose objects all come from the stack file's `manifests:`: its stack
/// files hold only the keys every stack has.
#[derive(Debug, Default)]
pub struct NoSettings;

impl ProgramConfig for NoSettings {
    const KEYS: &'static [&'static str] = &[];
    type Validated = ();

    fn read_key<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        _map: &mut A,
    ) -> Result<(), A::Error> {
        unreachable!("no key of its own, yet asked for `{key}`")
    }

    fn validate(self, _source: &Source<'_>) -> Result<(), StackError> {
        Ok(())
    }
}
