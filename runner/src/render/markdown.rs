//! The plan as Markdown, for a pull-request comment (`preview --format
//! markdown`).
//!
//! A reviewer reads it top to bottom: where the preview ran, the counts,
//! what deserves a second look (blocked steps, replaces, deletes), a table
//! of the steps, and one collapsed section per changed object with its field
//! changes and unified diff. GitHub refuses a comment over 65,536
//! characters, so the document is fitted to that: the largest diffs are left
//! out first, then the largest field-change lists, then the table, and the
//! last line says what was left out.
//!
//! Names cannot hold Markdown's special characters, but values, reasons and
//! server messages can, so those are escaped, and code blocks are fenced
//! with more backticks than they hold.

use echo_iac_engine::diff::unified_yaml;
use echo_iac_engine::{Blocker, Op, Plan, Step};

use super::text::{change_lines, summary_line};

/// GitHub's limit on a comment, in characters.
pub(crate) const COMMENT_LIMIT: usize = 65_536;

/// Room kept for the closing note that says what was left out.
const NOTE_ROOM: usize = 400;
/// Steps named in the "needs attention" list before it says how many more.
const ATTENTION_MAX: usize = 20;
/// Characters of a reason or server message kept in the attention list.
const MESSAGE_MAX: usize = 400;

/// Where the preview ran, for the top of the comment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MarkdownHeader<'a> {
    /// The stack previewed.
    pub stack: &'a str,
    /// The stack's namespace.
    pub namespace: &'a str,
    /// The kubeconfig context; empty for the current one.
    pub context: &'a str,
}

/// Renders a plan as one Markdown document shorter than GitHub's comment
/// limit.
pub(crate) fn plan_markdown(plan: &Plan, header: &MarkdownHeader<'_>) -> String {
    plan_markdown_within(plan, header, COMMENT_LIMIT)
}

/// One changed object's collapsible section, and which of its parts are
/// still shown.
struct Section<'p> {
    step: &'p Step,
    changes: String,
    diff: String,
    keep_changes: bool,
    keep_diff: bool,
}

impl Section<'_> {
    fn render(&self) -> String {
        let step = self.step;
        let mut body = String::new();
        if let Some(reason) = &step.reason {
            body.push_str(&format!("{}\n\n", escape(&format!("reason: {reason}"))));
        }
        if self.keep_changes && !self.changes.is_empty() {
            body.push_str(&fenced("text", &self.changes));
        }
        if self.keep_diff && !self.diff.is_empty() {
            body.push_str(&fenced("diff", &self.diff));
        }
        if body.is_empty() {
            return String::new();
        }
        format!(
            "<details><summary><code>{}</code> {} {}: {}</summary>\n\n{body}</details>\n\n",
            html(step.op.mark()),
            html(&step.id.kind),
            html(&step.id.qualified_name()),
            plan_word(step),
        )
    }

    fn len(&self) -> usize {
        self.render().chars().count()
    }
}

/// [`plan_markdown`] with the limit as a parameter, so tests can fit a plan
/// into less.
fn plan_markdown_within(plan: &Plan, header: &MarkdownHeader<'_>, limit: usize) -> String {
    let head = head(plan, header);
    let table = table(plan);
    let tail = tail(plan);
    let mut sections: Vec<Section<'_>> = plan
        .steps
        .iter()
        .filter(|s| s.is_change())
        .map(|step| {
            // A retain changes only two labels, which its reason says.
            let diff = if step.op == Op::Retain {
                String::new()
            } else {
                unified_yaml(
                    step.live.as_ref(),
                    step.planned.as_ref(),
                    &step.id.to_string(),
                )
            };
            Section {
                step,
                changes: change_lines(step, !diff.is_empty()),
                diff,
                keep_changes: true,
                keep_diff: true,
            }
        })
        .collect();

    let budget = limit.saturating_sub(NOTE_ROOM + 1);
    let fixed = chars(&head) + chars(&tail);
    let mut lens: Vec<usize> = sections.iter().map(Section::len).collect();
    let mut total = fixed + chars(&table) + lens.iter().sum::<usize>();

    // Largest diffs first: one big object must not cost the small ones.
    let mut dropped_diffs = 0;
    let mut by_size: Vec<usize> = (0..sections.len()).collect();
    by_size.sort_by_key(|&i| std::cmp::Reverse(chars(&sections[i].diff)));
    for &i in &by_size {
        if total <= budget {
            break;
        }
        if sections[i].diff.is_empty() {
            continue;
        }
        sections[i].keep_diff = false;
        dropped_diffs += 1;
        let len = sections[i].len();
        total = total - lens[i] + len;
        lens[i] = len;
    }

    let mut dropped_changes = 0;
    by_size.sort_by_key(|&i| std::cmp::Reverse(chars(&sections[i].changes)));
    for &i in &by_size {
        if total <= budget {
            break;
        }
        if sections[i].changes.is_empty() {
            continue;
        }
        sections[i].keep_changes = false;
        dropped_changes += 1;
        let len = sections[i].len();
        total = total - lens[i] + len;
        lens[i] = len;
    }

    let table = if total > budget {
        // Only the sections' reasons are left; they go in below while
        // they fit.
        for section in &mut sections {
            section.keep_changes = false;
            section.keep_diff = false;
        }
        format!(
            "_The table of {} steps is left out; the counts above sum them up._\n\n",
            plan.steps.len()
        )
    } else {
        table
    };

    let mut out = head;
    out.push_str(&table);
    if total > budget {
        // Sections reduced to their reasons: keep them only while they fit.
        let mut used = chars(&out) + chars(&tail);
        for section in &sections {
            let text = section.render();
            used += chars(&text);
            if used > budget {
                break;
            }
            out.push_str(&text);
        }
    } else {
        for section in &sections {
            out.push_str(&section.render());
        }
    }
    out.push_str(&tail);
    if let Some(note) = cut_note(dropped_diffs, dropped_changes, total > budget) {
        out.push_str(&note);
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// The stack, namespace and context, the counts, and the steps that need a
/// second look.
fn head(plan: &Plan, header: &MarkdownHeader<'_>) -> String {
    let context = if header.context.is_empty() {
        "(current)"
    } else {
        header.context
    };
    let mut out = format!(
        "### {} preview of stack {}\n\nNamespace {}, context {}\n\n**{}**\n\n",
        crate::name::bin(),
        code(header.stack),
        code(header.namespace),
        code(context),
        escape(&summary_line(&plan.summary())),
    );

    let blocked = plan.steps.iter().filter(|s| s.blocker.is_some());
    let replaced = plan
        .steps
        .iter()
        .filter(|s| s.blocker.is_none() && s.op == Op::Replace);
    let deleted = plan
        .steps
        .iter()
        .filter(|s| s.blocker.is_none() && s.op.is_removal());
    let attention: Vec<&Step> = blocked.chain(replaced).chain(deleted).collect();
    if !attention.is_empty() {
        out.push_str("#### Needs attention\n\n");
        for step in attention.iter().take(ATTENTION_MAX) {
            out.push_str(&format!("- {}\n", attention_item(step)));
        }
        if attention.len() > ATTENTION_MAX {
            out.push_str(&format!(
                "- … and {} more in the table below\n",
                attention.len() - ATTENTION_MAX
            ));
        }
        out.push('\n');
    }
    out
}

/// One line of the attention list: what happens to the object, and why.
fn attention_item(step: &Step) -> String {
    let object = format!("{} {}", step.id.kind, code(&step.id.qualified_name()));
    let Some(blocker) = &step.blocker else {
        let why = match (step.op, &step.reason) {
            (_, Some(reason)) => reason.as_str(),
            (Op::Replace, None) => "a field cannot change in place",
            _ => "",
        };
        let why = if why.is_empty() {
            String::new()
        } else {
            format!(": {}", escape(&cut(why)))
        };
        return format!(
            "{} **{}** {object}{why}",
            code(step.op.mark()),
            step.op.as_str()
        );
    };
    let why = match blocker {
        Blocker::Conflicts { conflicts } => {
            let owned: Vec<String> = conflicts
                .iter()
                .map(|c| {
                    // Quoted as the text quotes it.
                    let manager = serde_json::Value::from(c.manager.as_str()).to_string();
                    format!("{} is owned by {}", code(&c.path), escape(&manager))
                })
                .collect();
            format!(
                "conflict: {}; `up` stops here unless run with `--force-conflicts`",
                owned.join(", ")
            )
        }
        Blocker::Unmanaged { owner } => format!(
            "exists but is not managed by this stack ({}); `up` refuses to take it over unless run with `--adopt`",
            escape(owner.as_deref().unwrap_or("it carries no echo-iac labels"))
        ),
        Blocker::Rejected { message, .. } => {
            format!("rejected by the cluster: {}", escape(&cut(message)))
        }
        Blocker::Refused { message, .. } => format!("refused: {}", escape(&cut(message))),
        Blocker::Protected { by } => format!(
            "protected by {}; a protected object is never deleted or replaced",
            escape(by)
        ),
    };
    format!("`!` **blocked** {object} ({}): {why}", step.op.as_str())
}

/// The steps as a table, as the text lists them: those that do something,
/// or every step when nothing changes.
fn table(plan: &Plan) -> String {
    let listed = super::listed_steps(plan);
    if listed.is_empty() {
        return String::new();
    }
    let mut out = String::from("| | Type | Name | Plan |\n| --- | --- | --- | --- |\n");
    for step in listed {
        let mark = match step.op {
            Op::Same => String::new(),
            op => code(op.mark()),
        };
        out.push_str(&format!(
            "| {mark} | {} | {} | {} |\n",
            escape(&step.id.kind),
            escape(&step.id.qualified_name()),
            plan_word(step)
        ));
    }
    out.push('\n');
    out
}

/// The step's operation, and whether it is blocked.
fn plan_word(step: &Step) -> String {
    if step.blocker.is_some() {
        format!("{}, blocked", step.op.as_str())
    } else {
        step.op.as_str().to_string()
    }
}

/// Warnings the text shows after the steps, in short: the terminal preview
/// says what to do about them.
fn tail(plan: &Plan) -> String {
    let mut out = String::new();
    if !plan.interrupted.is_empty() {
        out.push_str("**Warning:** an earlier run stopped before finishing:\n\n");
        for op in plan.interrupted.iter().take(ATTENTION_MAX) {
            out.push_str(&format!("- {}\n", escape(&cut(op))));
        }
        if plan.interrupted.len() > ATTENTION_MAX {
            out.push_str(&format!(
                "- … and {} more\n",
                plan.interrupted.len() - ATTENTION_MAX
            ));
        }
        out.push_str(
            "\nThe plan was made from the cluster as it is now, so `up` converges them.\n\n",
        );
    }
    if !plan.untracked.is_empty() {
        out.push_str(&format!(
            "**Warning:** {} object(s) in the cluster carry the labels of stack {} but are not in its state; `{} preview` says what to do about them.\n\n",
            plan.untracked.len(),
            code(&plan.stack),
            crate::name::bin()
        ));
    }
    out
}

/// What was left out to fit the limit, or nothing when nothing was.
fn cut_note(diffs: usize, changes: usize, table: bool) -> Option<String> {
    let mut parts = Vec::new();
    if diffs > 0 {
        parts.push(format!("{diffs} {}", plural(diffs, "diff", "diffs")));
    }
    if changes > 0 {
        parts.push(format!(
            "{changes} {}",
            plural(changes, "field-change list", "field-change lists")
        ));
    }
    if table {
        parts.push("the table of steps".to_string());
    }
    if parts.is_empty() {
        return None;
    }
    let what = match parts.len() {
        1 => parts.remove(0),
        _ => {
            let last = parts.pop().unwrap_or_default();
            format!("{} and {last}", parts.join(", "))
        }
    };
    Some(format!(
        "_{what} left out to stay under GitHub's 65,536-character limit; run `{} preview --diff` for them_\n",
        crate::name::bin()
    ))
}

fn plural<'w>(n: usize, one: &'w str, many: &'w str) -> &'w str {
    if n == 1 { one } else { many }
}

/// A code block whose fence is longer than any run of backticks inside it,
/// so no value can close it early.
fn fenced(info: &str, text: &str) -> String {
    let fence = "`".repeat(longest_backtick_run(text).max(2) + 1);
    let newline = if text.ends_with('\n') { "" } else { "\n" };
    format!("{fence}{info}\n{text}{newline}{fence}\n\n")
}

/// An inline code span that holds any text: delimited by more backticks than
/// it holds, padded when it starts or ends with one.
fn code(text: &str) -> String {
    let text = text.replace(['\n', '\r'], " ");
    let ticks = "`".repeat(longest_backtick_run(&text) + 1);
    if text.starts_with('`') || text.ends_with('`') {
        format!("{ticks} {text} {ticks}")
    } else {
        format!("{ticks}{text}{ticks}")
    }
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// Free text made safe for one line of Markdown: a table cell or a list
/// item. Characters that would start markup, close a cell or open HTML are
/// escaped, and line breaks become spaces.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '|' | '*' | '_' | '[' | ']' | '#' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Text made safe inside an HTML element such as `<summary>`.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A long message cut to [`MESSAGE_MAX`] characters.
fn cut(text: &str) -> String {
    if text.chars().count() <= MESSAGE_MAX {
        return text.to_string();
    }
    let kept: String = text.chars().take(MESSAGE_MAX).collect();
    format!("{kept}…")
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    const HEADER: MarkdownHeader<'static> = MarkdownHeader {
        stack: "dev",
        namespace: "echo-dev",
        context: "kind-echo",
    };

    /// The steps of [`every_op_plan`] with operation `op`.
    fn only(op: Op) -> Plan {
        let mut plan = every_op_plan();
        plan.steps.retain(|s| s.op == op);
        plan
    }

    /// The masks' digests are keyed per process, so a snapshot shows where
    /// they are, not what they are.
    fn without_digests(text: &str) -> String {
        let marker = "(sensitive) ";
        text.lines()
            .map(|line| match line.find(marker) {
                Some(at) => format!("{}{marker}<digest>\n", &line[..at]),
                None => format!("{line}\n"),
            })
            .collect()
    }

    fn markdown(plan: &Plan) -> String {
        plan_markdown(plan, &HEADER)
    }

    #[test]
    fn markdown_preview_of_creates() {
        insta::assert_snapshot!(markdown(&only(Op::Create)));
    }

    #[test]
    fn markdown_preview_of_updates_has_changes_and_a_unified_diff() {
        let text = markdown(&only(Op::Update));
        assert!(text.contains("```diff\n"), "{text}");
        insta::assert_snapshot!(text);
    }

    #[test]
    fn markdown_preview_calls_out_a_retain_and_a_protected_step() {
        let text = markdown(&guarded_plan());
        assert!(
            text.contains("- `-` **retain** ConfigMap `echo-dev/nginx-echo-config`: retained as the program asks"),
            "{text}"
        );
        assert!(
            text.contains(
                "`!` **blocked** Namespace `echo-dev` (delete): protected by stacks/dev.yaml:8"
            ),
            "{text}"
        );
        // A retain changes two labels: no diff of the whole object.
        assert!(!text.contains("-kind: ConfigMap"), "{text}");
    }

    #[test]
    fn markdown_preview_calls_out_a_replace_naming_the_immutable_field() {
        let text = markdown(&only(Op::Replace));
        assert!(
            text.contains("#### Needs attention\n\n- `+-` **replace** Deployment `echo-dev/web`: spec.selector is immutable"),
            "{text}"
        );
        insta::assert_snapshot!(text);
    }

    #[test]
    fn markdown_preview_calls_out_a_delete() {
        insta::assert_snapshot!(markdown(&only(Op::Delete)));
    }

    #[test]
    fn markdown_preview_calls_out_a_conflict_with_its_owner() {
        let text = markdown(&conflict_plan());
        assert!(text.contains("`!` **blocked**"), "{text}");
        insta::assert_snapshot!(text);
    }

    #[test]
    fn markdown_preview_calls_out_every_kind_of_blocker() {
        insta::assert_snapshot!(markdown(&blocked_plan()));
    }

    #[test]
    fn markdown_preview_shows_secret_values_only_as_sensitive() {
        let text = markdown(&secret_plan());
        for value in SECRET_VALUES {
            assert!(!text.contains(value), "{value} shown:\n{text}");
        }
        assert!(
            text.contains("~ data.password: (sensitive, changed)"),
            "{text}"
        );
        insta::assert_snapshot!(without_digests(&text));
    }

    #[test]
    fn markdown_preview_without_changes_lists_the_unchanged_objects() {
        insta::assert_snapshot!(markdown(&unchanged_plan()));
    }

    #[test]
    fn markdown_preview_has_the_text_summary() {
        let plan = every_op_plan();
        let text = markdown(&plan);
        assert!(
            text.contains(&format!("**{}**", summary_line(&plan.summary()))),
            "{text}"
        );
        assert!(text.starts_with("### "), "{text}");
        assert!(text.contains("Namespace `echo-dev`, context `kind-echo`"));
    }

    #[test]
    fn values_that_read_as_markup_stay_inside_their_blocks() {
        let text = markdown(&markup_plan());
        // The reason is escaped, the value sits in a fence longer than any
        // run of backticks it holds.
        assert!(
            text.contains(r"reason: why \| not \`this\` &lt;b&gt;bold&lt;/b&gt; \*now\*"),
            "{text}"
        );
        assert!(text.contains("`````diff\n"), "{text}");
        assert!(
            !text.contains("<script>") || text.contains("`````"),
            "{text}"
        );
        insta::assert_snapshot!(text);
    }

    #[test]
    fn code_spans_and_fences_outlast_the_backticks_they_hold() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`a"), "`` `a ``");
        assert_eq!(fenced("diff", "x\n"), "```diff\nx\n```\n\n");
        assert_eq!(fenced("", "```\n"), "````\n```\n````\n\n");
    }

    #[test]
    fn a_large_plan_stays_under_githubs_limit_and_says_what_it_left_out() {
        let plan = large_plan(900);
        let text = markdown(&plan);
        let len = text.chars().count();
        assert!(len < COMMENT_LIMIT, "{len} characters");
        let last = text.lines().last().unwrap_or_default();
        assert!(
            last.starts_with('_')
                && last.contains("left out to stay under GitHub's 65,536-character limit")
                && last.contains(&format!("`{} preview --diff`", crate::name::bin())),
            "{last}"
        );
        assert!(last.contains("900 diffs"), "{last}");
    }

    #[test]
    fn a_small_plan_is_left_whole() {
        let text = markdown(&large_plan(3));
        assert_eq!(text.matches("```diff\n").count(), 3, "{text}");
        assert!(!text.contains("left out"), "{text}");
    }

    #[test]
    fn the_largest_diffs_go_first() {
        let mut plan = large_plan(3);
        // One object with a much larger file than the others.
        let step = &mut plan.steps[1];
        for side in [&mut step.live, &mut step.planned] {
            let object = side.as_mut().expect("both sides");
            let file = object["data"]["app.conf"].as_str().unwrap().repeat(4);
            object["data"]["app.conf"] = serde_json::json!(file);
        }
        let whole = plan_markdown_within(&plan, &HEADER, usize::MAX)
            .chars()
            .count();
        let text = plan_markdown_within(&plan, &HEADER, whole - 1000);
        assert_eq!(text.matches("```diff\n").count(), 2, "{text}");
        assert!(
            !text.contains("--- live ConfigMap echo-dev/config-0001"),
            "{text}"
        );
        assert!(text.trim_end().ends_with("_1 diff left out to stay under GitHub's 65,536-character limit; run `echo-iac preview --diff` for them_"), "{text}");
    }

    #[test]
    fn a_plan_too_large_for_its_table_keeps_the_counts() {
        let plan = large_plan(300);
        let text = plan_markdown_within(&plan, &HEADER, 8_000);
        assert!(text.chars().count() < 8_000, "{}", text.chars().count());
        assert!(text.contains("**Resources: ~ 300 to update**"), "{text}");
        assert!(
            text.contains("_The table of 300 steps is left out"),
            "{text}"
        );
        assert!(text.trim_end().ends_with("and the table of steps left out to stay under GitHub's 65,536-character limit; run `echo-iac preview --diff` for them_"), "{text}");
    }
}
