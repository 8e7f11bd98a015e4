//! `manifests:`: plain YAML files whose objects join the ones the program
//! declares. The stack file names files, folders or globs relative to the
//! project folder; this module checks what is written (at parse time,
//! touching no disk), finds the files they name, and reads the objects in
//! them, each with the file, document and line it came from so that every
//! later error can point there.
//!
//! Globs are `*` and `?` within one level of the path (`crds/*.yaml`,
//! `operators/*/crds.yaml`): enough to pick files by name, small enough to
//! need no crate. A folder stands for its `*.yaml` and `*.yml` files, sorted
//! by name, not those of its subfolders (as `kubectl apply -f DIR`).
//!
//! Documents are split at `---` lines, as Kubernetes' own YAML reader
//! splits them, so that a document's number is what a reader counts in the
//! file.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;
use serde_saphyr::Spanned;

use super::error::{SourceError, StackError};
use super::kubeconfig::KubeconfigPaths;
use super::snippet::{Mark, render_snippet};
use super::source::Source;

/// One entry of `manifests:`, checked: a file, a folder or a glob inside
/// the project folder.
#[derive(Clone, Debug, PartialEq)]
pub struct ManifestPattern {
    /// As written in the stack file.
    pub written: String,
    /// The entry resolved against the project folder, wildcards kept.
    pub path: PathBuf,
    /// Where it stands in the stack file, for errors found when it is read.
    at: Place,
}

/// A place in a stack file, kept for errors found after parsing.
#[derive(Clone, Debug, PartialEq)]
struct Place {
    file: PathBuf,
    position: Option<(usize, usize)>,
    snippet: String,
}

/// An object read from a manifest file, with where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct ManifestObject {
    /// The object as written.
    pub object: Value,
    /// The file it came from.
    pub file: PathBuf,
    /// Which document of the file (1-based).
    pub document: usize,
    /// The line its document starts on (its first line of content).
    pub line: usize,
    /// Which item of a `kind: List` document (1-based), if it is one.
    pub item: Option<usize>,
}

impl ManifestObject {
    /// `manifests/a.yaml:3 (document 2)`: where the object is written.
    pub fn place(&self) -> String {
        format!("{}:{} ({})", self.file.display(), self.line, self.which())
    }

    /// `document 2`, or `document 2, item 3` for a List's item.
    pub fn which(&self) -> String {
        match self.item {
            Some(item) => format!("document {}, item {item}", self.document),
            None => format!("document {}", self.document),
        }
    }

    /// An error about this object, at its document's first line.
    pub fn error(&self, message: String, hint: &str) -> StackError {
        StackError::Invalid(Box::new(SourceError {
            file: self.file.clone(),
            position: Some((self.line, 1)),
            message: format!("{}: {message}", self.which()),
            snippet: String::new(),
            hint: Some(hint.to_string()),
        }))
    }
}

/// Checks `manifests:` as written: one path or a list, each inside the
/// project folder.
pub(super) fn resolve(
    src: &Source<'_>,
    paths: Spanned<KubeconfigPaths>,
    project_root: &Path,
) -> Result<Vec<ManifestPattern>, StackError> {
    let items = match paths.value {
        KubeconfigPaths::One(path) => vec![Spanned::new(path, paths.referenced, paths.defined)],
        KubeconfigPaths::Many(items) => items,
        KubeconfigPaths::Other => {
            return Err(src.at(
                &paths,
                "`manifests` must be a path, or a list of paths".into(),
                "not a path",
                "write it like `manifests: manifests/` or `manifests: [crds/*.yaml, seed.yaml]`",
            ));
        }
    };
    items
        .iter()
        .map(|item| resolve_one(src, item, project_root))
        .collect()
}

fn resolve_one(
    src: &Source<'_>,
    item: &Spanned<String>,
    project_root: &Path,
) -> Result<ManifestPattern, StackError> {
    let written = item.value.as_str();
    if written.trim().is_empty() {
        return Err(src.at(
            item,
            "a `manifests` entry is empty".into(),
            "empty",
            "name a file, a folder or a glob relative to the project folder, e.g. `manifests/`",
        ));
    }
    if written.contains("**") || written.contains('[') || written.contains('{') {
        return Err(src.at(
            item,
            format!("`manifests` entry `{}` uses a glob form this reader does not take", written.escape_debug()),
            "unsupported glob",
            "`*` and `?` match within one level of the path; name each folder (`a/*.yaml`, `a/b/*.yaml`)",
        ));
    }
    let path = Path::new(written);
    let inside = if path.is_absolute() {
        path.strip_prefix(project_root).ok().and_then(below)
    } else {
        below(path)
    };
    let Some(inside) = inside else {
        return Err(src.at(
            item,
            format!(
                "`manifests` entry `{}` leads out of the project folder",
                written.escape_debug()
            ),
            "outside the project folder",
            &format!(
                "manifests are read from inside the project ({}), so that a stack file cannot \
                 apply files from elsewhere; copy them into the project",
                project_root.display()
            ),
        ));
    };
    Ok(ManifestPattern {
        written: written.to_string(),
        path: project_root.join(inside),
        at: Place {
            file: src.file.to_path_buf(),
            position: src.position(item.referenced),
            snippet: render_snippet(src.text, &[src.mark(item.referenced, "here", true)]),
        },
    })
}

/// `path` (relative) with `.` and `..` worked out, or `None` if a `..`
/// climbs above where it starts.
fn below(path: &Path) -> Option<PathBuf> {
    let mut inside = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => inside.push(name),
            Component::CurDir => {}
            Component::ParentDir => {
                if !inside.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(inside)
}

impl ManifestPattern {
    fn error(&self, message: String, hint: &str) -> StackError {
        StackError::Invalid(Box::new(SourceError {
            file: self.at.file.clone(),
            position: self.at.position,
            message,
            snippet: self.at.snippet.clone(),
            hint: Some(hint.to_string()),
        }))
    }

    /// The files this entry names, in order: a file itself, a folder's
    /// YAML files sorted, a glob's matches sorted. Each must be inside
    /// `project_root` once symbolic links are followed.
    pub fn files(&self, project_root: &Path) -> Result<Vec<PathBuf>, StackError> {
        let root = project_root.canonicalize().map_err(|e| {
            self.error(
                format!("cannot read the project folder: {e}"),
                "check that the project folder exists and can be read",
            )
        })?;
        let Ok(relative) = self.path.strip_prefix(project_root) else {
            return Err(self.error(
                format!(
                    "`manifests` entry `{}` was read for another project folder than {}",
                    self.written.escape_debug(),
                    project_root.display()
                ),
                "run from the project the stack file belongs to",
            ));
        };
        let mut reached = vec![project_root.to_path_buf()];
        let mut globbed = false;
        for component in relative.components() {
            let part = component.as_os_str().to_string_lossy();
            if !part.contains(['*', '?']) {
                reached.iter_mut().for_each(|path| path.push(&*part));
                continue;
            }
            globbed = true;
            let mut next = Vec::new();
            for dir in &reached {
                let Ok(entries) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                    .filter(|name| matches(&part, name))
                    .collect();
                names.sort();
                next.extend(names.into_iter().map(|name| dir.join(name)));
            }
            reached = next;
        }
        let mut files = Vec::new();
        for path in reached {
            let Ok(real) = path.canonicalize() else {
                if globbed {
                    continue;
                }
                return Err(self.error(
                    format!(
                        "`manifests` entry `{}` names nothing: {} does not exist",
                        self.written.escape_debug(),
                        path.display()
                    ),
                    "name a file or folder inside the project folder, relative to it",
                ));
            };
            if !real.starts_with(&root) {
                return Err(self.error(
                    format!(
                        "`manifests` entry `{}` leads out of the project folder: {} is {}",
                        self.written.escape_debug(),
                        path.display(),
                        real.display()
                    ),
                    "a symbolic link must not lead a stack's manifests out of the project; copy the files in",
                ));
            }
            if real.is_dir() {
                files.extend(yaml_files(&path, &root).map_err(|e| {
                    self.error(
                        format!("cannot read the folder {}: {e}", path.display()),
                        "check that the folder can be read",
                    )
                })?);
            } else {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(self.error(
                format!(
                    "`manifests` entry `{}` names no YAML file",
                    self.written.escape_debug()
                ),
                "a folder stands for its *.yaml and *.yml files (not its subfolders'); a glob for the files it matches",
            ));
        }
        Ok(files)
    }
}

/// A folder's `*.yaml` and `*.yml` files, sorted by name, none through a
/// link that leads out of `root`.
fn yaml_files(dir: &Path, root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .filter(|path| {
            path.canonicalize()
                .is_ok_and(|real| real.is_file() && real.starts_with(root))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Whether `name` matches `pattern`, where `*` is any run of characters and
/// `?` any one. A name starting with `.` is matched only by a pattern that
/// does, as in a shell.
fn matches(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    // The classic two-pointer match with one backtrack point per `*`.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some('?') => {
                p += 1;
                n += 1;
            }
            Some(c) if *c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// Every object of the files `patterns` name, in order.
pub fn read(
    patterns: &[ManifestPattern],
    project_root: &Path,
) -> Result<Vec<ManifestObject>, StackError> {
    let mut objects = Vec::new();
    for pattern in patterns {
        for file in pattern.files(project_root)? {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                pattern.error(
                    format!("cannot read {}: {e}", file.display()),
                    "check that the file is readable UTF-8 text",
                )
            })?;
            objects.extend(parse(&file, &text)?);
        }
    }
    Ok(objects)
}

/// The objects of one manifest file's text.
pub fn parse(file: &Path, text: &str) -> Result<Vec<ManifestObject>, StackError> {
    let src = Source { file, text };
    let mut objects = Vec::new();
    for (index, document) in documents(text).into_iter().enumerate() {
        let number = index + 1;
        let Some(line) = document.first_line else {
            continue;
        };
        let value: Value = serde_saphyr::from_str(&document.text).map_err(|err| {
            use serde_saphyr::MessageFormatter;
            let err = err.without_snippet();
            let at = err
                .location()
                .and_then(|at| src.position(at))
                .map(|(l, c)| (l + document.offset, c));
            let message = serde_saphyr::UserMessageFormatter
                .format_message(err)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect::<String>();
            let at = at.unwrap_or((line, 1));
            src.error(
                Some(at),
                format!("document {number}: {message}"),
                vec![mark(at, "here")],
                Some("fix the YAML at that spot".into()),
            )
        })?;
        if value.is_null() {
            continue;
        }
        let object = ManifestObject {
            object: value,
            file: file.to_path_buf(),
            document: number,
            line,
            item: None,
        };
        if !object.object.is_object() {
            return Err(located(
                &src,
                &object,
                "is not a mapping, so not a Kubernetes object",
            ));
        }
        // `List`, and typed lists such as `ConfigMapList` (what `kubectl get
        // -o yaml` writes), stand for their items, as kubectl reads them.
        let is_list = object.object["kind"]
            .as_str()
            .is_some_and(|kind| kind.ends_with("List"));
        if is_list && object.object["items"].is_array() {
            let Value::Array(items) = object.object["items"].clone() else {
                unreachable!("checked to be an array");
            };
            for (i, item) in items.into_iter().enumerate() {
                let item = ManifestObject {
                    object: item,
                    item: Some(i + 1),
                    ..object.clone()
                };
                check(&src, &item)?;
                objects.push(item);
            }
            continue;
        }
        check(&src, &object)?;
        objects.push(object);
    }
    Ok(objects)
}

fn mark((line, column): (usize, usize), label: &str) -> Mark {
    Mark {
        line,
        column,
        len: 1,
        label: label.to_string(),
        primary: true,
    }
}

fn located(src: &Source<'_>, object: &ManifestObject, what: &str) -> StackError {
    src.error(
        Some((object.line, 1)),
        format!("{} {what}", object.which()),
        vec![mark((object.line, 1), "this document")],
        Some("each document holds one object with apiVersion, kind and metadata.name (or a `kind: List` of them)".into()),
    )
}

/// The object has what identifies it: apiVersion, kind and metadata.name.
fn check(src: &Source<'_>, object: &ManifestObject) -> Result<(), StackError> {
    let value = &object.object;
    if !value.is_object() {
        return Err(located(
            src,
            object,
            "is not a mapping, so not a Kubernetes object",
        ));
    }
    for (field, present) in [
        (
            "kind",
            value["kind"].as_str().is_some_and(|s| !s.is_empty()),
        ),
        (
            "apiVersion",
            value["apiVersion"].as_str().is_some_and(|s| !s.is_empty()),
        ),
        (
            "metadata.name",
            value["metadata"]["name"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
        ),
    ] {
        if !present {
            return Err(located(src, object, &format!("has no `{field}`")));
        }
    }
    Ok(())
}

/// One document of a file: its text, how many lines come before it, and
/// its first line holding content (`None`: only blanks and comments).
struct Document {
    text: String,
    offset: usize,
    first_line: Option<usize>,
}

/// The documents of `text`, split at `---` lines. Text before the first
/// `---` counts as a document only when it holds content.
fn documents(text: &str) -> Vec<Document> {
    let mut documents = Vec::new();
    let mut current = Document {
        text: String::new(),
        offset: 0,
        first_line: None,
    };
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line == "---" || line.starts_with("--- ") || line.starts_with("---\t") {
            let starts_file = documents.is_empty() && current.first_line.is_none();
            let done = std::mem::replace(
                &mut current,
                Document {
                    text: String::new(),
                    offset: number,
                    first_line: None,
                },
            );
            if !starts_file {
                documents.push(done);
            }
            // `--- key: value` starts the document on the marker's line.
            let rest = line[3..].trim();
            if !rest.is_empty() && !rest.starts_with('#') {
                current.offset = index;
                current.text.push_str(&line[4..]);
                current.text.push('\n');
                current.first_line = Some(number);
            }
            continue;
        }
        if line == "..." {
            continue;
        }
        let content = line.trim();
        if current.first_line.is_none() && !content.is_empty() && !content.starts_with('#') {
            current.first_line = Some(number);
        }
        current.text.push_str(line);
        current.text.push('\n');
    }
    if current.first_line.is_some() || !documents.is_empty() {
        documents.push(current);
    }
    documents
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::testing::{self as stack_testing, assert_error};

    const FILE: &str = "/projects/echo/manifests/seed.yaml";

    fn parse_ok(text: &str) -> Vec<ManifestObject> {
        match parse(Path::new(FILE), text) {
            Ok(objects) => objects,
            Err(err) => panic!("expected {text:?} to parse, got:\n{err}"),
        }
    }

    fn parse_err(text: &str) -> StackError {
        match parse(Path::new(FILE), text) {
            Ok(objects) => panic!("expected {text:?} to fail, got {objects:?}"),
            Err(err) => err,
        }
    }

    fn shown(err: &StackError) -> String {
        format!("{err}\nhint: {}", err.hint().unwrap_or_default())
    }

    #[test]
    fn documents_are_read_in_order_with_their_lines_and_empty_ones_skipped() {
        let objects = parse_ok(
            "# the seed\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n# nothing here\n---\n\napiVersion: v1\nkind: Service\nmetadata:\n  name: b\n",
        );
        let found: Vec<(String, usize, usize)> = objects
            .iter()
            .map(|o| {
                (
                    o.object["kind"].as_str().unwrap().to_string(),
                    o.document,
                    o.line,
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("ConfigMap".to_string(), 1, 3),
                ("Service".to_string(), 3, 11)
            ]
        );
        assert_eq!(objects[1].place(), format!("{FILE}:11 (document 3)"));
    }

    #[test]
    fn a_list_is_expanded_item_by_item() {
        let objects = parse_ok(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: b}\n",
        );
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[1].object["kind"], "Secret");
        assert_eq!(objects[1].which(), "document 1, item 2");
        let objects = parse_ok(
            "apiVersion: v1\nkind: ConfigMapList\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n",
        );
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].object["metadata"]["name"], "a");
        let err = parse_err(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  metadata: {name: a}\n",
        );
        assert!(
            shown(&err).contains("document 1, item 1 has no `kind`"),
            "{}",
            shown(&err)
        );
    }

    #[test]
    fn a_document_without_kind_names_the_file_document_and_line() {
        let err = parse_err(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n\napiVersion: v1\nmetadata:\n  name: b\n",
        );
        let text = shown(&err);
        assert_eq!(err.position(), Some((7, 1)), "{text}");
        assert!(
            text.starts_with(&format!("{FILE}:7:1: document 2 has no `kind`")),
            "{text}"
        );
        assert!(
            text.contains("apiVersion, kind and metadata.name"),
            "{text}"
        );
    }

    #[test]
    fn a_document_without_a_name_or_api_version_is_refused() {
        let err = parse_err("kind: ConfigMap\nmetadata:\n  name: a\n");
        assert!(
            shown(&err).contains("document 1 has no `apiVersion`"),
            "{}",
            shown(&err)
        );
        let err = parse_err("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n");
        assert!(
            shown(&err).contains("document 1 has no `metadata.name`"),
            "{}",
            shown(&err)
        );
        let err = parse_err("- a\n- b\n");
        assert!(shown(&err).contains("is not a mapping"), "{}", shown(&err));
    }

    #[test]
    fn a_yaml_error_is_placed_in_the_whole_file() {
        let err = parse_err(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: 'Service\n",
        );
        let text = shown(&err);
        assert_eq!(err.position().map(|(line, _)| line), Some(7), "{text}");
        assert!(text.contains("document 2"), "{text}");
    }

    #[test]
    fn globs_match_within_one_level() {
        assert!(matches("*.yaml", "crds.yaml"));
        assert!(matches("crd?.yaml", "crds.yaml"));
        assert!(matches("*", "a"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("*.yaml", "crds.yml"));
        assert!(!matches("*.yaml", ".hidden.yaml"));
        assert!(matches(".*.yaml", ".hidden.yaml"));
        assert!(!matches("a*b", "acbx"));
    }

    #[test]
    fn entries_are_one_path_or_a_list_inside_the_project() {
        let stack = parse_ok_stack("namespace: a\nmanifests: manifests/\n");
        assert_eq!(
            stack
                .manifests
                .iter()
                .map(|m| m.path.clone())
                .collect::<Vec<_>>(),
            [PathBuf::from("/projects/echo/manifests")]
        );
        let stack = parse_ok_stack(
            "namespace: a\nmanifests:\n  - crds/*.yaml\n  - /projects/echo/seed.yaml\n",
        );
        assert_eq!(
            stack
                .manifests
                .iter()
                .map(|m| m.path.clone())
                .collect::<Vec<_>>(),
            [
                PathBuf::from("/projects/echo/crds/*.yaml"),
                PathBuf::from("/projects/echo/seed.yaml")
            ]
        );
        let err = parse_stack_err("namespace: a\nmanifests: ../elsewhere/crds.yaml\n");
        assert_error(
            &err,
            2,
            12,
            &["`manifests` entry `../elsewhere/crds.yaml` leads out of the project folder"],
        );
        let err = parse_stack_err("namespace: a\nmanifests:\n  - ok.yaml\n  - /etc/crds.yaml\n");
        assert_error(&err, 4, 5, &["leads out of the project folder"]);
        let err = parse_stack_err("namespace: a\nmanifests: crds/**/*.yaml\n");
        assert_error(&err, 2, 12, &["glob form", "one level"]);
        let err = parse_stack_err("namespace: a\nmanifests: {a: b}\n");
        assert_error(
            &err,
            2,
            12,
            &["`manifests` must be a path, or a list of paths"],
        );
    }

    fn parse_ok_stack(text: &str) -> crate::stack::Stack<Option<String>> {
        stack_testing::parse_ok(text)
    }

    fn parse_stack_err(text: &str) -> StackError {
        stack_testing::parse_err(text)
    }

    fn write(root: &Path, file: &str, text: &str) {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn pattern(root: &Path, written: &str) -> ManifestPattern {
        ManifestPattern {
            written: written.to_string(),
            path: root.join(written),
            at: Place {
                file: root.join("stacks/dev.yaml"),
                position: Some((2, 12)),
                snippet: String::new(),
            },
        }
    }

    #[test]
    fn folders_and_globs_name_their_yaml_files_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in [
            "m/b.yaml",
            "m/a.yml",
            "m/notes.txt",
            "m/deeper/c.yaml",
            "crds/x/crds.yaml",
            "crds/y/crds.yaml",
        ] {
            write(root, file, "");
        }
        let names = |written: &str| -> Vec<String> {
            pattern(root, written)
                .files(root)
                .unwrap()
                .iter()
                .map(|f| f.strip_prefix(root).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(names("m"), ["m/a.yml", "m/b.yaml"]);
        assert_eq!(names("m/*.yaml"), ["m/b.yaml"]);
        assert_eq!(
            names("crds/*/crds.yaml"),
            ["crds/x/crds.yaml", "crds/y/crds.yaml"]
        );
        assert_eq!(names("m/notes.txt"), ["m/notes.txt"]);

        let err = pattern(root, "m/*.json").files(root).unwrap_err();
        assert!(err.to_string().contains("names no YAML file"), "{err}");
        assert_eq!(err.position(), Some((2, 12)));
        let err = pattern(root, "missing.yaml").files(root).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    #[test]
    fn a_symbolic_link_out_of_the_project_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "secret.yaml", "");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("m")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.yaml"), root.join("m/link.yaml"))
            .unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        let err = pattern(root, "m/link.yaml").files(root).unwrap_err();
        assert!(
            err.to_string().contains("leads out of the project folder"),
            "{err}"
        );
        let err = pattern(root, "out").files(root).unwrap_err();
        assert!(
            err.to_string().contains("leads out of the project folder"),
            "{err}"
        );
        // In a folder, a link that leads out is not read.
        write(root, "m/own.yaml", "");
        let files = pattern(root, "m").files(root).unwrap();
        assert_eq!(files, [root.join("m/own.yaml")]);
    }
}
