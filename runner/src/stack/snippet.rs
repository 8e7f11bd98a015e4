//! The source lines an error points at, underlined, in the style of rustc
//! (and of serde-saphyr's own snippets).

/// A place in the file to underline: `^` for the error itself, `-` for a
/// related place such as the first of two clashing values.
pub struct Mark {
    /// 1-based; 0 when the place is not known (the mark is then not shown).
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// How many characters to underline.
    pub len: usize,
    /// The words after the underline.
    pub label: String,
    /// `^` (the error itself) rather than `-` (a related place).
    pub primary: bool,
}

/// The marked lines, each with the line before it for context.
pub(super) fn render_snippet(text: &str, marks: &[Mark]) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let marks: Vec<&Mark> = marks
        .iter()
        .filter(|mark| mark.line >= 1 && mark.line <= lines.len())
        .collect();
    let mut shown: Vec<usize> = marks
        .iter()
        .flat_map(|mark| [mark.line - 1, mark.line])
        .filter(|line| *line >= 1)
        .collect();
    shown.sort_unstable();
    shown.dedup();
    let Some(last) = shown.last() else {
        return String::new();
    };
    let width = last.to_string().len();
    let mut out = format!("{:width$} |", "");
    let mut previous = None;
    for line in shown {
        if previous.is_some_and(|previous| line > previous + 1) {
            out.push_str(&format!("\n{:width$} ...", ""));
        }
        // Control characters would break the layout; each still takes one
        // column, so the underline stays aligned.
        let text: String = lines[line - 1]
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        out.push_str(&format!("\n{line:>width$} | {}", text.trim_end()));
        for mark in marks.iter().filter(|mark| mark.line == line) {
            let room = text.chars().count().saturating_sub(mark.column - 1);
            let len = mark.len.clamp(1, room.max(1));
            let underline = if mark.primary { "^" } else { "-" }.repeat(len);
            out.push_str(&format!(
                "\n{:width$} | {}{underline} {}",
                "",
                " ".repeat(mark.column - 1),
                mark.label
            ));
        }
        previous = Some(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(line: usize, column: usize, len: usize, label: &str, primary: bool) -> Mark {
        Mark {
            line,
            column,
            len,
            label: label.into(),
            primary,
        }
    }

    #[test]
    fn distant_marks_are_shown_with_a_gap_and_their_own_underline() {
        let text = "a: 1\nb: 2\nc: 3\nd: 4\ne: 5\n";
        let shown = render_snippet(
            text,
            &[mark(1, 4, 1, "first", false), mark(5, 1, 1, "again", true)],
        );
        assert_eq!(
            shown,
            "  |\n\
             1 | a: 1\n  \
             |    - first\n  \
             ...\n\
             4 | d: 4\n\
             5 | e: 5\n  \
             | ^ again"
        );
    }

    #[test]
    fn underline_stops_at_the_end_of_the_line_and_unknown_places_are_left_out() {
        let shown = render_snippet("key: ab\n", &[mark(1, 6, 10, "here", true)]);
        assert_eq!(shown, "  |\n1 | key: ab\n  |      ^^ here");
        assert_eq!(render_snippet("key: ab\n", &[mark(0, 0, 1, "x", true)]), "");
    }
}
