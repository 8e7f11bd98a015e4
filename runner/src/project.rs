//! The project: the folder holding `stacks/`, found the way cargo finds
//! `Cargo.toml`, and the choice of which of its stacks a command acts on.

use std::path::{Path, PathBuf};

/// Folder of stack files, one `<name>.yaml` (or `<name>.yml`) per stack.
pub(crate) const STACKS_DIR: &str = "stacks";
/// The stack file extensions read, the first one preferred for new files.
/// Both spellings are common for YAML, and a file silently ignored for its
/// spelling is worse than a second spelling.
const STACK_EXTENSIONS: [&str; 2] = ["yaml", "yml"];

/// A project folder; every relative path in a stack file is relative to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Project {
    root: PathBuf,
}

impl Project {
    /// The nearest folder, `start` or one of its parents, that has a `stacks/`
    /// folder.
    pub(crate) fn discover(start: &Path) -> Result<Project, ProjectError> {
        // Canonical, so that `..` in `start` walks up the real tree.
        let start = std::fs::canonicalize(start).map_err(|source| ProjectError::Folder {
            dir: start.to_path_buf(),
            source,
        })?;
        start
            .ancestors()
            .find(|dir| dir.join(STACKS_DIR).is_dir())
            .map(|root| Project {
                root: root.to_path_buf(),
            })
            .ok_or(ProjectError::NotFound { start })
    }

    /// The project in `dir` itself, as `-C DIR` asks: no search upwards, so a
    /// mistyped path fails instead of silently picking an enclosing project.
    pub fn at(dir: &Path) -> Result<Project, ProjectError> {
        let root = std::fs::canonicalize(dir).map_err(|source| ProjectError::Folder {
            dir: dir.to_path_buf(),
            source,
        })?;
        if !root.join(STACKS_DIR).is_dir() {
            return Err(ProjectError::NoStacksDir { dir: root });
        }
        Ok(Project { root })
    }

    /// The project a new stack is written into (`stack init`): the one
    /// `dir` is in when there is one, as for every command, else `dir`
    /// itself, whose `stacks/` folder [`create_stacks_dir`] then makes.
    /// `explicit` (`-C DIR`) is taken as it is, as [`Project::at`] takes it.
    ///
    /// [`create_stacks_dir`]: Project::create_stacks_dir
    pub(crate) fn for_new_stack(dir: &Path, explicit: bool) -> Result<Project, ProjectError> {
        let root = std::fs::canonicalize(dir).map_err(|source| ProjectError::Folder {
            dir: dir.to_path_buf(),
            source,
        })?;
        if explicit {
            return Ok(Project { root });
        }
        match Project::discover(&root) {
            Err(ProjectError::NotFound { .. }) => Ok(Project { root }),
            found => found,
        }
    }

    /// Creates `stacks/` if it is missing.
    pub(crate) fn create_stacks_dir(&self) -> Result<(), ProjectError> {
        let dir = self.stacks_dir();
        std::fs::create_dir_all(&dir).map_err(|source| ProjectError::Folder { dir, source })
    }

    /// Every file that defines, or would define, stack `name` and exists
    /// (as anything, even a dangling link): `<name>.yaml` and `<name>.yml`.
    pub(crate) fn existing_stack_files(&self, name: &str) -> Vec<PathBuf> {
        let dir = self.stacks_dir();
        STACK_EXTENSIONS
            .iter()
            .map(|ext| dir.join(format!("{name}.{ext}")))
            .filter(|path| std::fs::symlink_metadata(path).is_ok())
            .collect()
    }

    /// Where a new stack `name` is written: `stacks/<name>.yaml`.
    pub(crate) fn new_stack_file(&self, name: &str) -> PathBuf {
        self.stacks_dir()
            .join(format!("{name}.{}", STACK_EXTENSIONS[0]))
    }

    /// The project folder, canonical.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Whether this is echo-iac's own repository, which builds and starts a
    /// local control plane (`make cluster`): only there may hints send a
    /// user to it. Known by the script that starts it, which no other
    /// project has.
    pub(crate) fn has_local_control_plane(&self) -> bool {
        self.root.join("tests/cluster/up.sh").is_file()
    }

    pub(crate) fn stacks_dir(&self) -> PathBuf {
        self.root.join(STACKS_DIR)
    }

    /// Where stack `name` is defined: `<name>.yaml`, else `<name>.yml`,
    /// else where it would be (`<name>.yaml`).
    pub(crate) fn stack_file(&self, name: &str) -> PathBuf {
        let dir = self.stacks_dir();
        STACK_EXTENSIONS
            .iter()
            .map(|ext| dir.join(format!("{name}.{ext}")))
            .find(|path| path.is_file())
            .unwrap_or_else(|| dir.join(format!("{name}.{}", STACK_EXTENSIONS[0])))
    }

    /// The stacks defined in `stacks/`, sorted. Hidden files are skipped:
    /// editors and tools leave them behind, and they are not stacks. A
    /// stack defined by both a `.yaml` and a `.yml` file is an error, since
    /// either choice would silently ignore the other file.
    pub fn stack_names(&self) -> Result<Vec<String>, ProjectError> {
        let dir = self.stacks_dir();
        let read_error = |source| ProjectError::ReadStacks {
            dir: dir.clone(),
            source,
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(read_error)? {
            let path = entry.map_err(read_error)?.path();
            let is_stack_file = path
                .extension()
                .is_some_and(|ext| STACK_EXTENSIONS.iter().any(|known| ext == *known));
            if !is_stack_file || !path.is_file() {
                continue;
            }
            let Some(name) = path.file_stem().and_then(|stem| stem.to_str()) else {
                continue;
            };
            if !name.is_empty() && !name.starts_with('.') {
                names.push(name.to_string());
            }
        }
        names.sort();
        if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(ProjectError::TwoStackFiles {
                name: pair[0].clone(),
                dir,
            });
        }
        Ok(names)
    }

    /// The stack to act on: `explicit` (from `--stack` or `ECHO_IAC_STACK`)
    /// if given, else the project's only stack. An empty `explicit` counts as
    /// not given, so an exported but empty `ECHO_IAC_STACK` does not shadow the
    /// single-stack default.
    pub(crate) fn select_stack(&self, explicit: Option<&str>) -> Result<String, ProjectError> {
        let names = self.stack_names()?;
        match explicit.filter(|name| !name.is_empty()) {
            Some(name) if names.iter().any(|known| known == name) => Ok(name.to_string()),
            Some(name) => Err(ProjectError::UnknownStack {
                name: name.to_string(),
                dir: self.stacks_dir(),
                available: names,
            }),
            None => match names.as_slice() {
                [] => Err(ProjectError::NoStacks {
                    dir: self.stacks_dir(),
                }),
                [only] => Ok(only.clone()),
                _ => Err(ProjectError::NoStackSelected { available: names }),
            },
        }
    }
}

/// Why no project, or no stack of it, could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// A folder given or searched cannot be opened or created.
    #[error("cannot use folder {}: {source}", dir.display())]
    Folder {
        /// The folder, as given.
        dir: PathBuf,
        /// Why it cannot be used.
        #[source]
        source: std::io::Error,
    },
    /// Neither the starting folder nor any above it has a `stacks/` folder.
    #[error(
        "no {} project here: neither {} nor any folder above it has a `{STACKS_DIR}/` folder",
        crate::name::bin(),
        start.display()
    )]
    NotFound {
        /// Where the search began.
        start: PathBuf,
    },
    /// The folder named with `-C` has no `stacks/` folder.
    #[error("{} is not a project: it has no `{STACKS_DIR}/` folder", dir.display())]
    NoStacksDir {
        /// The folder.
        dir: PathBuf,
    },
    /// `stacks/` cannot be listed.
    #[error("cannot list the stacks in {}: {source}", dir.display())]
    ReadStacks {
        /// The `stacks/` folder.
        dir: PathBuf,
        /// Why it cannot be listed.
        #[source]
        source: std::io::Error,
    },
    /// No stack was named and `stacks/` holds no stack file.
    #[error("no stacks: {} has no `*.yaml` (or `*.yml`) files", dir.display())]
    NoStacks {
        /// The `stacks/` folder.
        dir: PathBuf,
    },
    /// Both `<name>.yaml` and `<name>.yml` exist; either choice would
    /// silently ignore the other.
    #[error(
        "stack `{name}` is defined twice: both {} and {} exist",
        dir.join(format!("{name}.yaml")).display(),
        dir.join(format!("{name}.yml")).display()
    )]
    TwoStackFiles {
        /// The stack's name.
        name: String,
        /// The `stacks/` folder.
        dir: PathBuf,
    },
    /// No stack was named and the project has several.
    #[error("which stack? This project has {}: {}", available.len(), available.join(", "))]
    NoStackSelected {
        /// The project's stacks, sorted.
        available: Vec<String>,
    },
    /// The stack named with `--stack` (or `ECHO_IAC_STACK`) is not in `stacks/`.
    #[error(
        "no stack named `{}` in {}; stacks: {}",
        name.escape_debug(),
        dir.display(),
        list(available)
    )]
    UnknownStack {
        /// The name asked for.
        name: String,
        /// The `stacks/` folder.
        dir: PathBuf,
        /// The project's stacks, sorted.
        available: Vec<String>,
    },
}

impl ProjectError {
    /// What to do next, for the line after the error.
    pub(crate) fn hint(&self) -> Option<String> {
        Some(match self {
            ProjectError::Folder { .. } => "check the folder given with -C".into(),
            ProjectError::NotFound { .. } => format!(
                "run {} inside a project (a folder with `{STACKS_DIR}/`), or point at one \
                 with -C DIR",
                crate::name::bin()
            ),
            ProjectError::NoStacksDir { dir } => format!(
                "point -C at the project folder, or create {} with a stack file such as dev.yaml",
                dir.join(STACKS_DIR).display()
            ),
            ProjectError::ReadStacks { .. } => "check the folder's permissions".into(),
            ProjectError::NoStacks { dir } => format!(
                "create a stack file such as {}",
                dir.join("dev.yaml").display()
            ),
            ProjectError::TwoStackFiles { name, .. } => {
                format!("keep one of the two files: delete or rename the other ({name}.yml)")
            }
            ProjectError::NoStackSelected { available } => format!(
                "pass --stack NAME (or set ECHO_IAC_STACK), e.g. --stack {}",
                available.first().map(String::as_str).unwrap_or("dev")
            ),
            ProjectError::UnknownStack {
                name,
                dir,
                available,
            } => match crate::suggest::closest(name, available.iter().map(String::as_str)) {
                Some(close) => format!("did you mean `--stack {close}`?"),
                None if available.is_empty() => {
                    format!("create {}", dir.join(format!("{name}.yaml")).display())
                }
                None => format!("pass one of: {}", available.join(", ")),
            },
        })
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A project folder with the given stack files (names without `.yaml`).
    fn project_with(stacks: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(STACKS_DIR)).unwrap();
        for name in stacks {
            std::fs::write(
                dir.path().join(STACKS_DIR).join(format!("{name}.yaml")),
                "namespace: echo\n",
            )
            .unwrap();
        }
        dir
    }

    fn canonical(path: &Path) -> PathBuf {
        std::fs::canonicalize(path).unwrap()
    }

    #[test]
    fn discover_finds_stacks_in_the_start_folder() {
        let dir = project_with(&["dev"]);
        let project = Project::discover(dir.path()).unwrap();
        assert_eq!(project.root(), canonical(dir.path()));
    }

    #[test]
    fn discover_walks_up_from_a_subfolder() {
        let dir = project_with(&["dev"]);
        let deep = dir.path().join("src").join("deep");
        std::fs::create_dir_all(&deep).unwrap();
        let project = Project::discover(&deep).unwrap();
        assert_eq!(project.root(), canonical(dir.path()));
    }

    #[test]
    fn discover_prefers_the_nearest_project() {
        let outer = project_with(&["dev"]);
        let inner = outer.path().join("nested");
        std::fs::create_dir_all(inner.join(STACKS_DIR)).unwrap();
        let project = Project::discover(&inner.join(STACKS_DIR)).unwrap();
        assert_eq!(project.root(), canonical(&inner));
    }

    #[test]
    fn discover_without_a_stacks_folder_says_how_to_point_at_one() {
        let dir = tempfile::tempdir().unwrap();
        // A file named `stacks` is not a project.
        std::fs::write(dir.path().join(STACKS_DIR), "").unwrap();
        match Project::discover(dir.path()) {
            Err(err @ ProjectError::NotFound { .. }) => {
                assert!(err.to_string().contains("no echo-iac project here"));
                assert!(err.hint().unwrap().contains("-C DIR"));
            }
            // Some folder above the temporary one may itself be a project.
            Ok(project) => assert_ne!(project.root(), canonical(dir.path())),
            Err(err) => panic!("unexpected {err}"),
        }
    }

    #[test]
    fn discover_of_a_missing_folder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Project::discover(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(err, ProjectError::Folder { .. }), "{err}");
    }

    #[test]
    fn at_requires_stacks_in_that_very_folder() {
        let dir = project_with(&["dev"]);
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let err = Project::at(&sub).unwrap_err();
        assert!(matches!(err, ProjectError::NoStacksDir { .. }), "{err}");
        assert!(err.to_string().contains("has no `stacks/` folder"));
        assert!(err.hint().unwrap().contains("-C"));

        let err = Project::at(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(err, ProjectError::Folder { .. }), "{err}");
    }

    #[test]
    fn paths_are_inside_the_project_root() {
        let dir = project_with(&["dev"]);
        let project = Project::at(dir.path()).unwrap();
        let root = canonical(dir.path());
        assert_eq!(project.root(), root);
        assert_eq!(project.stacks_dir(), root.join("stacks"));
        assert_eq!(project.stack_file("dev"), root.join("stacks/dev.yaml"));
    }

    #[test]
    fn stack_names_are_sorted_yaml_and_yml_files_only() {
        let dir = project_with(&["staging", "dev", "prod"]);
        let stacks = dir.path().join(STACKS_DIR);
        std::fs::write(stacks.join("notes.txt"), "").unwrap();
        std::fs::write(stacks.join("old.yml"), "").unwrap();
        std::fs::write(stacks.join(".dev.yaml"), "").unwrap();
        std::fs::create_dir(stacks.join("folder.yaml")).unwrap();
        let project = Project::at(dir.path()).unwrap();
        assert_eq!(
            project.stack_names().unwrap(),
            ["dev", "old", "prod", "staging"]
        );
    }

    #[test]
    fn a_yml_stack_file_is_read_and_selected() {
        let dir = project_with(&[]);
        let file = dir.path().join(STACKS_DIR).join("ci.yml");
        std::fs::write(&file, "namespace: echo\n").unwrap();
        let project = Project::at(dir.path()).unwrap();
        assert_eq!(project.select_stack(None).unwrap(), "ci");
        assert_eq!(project.stack_file("ci"), canonical(&file));
        // A stack not defined yet would be written as `.yaml`.
        assert_eq!(
            project.stack_file("new"),
            project.stacks_dir().join("new.yaml")
        );
    }

    #[test]
    fn a_stack_in_both_yaml_and_yml_is_refused_naming_both_files() {
        let dir = project_with(&["dev"]);
        std::fs::write(dir.path().join(STACKS_DIR).join("dev.yml"), "").unwrap();
        let project = Project::at(dir.path()).unwrap();
        let err = project.select_stack(Some("dev")).unwrap_err();
        assert!(matches!(err, ProjectError::TwoStackFiles { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("dev.yaml") && message.contains("dev.yml"),
            "{message}"
        );
    }

    #[test]
    fn explicit_stack_is_chosen() {
        let dir = project_with(&["dev", "prod"]);
        let project = Project::at(dir.path()).unwrap();
        assert_eq!(project.select_stack(Some("prod")).unwrap(), "prod");
    }

    #[test]
    fn unknown_explicit_stack_lists_the_known_ones() {
        let dir = project_with(&["dev", "prod"]);
        let project = Project::at(dir.path()).unwrap();
        let err = project.select_stack(Some("qa")).unwrap_err();
        assert!(matches!(err, ProjectError::UnknownStack { .. }), "{err}");
        assert!(err.to_string().contains("no stack named `qa`"), "{err}");
        assert!(err.to_string().contains("stacks: dev, prod"), "{err}");
        assert_eq!(err.hint().unwrap(), "pass one of: dev, prod");

        let err = project.select_stack(Some("prd")).unwrap_err();
        assert_eq!(err.hint().unwrap(), "did you mean `--stack prod`?");
    }

    #[test]
    fn the_only_stack_is_chosen_when_none_is_given() {
        let dir = project_with(&["dev"]);
        let project = Project::at(dir.path()).unwrap();
        assert_eq!(project.select_stack(None).unwrap(), "dev");
        assert_eq!(project.select_stack(Some("")).unwrap(), "dev");
    }

    #[test]
    fn several_stacks_and_none_given_asks_for_stack_flag() {
        let dir = project_with(&["dev", "prod", "staging"]);
        let project = Project::at(dir.path()).unwrap();
        let err = project.select_stack(None).unwrap_err();
        assert!(matches!(err, ProjectError::NoStackSelected { .. }), "{err}");
        assert!(err.to_string().contains("dev, prod, staging"), "{err}");
        assert!(err.hint().unwrap().contains("--stack NAME"));
        assert!(err.hint().unwrap().contains("ECHO_IAC_STACK"));
    }

    #[test]
    fn no_stack_files_says_to_create_one() {
        let dir = project_with(&[]);
        let project = Project::at(dir.path()).unwrap();
        let err = project.select_stack(None).unwrap_err();
        assert!(matches!(err, ProjectError::NoStacks { .. }), "{err}");
        assert!(err.hint().unwrap().contains("dev.yaml"));
    }
}
