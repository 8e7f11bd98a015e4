//! The human-readable plan, in Pulumi's vocabulary.
//!
//! One row per step that does something, in the plan's order, with its
//! field-level changes, the reason behind a replace, and anything that blocks
//! it directly beneath. Unchanged objects are only counted, so a small change
//! to a large stack stays easy to spot. Columns are aligned on the plain text
//! and colors are added afterwards, so alignment never depends on them.

use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use super::value::format_value;
use echo_iac_engine::diff::unified_yaml;
use echo_iac_engine::sensitive::MARKER;
use echo_iac_engine::untracked::Selector;
use echo_iac_engine::{Blocker, Change, Op, Plan, Step, Summary};

/// How [`plan_text`] renders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TextOptions {
    /// Follow each changed step with a unified YAML diff of the whole object.
    pub diff: bool,
    /// Use ANSI colors; off when output is not a terminal.
    pub color: bool,
}

/// Indent of everything shown under a step row, so it lines up with the Type
/// column.
const DETAIL: &str = "     ";
/// Indent of the lines inside a multi-line value, under its path.
const BLOCK: &str = "       ";
/// Space between columns.
const GAP: &str = "   ";
/// A sensitive value that changed, shown in place of old and new.
const MARKER_CHANGED: &str = "(sensitive, changed)";

/// Lines of a multi-line string change shown before cutting it short.
const BLOCK_MAX_LINES: usize = 16;

/// Renders a plan as Pulumi-style preview text, ending with the summary line.
/// The `Previewing stack …` header is the caller's.
pub(crate) fn plan_text(plan: &Plan, opts: &TextOptions) -> String {
    let p = Painter(opts.color);
    let listed = super::listed_steps(plan);

    let mut out = String::new();
    if !listed.is_empty() {
        let kind_w = column_width("Type", listed.iter().map(|s| s.id.kind.clone()));
        let name_w = column_width("Name", listed.iter().map(|s| s.id.qualified_name()));
        push_line(
            &mut out,
            p.paint(
                BOLD,
                &format!(
                    "{DETAIL}{:<kind_w$}{GAP}{:<name_w$}{GAP}Plan",
                    "Type", "Name"
                ),
            ),
        );
        for step in listed {
            let row = format!(
                " {:<2}  {:<kind_w$}{GAP}{:<name_w$}{GAP}{}",
                step.op.mark(),
                step.id.kind,
                step.id.qualified_name(),
                step.op.as_str()
            );
            push_line(&mut out, p.paint(op_style(step.op), &row));
            render_details(&mut out, step, opts, &p);
        }
        // A diff block already ends in a blank line.
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
    }

    if !plan.interrupted.is_empty() {
        push_line(
            &mut out,
            format!(
                "{} an earlier run stopped before finishing:",
                p.paint(WARNING, "warning:")
            ),
        );
        for op in &plan.interrupted {
            push_line(&mut out, format!("  - {op}"));
        }
        push_line(
            &mut out,
            "  the plan above was made from the cluster as it is now, so `up` converges them"
                .to_string(),
        );
        out.push('\n');
    }

    // Untracked objects the plan deletes are shown as its delete steps.
    let (declared, undeclared): (Vec<_>, Vec<_>) = plan
        .untracked
        .iter()
        .filter(|u| {
            !plan
                .steps
                .iter()
                .any(|s| s.id == u.id && s.op == Op::Delete)
        })
        .partition(|u| u.declared);
    if !declared.is_empty() {
        push_line(
            &mut out,
            format!(
                "{} {} object(s) in the cluster carry the labels of stack {} but are not in its state:",
                p.paint(WARNING, "warning:"),
                declared.len(),
                plan.stack
            ),
        );
        for u in &declared {
            push_line(
                &mut out,
                format!(
                    "  - {} (declared by the stack; `up` records it again)",
                    u.id
                ),
            );
        }
        push_line(
            &mut out,
            format!(
                "  the state was lost or written elsewhere: run `{} refresh` to record them, or use the stack's shared backend (`backend:`)",
                crate::name::bin()
            ),
        );
        out.push('\n');
    }
    if !undeclared.is_empty() {
        push_line(
            &mut out,
            format!(
                "{} {} object(s) in the cluster carry the labels of stack {} but are neither in its state nor declared by it; left in place:",
                p.paint(WARNING, "warning:"),
                undeclared.len(),
                plan.stack
            ),
        );
        for u in &undeclared {
            push_line(&mut out, format!("  - {}", u.id));
        }
        let example = Selector::of(&undeclared[0].id);
        push_line(
            &mut out,
            "  labels alone do not make an object the stack's (anyone who may label it can set them), so no command deletes these unasked"
                .to_string(),
        );
        push_line(
            &mut out,
            format!(
                "  if they are the stack's: `{} destroy --delete-untracked` deletes them with the stack, or name each (`--delete-untracked {example}`)",
                crate::name::bin()
            ),
        );
        out.push('\n');
    }

    push_line(&mut out, painted_summary(&plan.summary(), &p));
    out
}

/// The summary line without colors, e.g. `Resources: + 2 to create,
/// ~ 1 to update, 3 unchanged`, or `Resources: no changes (3 unchanged)`.
pub(super) fn summary_line(summary: &Summary) -> String {
    painted_summary(summary, &Painter(false))
}

fn painted_summary(s: &Summary, p: &Painter) -> String {
    let mut line = counted_summary(s, p);
    if s.left_out > 0 {
        line.push_str(&format!("; {} left out by --target", s.left_out));
    }
    line
}

fn counted_summary(s: &Summary, p: &Painter) -> String {
    let parts: Vec<String> = [
        (Op::Create, s.create),
        (Op::Update, s.update),
        (Op::Replace, s.replace),
        (Op::Delete, s.delete),
        (Op::Retain, s.retain),
    ]
    .into_iter()
    .filter(|&(_, n)| n > 0)
    .map(|(op, n)| {
        p.paint(
            op_style(op),
            &format!("{} {n} to {}", op.mark(), op.as_str()),
        )
    })
    .collect();

    if parts.is_empty() && s.blocked == 0 {
        let mut line = "Resources: no changes".to_string();
        if s.same > 0 {
            line.push_str(&format!(" ({} unchanged)", s.same));
        }
        return line;
    }
    let mut parts = parts;
    if s.same > 0 {
        parts.push(format!("{} unchanged", s.same));
    }
    if s.blocked > 0 {
        parts.push(p.paint(BLOCKED, &format!("! {} blocked", s.blocked)));
    }
    format!("Resources: {}", parts.join(", "))
}

/// Blockers first, since they decide whether anything happens; then the
/// changes and why the step is what it is; then the optional full diff.
fn render_details(out: &mut String, step: &Step, opts: &TextOptions, p: &Painter) {
    if let Some(blocker) = &step.blocker {
        render_blocker(out, blocker, p);
    }
    // A create or delete concerns the whole object; its fields are noise here
    // and `--diff` shows them all.
    if matches!(step.op, Op::Update | Op::Replace) {
        for change in &step.changes {
            render_change(out, change, opts, p);
        }
    }
    if let Some(reason) = &step.reason {
        push_wrapped(out, DETAIL, &format!("reason: {reason}"), p, DIM);
    }
    // A retain changes only two labels, which the reason says.
    if opts.diff && step.is_change() && step.op != Op::Retain {
        let diff = unified_yaml(
            step.live.as_ref(),
            step.planned.as_ref(),
            &step.id.to_string(),
        );
        if !diff.is_empty() {
            out.push('\n');
            for line in diff.lines() {
                let style = if line.starts_with("---") || line.starts_with("+++") {
                    BOLD
                } else if line.starts_with("@@") {
                    CYAN
                } else if line.starts_with('+') {
                    GREEN
                } else if line.starts_with('-') {
                    RED
                } else {
                    PLAIN
                };
                push_line(out, format!("{DETAIL}{}", p.paint(style, line)));
            }
            out.push('\n');
        }
    }
}

/// The field changes of an update or a replace as the text shows them,
/// without colors and without the indent under the step's row; empty for
/// other steps. `diff_shown` says whether a full diff follows, which decides
/// the hint under a long text change.
pub(super) fn change_lines(step: &Step, diff_shown: bool) -> String {
    if !matches!(step.op, Op::Update | Op::Replace) {
        return String::new();
    }
    let opts = TextOptions {
        diff: diff_shown,
        color: false,
    };
    let mut out = String::new();
    for change in &step.changes {
        render_change(&mut out, change, &opts, &Painter(false));
    }
    out.lines()
        .map(|line| format!("{}\n", line.strip_prefix(DETAIL).unwrap_or(line)))
        .collect()
}

fn render_blocker(out: &mut String, blocker: &Blocker, p: &Painter) {
    let alert = |out: &mut String, text: &str| push_wrapped(out, DETAIL, text, p, BLOCKED);
    let hint = |out: &mut String, text: &str| push_line(out, format!("{BLOCK}{text}"));
    match blocker {
        Blocker::Conflicts { conflicts } => {
            for c in conflicts {
                alert(
                    out,
                    &format!("! conflict: {} is owned by {}", c.path, quoted(&c.manager)),
                );
            }
            hint(
                out,
                "`up` stops here unless run with --force-conflicts, which takes these fields over",
            );
        }
        Blocker::Unmanaged { owner } => {
            // The planner words the owner ("written by kubectl"), so it is
            // shown as is.
            let whose = owner.as_deref().unwrap_or("it carries no echo-iac labels");
            alert(
                out,
                &format!("! exists but is not managed by this stack ({whose})"),
            );
            hint(out, "`up` refuses to take it over unless run with --adopt");
        }
        Blocker::Rejected { message, fields } => {
            alert(out, &format!("! rejected by the cluster: {message}"));
            if !fields.is_empty() {
                hint(out, &format!("field: {}", fields.join(", ")));
            }
            hint(out, "fix the stack and run `preview` again");
        }
        Blocker::Refused { message, fields } => {
            alert(out, &format!("! refused: {message}"));
            if !fields.is_empty() {
                hint(out, &format!("field: {}", fields.join(", ")));
            }
            hint(out, "fix the stack and run `preview` again");
        }
        Blocker::Protected { by } => {
            alert(out, &format!("! protected by {by}"));
            hint(
                out,
                "a protected object is never deleted or replaced; to let it go, remove the protection and run `up` first",
            );
        }
    }
}

fn render_change(out: &mut String, change: &Change, opts: &TextOptions, p: &Painter) {
    let path = &change.path;
    if change.sensitive {
        // The engine hands over no value here; say only what happened.
        let (line, style) = match (&change.old, &change.new) {
            (Some(_), Some(_)) => (format!("~ {path}: {MARKER_CHANGED}"), YELLOW),
            (None, Some(_)) => (format!("+ {path}: {MARKER}"), GREEN),
            (Some(_), None) => (format!("- {path}: {MARKER}"), RED),
            (None, None) => return,
        };
        push_line(out, format!("{DETAIL}{}", p.paint(style, &line)));
        return;
    }
    match (&change.old, &change.new) {
        (Some(Value::String(old)), Some(Value::String(new)))
            if old.contains('\n') || new.contains('\n') =>
        {
            push_line(
                out,
                format!("{DETAIL}{}", p.paint(YELLOW, &format!("~ {path}:"))),
            );
            render_text_change(out, old, new, opts, p);
        }
        (Some(old), Some(new)) => {
            let line = format!("~ {path}: {} → {}", format_value(old), format_value(new));
            push_line(out, format!("{DETAIL}{}", p.paint(YELLOW, &line)));
        }
        (None, Some(new)) => {
            let line = format!("+ {path}: {}", format_value(new));
            push_line(out, format!("{DETAIL}{}", p.paint(GREEN, &line)));
        }
        (Some(old), None) => {
            let line = format!("- {path}: {}", format_value(old));
            push_line(out, format!("{DETAIL}{}", p.paint(RED, &line)));
        }
        (None, None) => {}
    }
}

/// A multi-line string (an nginx config, a script) shown as the lines that
/// changed with one line of context, so the edit is visible without the
/// whole file.
fn render_text_change(out: &mut String, old: &str, new: &str, opts: &TextOptions, p: &Painter) {
    let diff = TextDiff::from_lines(old, new);
    let mut lines = Vec::new();
    for (i, group) in diff.grouped_ops(1).iter().enumerate() {
        if i > 0 {
            lines.push((PLAIN, "  …".to_string()));
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let (mark, style) = match change.tag() {
                    ChangeTag::Delete => ('-', RED),
                    ChangeTag::Insert => ('+', GREEN),
                    ChangeTag::Equal => (' ', PLAIN),
                };
                let text = change.value().trim_end_matches(['\n', '\r']);
                lines.push((style, format!("{mark} {text}").trim_end().to_string()));
            }
        }
    }
    let total = lines.len();
    for (style, line) in lines.into_iter().take(BLOCK_MAX_LINES) {
        push_line(out, format!("{BLOCK}{}", p.paint(style, &line)));
    }
    if total > BLOCK_MAX_LINES {
        let more = total - BLOCK_MAX_LINES;
        let hint = if opts.diff { "" } else { "; --diff shows all" };
        push_line(out, format!("{BLOCK}… {more} more lines{hint}"));
    }
}

fn column_width(title: &str, cells: impl Iterator<Item = String>) -> usize {
    cells
        .map(|c| c.chars().count())
        .chain([title.len()])
        .max()
        .unwrap_or(0)
}

/// Quotes a name the way a value is shown, so `"kubectl"` reads the same in a
/// conflict as in a change line.
fn quoted(s: &str) -> String {
    Value::from(s).to_string()
}

/// A possibly multi-line message, with continuation lines indented under its
/// first so a server message never breaks the layout.
fn push_wrapped(out: &mut String, indent: &str, text: &str, p: &Painter, style: Style) {
    for (i, line) in text.lines().enumerate() {
        let pad = if i == 0 { "" } else { "  " };
        push_line(out, format!("{indent}{pad}{}", p.paint(style, line)));
    }
}

fn push_line(out: &mut String, line: String) {
    out.push_str(&line);
    out.push('\n');
}

/// An ANSI SGR parameter list; empty for none.
type Style = &'static str;

const PLAIN: Style = "";
const BOLD: Style = "1";
const DIM: Style = "2";
const RED: Style = "31";
const GREEN: Style = "32";
const YELLOW: Style = "33";
const MAGENTA: Style = "35";
const CYAN: Style = "36";
const BLOCKED: Style = "1;31";
const WARNING: Style = "1;33";

fn op_style(op: Op) -> Style {
    match op {
        Op::Same => PLAIN,
        Op::Create => GREEN,
        Op::Update => YELLOW,
        Op::Replace => MAGENTA,
        Op::Delete | Op::Retain => RED,
    }
}

/// Wraps text in ANSI codes, or leaves it alone when colors are off.
struct Painter(bool);

impl Painter {
    fn paint(&self, style: Style, text: &str) -> String {
        if self.0 && !style.is_empty() && !text.is_empty() {
            format!("\x1b[{style}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::*;
    use super::*;

    const PLAIN_TEXT: TextOptions = TextOptions {
        diff: false,
        color: false,
    };

    #[test]
    fn a_retained_step_and_a_protected_one_say_so() {
        let text = plan_text(&guarded_plan(), &PLAIN_TEXT);
        let retained = text
            .lines()
            .find(|l| l.contains("ConfigMap"))
            .expect("a ConfigMap row");
        assert!(
            retained.starts_with(" -   ") && retained.ends_with("retain"),
            "{text}"
        );
        assert!(
            text.contains("reason: retained as the program asks"),
            "{text}"
        );
        assert!(
            text.contains("! protected by stacks/dev.yaml:8 (protect: Namespace/echo-dev)"),
            "{text}"
        );
        assert!(
            text.contains("Resources: - 1 to delete, - 1 to retain, ! 1 blocked"),
            "{text}"
        );
        // With --diff, a retain shows no deletion of the whole object.
        let diff = TextOptions {
            diff: true,
            color: false,
        };
        let text = plan_text(&guarded_plan(), &diff);
        assert!(!text.contains("--- ConfigMap"), "{text}");
    }

    /// Color codes spelled out, so a snapshot shows which text gets which.
    fn spell_colors(text: &str) -> String {
        [
            ("\x1b[0m", "</>"),
            ("\x1b[1;31m", "<bold red>"),
            ("\x1b[1;33m", "<bold yellow>"),
            ("\x1b[1m", "<bold>"),
            ("\x1b[2m", "<dim>"),
            ("\x1b[31m", "<red>"),
            ("\x1b[32m", "<green>"),
            ("\x1b[33m", "<yellow>"),
            ("\x1b[35m", "<magenta>"),
            ("\x1b[36m", "<cyan>"),
        ]
        .into_iter()
        .fold(text.to_string(), |t, (code, name)| t.replace(code, name))
    }

    #[test]
    fn preview_lists_every_op_with_its_changes() {
        insta::assert_snapshot!(plan_text(&every_op_plan(), &PLAIN_TEXT));
    }

    #[test]
    fn preview_shows_conflicts_and_that_up_stops_on_them() {
        insta::assert_snapshot!(plan_text(&conflict_plan(), &PLAIN_TEXT));
    }

    #[test]
    fn preview_shows_objects_the_stack_does_not_manage() {
        insta::assert_snapshot!(plan_text(&unmanaged_plan(), &PLAIN_TEXT));
    }

    #[test]
    fn preview_shows_the_clusters_reason_for_a_rejection() {
        insta::assert_snapshot!(plan_text(&rejected_plan(), &PLAIN_TEXT));
    }

    #[test]
    fn preview_without_changes_lists_the_unchanged_objects() {
        insta::assert_snapshot!(plan_text(&unchanged_plan(), &PLAIN_TEXT));
    }

    #[test]
    fn preview_of_an_empty_plan_says_no_changes() {
        let plan = Plan {
            stack: "dev".to_string(),
            steps: Vec::new(),
            interrupted: Vec::new(),
            untracked: Vec::new(),
            left_out: Vec::new(),
        };
        assert_eq!(plan_text(&plan, &PLAIN_TEXT), "Resources: no changes\n");
    }

    #[test]
    fn preview_tells_untracked_objects_the_stack_declares_from_those_left_in_place() {
        let untracked = |kind: &str, name: &str, declared: bool| echo_iac_engine::Untracked {
            id: echo_iac_engine::ResourceId::new("v1", kind, Some("echo-dev"), name),
            uid: "u".to_string(),
            declared,
        };
        let plan = Plan {
            stack: "dev".to_string(),
            steps: Vec::new(),
            interrupted: Vec::new(),
            untracked: vec![
                untracked("ConfigMap", "nginx-echo-config", true),
                untracked("ConfigMap", "stray", false),
            ],
            left_out: Vec::new(),
        };
        insta::assert_snapshot!(plan_text(&plan, &PLAIN_TEXT));
    }

    #[test]
    fn preview_shows_secret_values_only_as_sensitive() {
        insta::assert_snapshot!(plan_text(&secret_plan(), &PLAIN_TEXT));
    }

    #[test]
    fn diff_of_a_secret_marks_changed_values_without_showing_them() {
        let opts = TextOptions {
            diff: true,
            color: false,
        };
        let text = plan_text(&secret_plan(), &opts);
        for value in SECRET_VALUES {
            assert!(!text.contains(value), "{value} shown:\n{text}");
        }
        let changed: Vec<&str> = text
            .lines()
            .map(str::trim_start)
            .filter(|l| l.contains("password: (sensitive) "))
            .collect();
        assert_eq!(changed.len(), 2, "{text}");
        assert!(
            changed[0].starts_with('-') && changed[1].starts_with('+'),
            "{text}"
        );
    }

    #[test]
    fn preview_with_diff_adds_a_unified_yaml_diff_per_changed_step() {
        let opts = TextOptions {
            diff: true,
            color: false,
        };
        insta::assert_snapshot!(plan_text(&every_op_plan(), &opts));
    }

    #[test]
    fn preview_in_color_marks_ops_changes_and_blockers() {
        let opts = TextOptions {
            diff: false,
            color: true,
        };
        let mut plan = every_op_plan();
        plan.steps.extend(blocked_plan().steps);
        insta::assert_snapshot!(spell_colors(&plan_text(&plan, &opts)));
    }

    #[test]
    fn plain_preview_has_no_escape_codes_and_no_trailing_spaces() {
        let mut plan = every_op_plan();
        plan.steps.extend(blocked_plan().steps);
        let opts = TextOptions {
            diff: true,
            color: false,
        };
        let text = plan_text(&plan, &opts);
        assert!(!text.contains('\x1b'));
        for line in text.lines() {
            assert_eq!(line, line.trim_end(), "trailing space in {line:?}");
        }
    }

    #[test]
    fn long_text_changes_are_cut_short_with_a_hint() {
        let old: String = (0..40).map(|i| format!("line {i}\n")).collect();
        let new: String = (0..40).map(|i| format!("line {i} changed\n")).collect();
        let mut step = step(Op::Update, Some(config_map("a")), Some(config_map("b")));
        step.changes = vec![Change {
            path: r#"data["default.conf"]"#.to_string(),
            old: Some(json!(old)),
            new: Some(json!(new)),
            sensitive: false,
        }];
        let mut out = String::new();
        render_details(&mut out, &step, &PLAIN_TEXT, &Painter(false));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1 + BLOCK_MAX_LINES + 1);
        assert_eq!(lines[0], r#"     ~ data["default.conf"]:"#);
        assert_eq!(lines[1], "       - line 0");
        assert_eq!(
            lines.last(),
            Some(&"       … 64 more lines; --diff shows all")
        );
    }

    #[test]
    fn a_blocked_step_is_counted_once_so_the_counts_add_up_to_the_objects() {
        let plan = rejected_plan();
        let steps = plan.steps.len();
        let s = plan.summary();
        assert_eq!(s.blocked, 1, "{s:?}");
        assert_eq!(
            s.same + s.create + s.update + s.replace + s.delete + s.blocked,
            steps,
            "{s:?}"
        );
        let line = summary_line(&s);
        assert!(line.ends_with("! 1 blocked"), "{line}");
    }

    #[test]
    fn summary_counts_only_what_is_there() {
        let summary = Summary {
            same: 3,
            create: 2,
            replace: 1,
            ..Summary::default()
        };
        assert_eq!(
            summary_line(&summary),
            "Resources: + 2 to create, +- 1 to replace, 3 unchanged"
        );
        let summary = Summary {
            update: 1,
            blocked: 1,
            ..Summary::default()
        };
        assert_eq!(
            summary_line(&summary),
            "Resources: ~ 1 to update, ! 1 blocked"
        );
        let summary = Summary {
            same: 4,
            ..Summary::default()
        };
        assert_eq!(
            summary_line(&summary),
            "Resources: no changes (4 unchanged)"
        );
    }

    #[test]
    fn the_summary_counts_what_targets_left_out() {
        let summary = Summary {
            update: 1,
            left_out: 3,
            ..Summary::default()
        };
        assert_eq!(
            summary_line(&summary),
            "Resources: ~ 1 to update; 3 left out by --target"
        );
        let summary = Summary {
            same: 1,
            left_out: 2,
            ..Summary::default()
        };
        assert_eq!(
            summary_line(&summary),
            "Resources: no changes (1 unchanged); 2 left out by --target"
        );
    }
}
