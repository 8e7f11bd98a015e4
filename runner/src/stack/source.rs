//! The stack file being validated: where errors point. The stack's own
//! checks and the program's build their errors here, so both read the same.

use std::path::Path;

use serde_saphyr::{Location, Spanned};

use super::error::{SourceError, StackError};
use super::snippet::{Mark, render_snippet};

/// A stack file's name and text, for errors that point into it.
pub struct Source<'a> {
    pub(super) file: &'a Path,
    pub(super) text: &'a str,
}

impl Source<'_> {
    /// An error at `value`, underlined with `label`.
    pub fn at<T>(
        &self,
        value: &Spanned<T>,
        message: String,
        label: &str,
        hint: &str,
    ) -> StackError {
        self.error(
            self.position(value.referenced),
            message,
            vec![self.mark(value.referenced, label, true)],
            Some(hint.to_string()),
        )
    }

    /// An error at `position` (line and column), showing `marks`.
    pub fn error(
        &self,
        position: Option<(usize, usize)>,
        message: String,
        marks: Vec<Mark>,
        hint: Option<String>,
    ) -> StackError {
        StackError::Invalid(Box::new(SourceError {
            file: self.file.to_path_buf(),
            position,
            message,
            snippet: render_snippet(self.text, &marks),
            hint,
        }))
    }

    /// Line and column of `at`; `None` when serde-saphyr did not know it.
    pub fn position(&self, at: Location) -> Option<(usize, usize)> {
        let line = usize::try_from(at.line()).ok()?;
        let column = usize::try_from(at.column()).ok()?;
        (line > 0 && column > 0).then_some((line, column))
    }

    /// Underlines the value at `at`.
    pub fn mark(&self, at: Location, label: &str, primary: bool) -> Mark {
        let (line, column) = self.position(at).unwrap_or((0, 0));
        Mark {
            line,
            column,
            len: usize::try_from(at.span().len()).unwrap_or(1),
            label: label.to_string(),
            primary,
        }
    }

    /// Underlines the key `key:` that owns the value at `at`, searching from
    /// the value's line upwards; the value itself when the key is not found.
    pub fn key_mark(&self, at: Location, key: &str, label: &str, primary: bool) -> Mark {
        let owner = format!("{key}:");
        let found = self.position(at).and_then(|(line, _)| {
            let lines: Vec<&str> = self.text.lines().take(line).collect();
            lines
                .into_iter()
                .enumerate()
                .rev()
                .find_map(|(index, text)| {
                    let trimmed = text.trim_start();
                    let trimmed = trimmed.strip_prefix("- ").unwrap_or(trimmed);
                    trimmed.starts_with(&owner).then(|| {
                        let byte = text.len() - trimmed.len();
                        (index + 1, text[..byte].chars().count() + 1)
                    })
                })
        });
        match found {
            Some((line, column)) => Mark {
                line,
                column,
                len: key.chars().count(),
                label: label.to_string(),
                primary,
            },
            None => self.mark(at, label, primary),
        }
    }

    /// The value at `at` as written in the file (quotes included), when
    /// serde-saphyr knows its span.
    pub fn written(&self, at: Location) -> Option<&str> {
        let start = usize::try_from(at.span().byte_offset()?).ok()?;
        let len = usize::try_from(at.span().byte_len()?).ok()?;
        self.text.get(start..start + len)
    }

    /// Where character `index` of a string value sits in the file, when the
    /// value is written literally on one line (plain or quoted without escapes);
    /// `None` when escapes or folding make the mapping ambiguous.
    pub fn char_position(&self, value: &Spanned<String>, index: usize) -> Option<(usize, usize)> {
        let at = value.referenced;
        let written = self.written(at)?;
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| written.strip_prefix(*q)?.strip_suffix(*q))
            .map(|inner| (inner, 1))
            .unwrap_or((written, 0));
        if unquoted.0 != value.value || written.contains('\n') {
            return None;
        }
        let (line, column) = self.position(at)?;
        Some((line, column + unquoted.1 + index))
    }
}
