//! `echo-iac completions SHELL` and `echo-iac man`: generated from the clap
//! definition, so they never fall behind the commands.

use std::io::Write;

use crate::error::Error;

pub(crate) fn completions(
    mut command: clap::Command,
    shell: clap_complete::Shell,
) -> Result<(), Error> {
    let mut out = Vec::new();
    let name = command.get_name().to_string();
    clap_complete::generate(shell, &mut command, name, &mut out);
    write_stdout(&out)
}

/// One page for the whole program: its options, then a section per
/// subcommand (clap_mangen renders one command per page; a page per
/// subcommand would need installing a dozen files).
pub(crate) fn man(command: clap::Command) -> Result<(), Error> {
    let mut out = Vec::new();
    let name = command.get_name().to_string();
    let page = clap_mangen::Man::new(command.clone());
    render(&page.render_title(&mut out))?;
    render(&page.render_name_section(&mut out))?;
    render(&page.render_synopsis_section(&mut out))?;
    render(&page.render_description_section(&mut out))?;
    render(&page.render_options_section(&mut out))?;
    subcommand_sections(&mut out, &command, &name)?;
    render(&page.render_version_section(&mut out))?;
    out.extend_from_slice(EXIT_STATUS.as_bytes());
    write_stdout(&out)
}

/// A section per subcommand, nested ones (`stack ls`) included.
fn subcommand_sections(
    out: &mut Vec<u8>,
    parent: &clap::Command,
    prefix: &str,
) -> Result<(), Error> {
    for sub in parent.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("{prefix} {}", sub.get_name());
        if sub.has_subcommands() {
            subcommand_sections(out, sub, &name)?;
            continue;
        }
        out.extend_from_slice(format!(".SH \"{}\"\n", name.to_uppercase()).as_bytes());
        let page = clap_mangen::Man::new(sub.clone().display_name(name.clone()).bin_name(name));
        // Synopsis, description and options, without a title of their
        // own: they are sections of this page.
        let mut section = Vec::new();
        render(&page.render_synopsis_section(&mut section))?;
        render(&page.render_description_section(&mut section))?;
        render(&page.render_options_section(&mut section))?;
        out.extend(demote_sections(&section));
    }
    Ok(())
}

const EXIT_STATUS: &str = ".SH \"EXIT STATUS\"\n.TP\n0\nsuccess\n.TP\n1\nerror (the message says what, where, and what to do next)\n.TP\n2\n\\fBpreview \\-\\-expect\\-no\\-changes\\fR found changes, and nothing else\n.TP\n64\nusage error: the command line itself is wrong\n.TP\n101\na bug: the program panicked\n.TP\n130\ninterrupted (Ctrl\\-C or SIGTERM)\n.SH ENVIRONMENT\n.TP\nECHO_IAC_STACK\nthe stack, as \\fB\\-\\-stack\\fR\n.TP\nECHO_IAC_BACKEND\nthe state backend for this run, over the stack file's \\fBbackend\\fR\n.TP\nKUBECONFIG\nkubeconfig files, merged as kubectl merges them\n.TP\nECHO_IAC_ALLOW_KUBECONFIG_EXEC\n\\fB1\\fR: as \\fB\\-\\-allow\\-kubeconfig\\-exec\\fR\n.TP\nECHO_IAC_LOG\nlog level or filter (e.g. \\fBdebug\\fR): each API request on stderr\n.TP\nNO_COLOR\nno colors unless \\fB\\-\\-color always\\fR\n";

/// A subcommand's `.SH` headings become `.SS` under its own `.SH`.
fn demote_sections(roff: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(roff);
    text.lines()
        .map(|line| match line.strip_prefix(".SH ") {
            Some(rest) => format!(".SS {rest}\n"),
            None => format!("{line}\n"),
        })
        .collect::<String>()
        .into_bytes()
}

fn render(result: &std::io::Result<()>) -> Result<(), Error> {
    result.as_ref().map_err(|e| {
        Error::refused(
            format!("cannot render the manual page: {e}"),
            "report this as a bug",
        )
    })?;
    Ok(())
}

fn write_stdout(bytes: &[u8]) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`echo-iac man | head`) is not an error.
    let _ = out.write_all(bytes);
    let _ = out.flush();
    Ok(())
}
