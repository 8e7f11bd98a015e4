//! `echo-iac stack init NAME`: a new stack file, every setting at its
//! default with a comment saying what it does, written only if it loads
//! back and only where no stack file is.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::cli::{GlobalArgs, InitArgs};
use crate::error::Error;
use crate::program::Program;
use crate::project::Project;
use crate::stack;

use super::print;

pub(crate) fn run<P: Program>(
    program: &P,
    global: &GlobalArgs,
    args: InitArgs,
) -> Result<(), Error> {
    let project = match &global.dir {
        Some(dir) => Project::for_new_stack(dir, true)?,
        None => {
            let cwd = std::env::current_dir().map_err(|e| {
                Error::refused(
                    format!("cannot read the current folder: {e}"),
                    "run from an existing folder, or pass -C DIR",
                )
            })?;
            Project::for_new_stack(&cwd, false)?
        }
    };
    crate::error::note_project(&project);
    let name = &args.name;
    refuse_existing(&project, name)?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| default_namespace(P::NAME, name));
    let text = new_stack_file(
        program,
        name,
        &namespace,
        args.backend.as_deref(),
        project.root(),
    )?;

    project.create_stacks_dir()?;
    refuse_linked_stacks_dir(&project)?;
    let file = project.new_stack_file(name);
    write_new(&file, text.as_bytes()).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => exists(name, std::slice::from_ref(&file)),
        _ => Error::refused(
            format!("cannot write {}: {e}", shown(&file).display()),
            "check that you may write in the stacks/ folder; nothing was written",
        ),
    })?;

    let bin = crate::name::bin();
    let backend = args.backend.as_deref().unwrap_or(stack_backend_default());
    print(&format!(
        "Created stack {name}: {} (namespace {namespace}, which `up` creates; state in {backend}).\n\
         Every setting is commented: edit it, then run `{bin} --stack {name} preview`.",
        shown(&file).display()
    ));
    Ok(())
}

/// A checkout may carry `stacks/` as a symbolic link to anywhere; a new
/// file goes only into a real folder of the project's own, since a tool run
/// in someone else's checkout (often as root) writes nowhere else.
fn refuse_linked_stacks_dir(project: &Project) -> Result<(), Error> {
    let dir = project.root().join("stacks");
    let linked = fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink());
    if !linked {
        return Ok(());
    }
    let target = fs::read_link(&dir)
        .map(|t| t.display().to_string())
        .unwrap_or_else(|_| "somewhere unreadable".into());
    Err(Error::refused(
        format!(
            "{} is a symbolic link to {target}; nothing was written",
            shown(&dir).display()
        ),
        "stack files are written only into a real stacks/ folder of the project: replace the link with a folder",
    ))
}

fn stack_backend_default() -> &'static str {
    echo_iac_engine::state::backend::DEFAULT
}

/// The text `stack init` writes for stack `name` of `program`: the keys
/// every stack has, then the program's own section
/// ([`Program::stack_file_section`]). Fails, saying why, unless the text
/// loads back as a stack file of `program` in the project folder `root`,
/// so a program's test can call it to check its section.
pub fn new_stack_file<P: Program>(
    program: &P,
    name: &str,
    namespace: &str,
    backend: Option<&str>,
    root: &Path,
) -> Result<String, Error> {
    if let Some(url) = backend {
        echo_iac_engine::state::Backend::parse(url, root)
            .map_err(|e| Error::refused(format!("--backend {url}: {}", e.message), e.hint))?;
    }
    let mut text = generic_keys(P::NAME, name, namespace, backend);
    if let Some(section) = program.stack_file_section() {
        text.push('\n');
        text.push_str(section.trim_end());
        text.push('\n');
    }
    let file = root
        .join(crate::project::STACKS_DIR)
        .join(format!("{name}.yaml"));
    match stack::parse::<P::Config>(name, &file, &text, root) {
        Ok(_) => Ok(text),
        Err(e) => Err(Error::refused(
            format!(
                "the stack file {} writes for a new stack does not load: {e}",
                P::NAME
            ),
            "this is a mistake in the program (its `stack_file_section`), not in your project: report it to its authors; nothing was written",
        )),
    }
}

/// The keys every stack has, as `stack init` writes them.
fn generic_keys(program: &str, name: &str, namespace: &str, backend: Option<&str>) -> String {
    let backend = match backend {
        Some(url) => format!("backend: {}", scalar(url)),
        None => format!("# backend: {}", stack_backend_default()),
    };
    format!(
        "\
# Stack `{name}` of {program}: one environment, that is a cluster, a namespace
# and the place the stack's state is kept. Unknown keys are errors.
# See what it would do with `{program} --stack {name} preview`.

# The kubeconfig to connect with: a path, or a list of paths merged as
# kubectl merges $KUBECONFIG; relative paths are relative to the project
# folder. Default: $KUBECONFIG, then ~/.kube/config.
# kubeconfig: ~/.kube/config

# The kubeconfig context to use. Default: the kubeconfig's current context.
# context: my-cluster

# The namespace the stack's objects go in.
namespace: {namespace}

# Whether `up` creates the namespace (and `destroy` deletes it, when nothing
# else lives in it). With false, the namespace must exist already.
createNamespace: true

# Objects that no `up` or `destroy` deletes or replaces: Kind/name for a
# cluster-scoped object, Kind/namespace/name for a namespaced one, `*` in the
# name matching any run of characters. `destroy --keep-protected` destroys
# the rest and keeps these running, outside the stack.
# protect:
#   - Namespace/{namespace_plain}

# Objects that a delete leaves running, without the stack's labels and out
# of its state (same patterns).
# retain:
#   - PersistentVolumeClaim/{namespace_plain}/*

# Where the stack's state and lock are kept: `file://<folder>` (relative to
# the project folder), or `kubernetes://<namespace>` for Secrets and a Lease
# in a namespace of the stack's cluster, shared by every machine that runs
# the stack (laptops and CI). Default: file://state.
{backend}

# How many earlier runs the state keeps a revision of, for `stack history`
# and `rollback`: 1 to 1000. Default: 10.
# historyLimit: 10

# Plain YAML files whose objects join the program's (an operator's CRDs, a
# vendor's manifests): a file, a folder (its *.yaml and *.yml files) or a
# glob, or a list of them, inside the project folder. Namespaced objects
# that name no namespace go in the stack's. Default: none.
# manifests: manifests/
",
        namespace = scalar(namespace),
        namespace_plain = namespace,
    )
}

/// `value` as a YAML scalar: quoted where it would otherwise read as a
/// number or a boolean (a namespace `123`), which a stack file refuses.
fn scalar(value: &str) -> String {
    serde_saphyr::to_string(&value)
        .map(|text| text.trim_end().to_string())
        .unwrap_or_else(|_| format!("{value:?}"))
}

/// `<program>-<stack>`, made a namespace name: lowercase, with `_` and `.`
/// (which stack names may hold) as `-`.
fn default_namespace(program: &str, stack: &str) -> String {
    let mut name: String = format!("{program}-{stack}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(stack::MAX_LABEL_CHARS);
    name.trim_matches('-').to_string()
}

/// Refuses a name some stack file already has, as `.yaml` or as `.yml`.
fn refuse_existing(project: &Project, name: &str) -> Result<(), Error> {
    let found = project.existing_stack_files(name);
    if found.is_empty() {
        Ok(())
    } else {
        Err(exists(name, &found))
    }
}

fn exists(name: &str, files: &[PathBuf]) -> Error {
    let shown: Vec<String> = files
        .iter()
        .map(|f| shown(f).display().to_string())
        .collect();
    Error::refused(
        format!(
            "stack `{name}` exists already: {}; nothing was written",
            shown.join(" and ")
        ),
        format!(
            "edit that file, or pick another name; `{} stack rm {name}` removes a stack's state, never its file",
            crate::name::bin()
        ),
    )
}

/// Writes `bytes` to `file`, which must not exist, so that it is never seen
/// half-written: the text goes to a temporary file beside it, synced, then
/// linked in under its name, which fails if the name was taken meanwhile.
fn write_new(file: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("stack.yaml");
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        out.write_all(bytes)?;
        out.sync_all()?;
        fs::hard_link(&temp, file)
    })();
    let _ = fs::remove_file(&temp);
    written?;
    // Durable too: without it a crash could lose the new entry.
    if let Ok(dir) = fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// `file` relative to the working directory when it lies below it.
fn shown(file: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            let cwd = fs::canonicalize(cwd).ok()?;
            file.strip_prefix(cwd).ok().map(Path::to_path_buf)
        })
        .unwrap_or_else(|| file.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_namespace_joins_program_and_stack_as_a_namespace_name() {
        assert_eq!(default_namespace("echo-iac", "dev"), "echo-iac-dev");
        assert_eq!(
            default_namespace("echo-iac", "Prod_2.eu"),
            "echo-iac-prod-2-eu"
        );
        let long = default_namespace("echo-iac", &"a".repeat(63));
        assert_eq!(long.len(), 63);
        assert!(stack::dns_label_problem(&long, 63, false).is_none());
    }

    #[test]
    fn values_that_would_read_as_numbers_or_booleans_are_quoted() {
        assert_eq!(scalar("echo-dev"), "echo-dev");
        assert_ne!(scalar("123"), "123");
        assert_ne!(scalar("true"), "true");
    }

    #[test]
    fn a_new_file_is_never_written_over_an_existing_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dev.yaml");
        write_new(&file, b"namespace: a\n").unwrap();
        let err = write_new(&file, b"namespace: b\n").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&file).unwrap(), b"namespace: a\n");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
    }
}
