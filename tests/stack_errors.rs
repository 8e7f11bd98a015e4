//! Broken stack files are reported with file, line and column, exit 1, and
//! before any contact with the cluster: the kubeconfig here points at a
//! port nothing listens on, so any contact would show up as a different error.

use crate::harness::TestProject;

/// A kubeconfig for a server that cannot be reached.
fn unreachable_kubeconfig(project: &TestProject) -> String {
    let path = project.root().join("unreachable.kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: nowhere\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: nowhere\n  context:\n    cluster: nowhere\n    user: nobody\ncurrent-context: nowhere\nusers:\n- name: nobody\n  user:\n    token: not-a-secret\n",
    )
    .unwrap();
    path.display().to_string()
}

/// Writes `stacks/dev.yaml` as the connection lines plus `body`, runs
/// `preview`, and checks the error names `dev.yaml:<line>:<column>` and
/// every one of `words`.
fn assert_stack_error(body: &str, line_col: &str, words: &[&str]) {
    let project = TestProject::new();
    let kubeconfig = unreachable_kubeconfig(&project);
    project.write_stack("dev", &format!("kubeconfig: {kubeconfig}\n{body}"));
    for command in [&["preview"][..], &["up", "--yes"], &["render"]] {
        let run = project.run(command);
        run.assert_code(1);
        run.assert_contains(&format!("dev.yaml:{line_col}"));
        for word in words {
            run.assert_contains(word);
        }
        assert!(
            !run.stderr.contains("127.0.0.1:1"),
            "the cluster was contacted: {run}"
        );
        assert!(
            run.stderr.lines().count() <= 24,
            "the error does not fit on one screen: {run}"
        );
    }
    assert!(project.state("dev").is_none(), "a state file was written");
}

#[test]
fn unknown_key_names_file_line_column_and_allowed_keys() {
    assert_stack_error(
        "namespace: echo-dev\necho:\n  replicaz: 3\n",
        "4:3",
        &["replicaz", "replicas"],
    );
}

#[test]
fn wrong_type_names_file_line_column() {
    assert_stack_error(
        "namespace: echo-dev\necho:\n  replicas: three\n",
        "4:13",
        &["replicas"],
    );
}

#[test]
fn out_of_range_node_port_names_the_allowed_range() {
    assert_stack_error(
        "namespace: echo-dev\necho:\n  nodePort: 40000\n",
        "4:13",
        &["40000", "30000-32767"],
    );
}

#[test]
fn duplicate_node_port_names_both_entries() {
    assert_stack_error(
        "namespace: echo-dev\nechoes:\n  - name: a\n    nodePort: 30010\n  - name: b\n    nodePort: 30010\n",
        "7:15",
        &["30010"],
    );
}

#[test]
fn invalid_name_says_what_a_name_may_hold() {
    assert_stack_error("namespace: Echo_Dev\n", "2:12", &["Echo_Dev"]);
}

#[test]
fn malformed_yaml_names_file_line_column() {
    assert_stack_error(
        "namespace: \"echo-dev\necho:\n  replicas: 1\n",
        "2:12",
        &["unclosed quote"],
    );
}

#[test]
fn negative_replicas_names_the_allowed_range() {
    assert_stack_error(
        "namespace: echo-dev\necho:\n  replicas: -1\n",
        "4:13",
        &["-1", "0 and 1000"],
    );
}

#[test]
fn invalid_echo_name_says_what_a_name_may_hold() {
    assert_stack_error(
        "namespace: echo-dev\nechoes:\n  - name: Bad_Name\n",
        "4:11",
        &["Bad_Name", "DNS-1035"],
    );
}

#[test]
fn unknown_stack_names_the_stacks_there_are() {
    let project = TestProject::new();
    let kubeconfig = unreachable_kubeconfig(&project);
    project.write_stack(
        "dev",
        &format!("kubeconfig: {kubeconfig}\nnamespace: echo-dev\n"),
    );
    for command in [&["preview"][..], &["up", "--yes"], &["destroy", "--yes"]] {
        let mut args = vec!["--stack", "prod"];
        args.extend(command);
        let run = project.run(&args);
        run.assert_code(1)
            .assert_contains("no stack named `prod`")
            .assert_contains("dev");
    }
    assert!(
        !project.root().join("state").exists(),
        "a state folder was created"
    );
}

#[test]
fn project_without_stack_files_says_how_to_add_one() {
    let project = TestProject::new();
    for command in [&["preview"][..], &["up", "--yes"], &["destroy", "--yes"]] {
        let run = project.run(command);
        run.assert_code(1)
            .assert_contains("no stacks")
            .assert_contains("stacks/dev.yaml");
    }
    let run = project.run(&["--stack", "dev", "preview"]);
    run.assert_code(1).assert_contains("no stack named `dev`");
    assert!(
        !project.root().join("state").exists(),
        "a state folder was created"
    );
}

#[test]
fn setting_indented_under_a_single_value_points_at_that_line() {
    assert_stack_error(
        "namespace: echo-dev\necho:\n  replicas: 2\n    nodePort: 32650\n",
        "5:5",
        &[
            "indented under `replicas: 2`",
            "indent `nodePort:` as far as `replicas:`",
        ],
    );
}

#[test]
fn kubeconfig_that_is_no_path_is_named_at_its_value() {
    let project = TestProject::new();
    project.write_stack("dev", "kubeconfig: 42\nnamespace: echo-dev\n");
    project.run(&["preview"]).assert_code(1).assert_contains(
        "dev.yaml:1:13: `kubeconfig` must be a path, or a list of paths, found `42`",
    );
}

#[test]
fn yaml_tags_and_unquoted_numbers_as_text_are_refused() {
    assert_stack_error(
        "namespace: echo-dev\necho:\n  image: !!python/object:os.system ls\n",
        "4:10",
        &["`!!python/object:os.system` is a YAML tag"],
    );
    assert_stack_error(
        "namespace: echo-dev\necho:\n  image: 42\n",
        "4:10",
        &["`image` takes text", "image: \"42\""],
    );
}

#[test]
fn whole_numbers_other_than_plain_decimal_are_refused_with_the_decimal() {
    assert_stack_error(
        "namespace: echo-dev\necho:\n  replicas: 0x10\n",
        "4:13",
        &["`replicas` is written `0x10`", "replicas: 16"],
    );
}

#[test]
fn stack_file_that_is_not_utf8_names_line_and_column() {
    let project = TestProject::new();
    let kubeconfig = unreachable_kubeconfig(&project);
    let mut bytes = format!("kubeconfig: {kubeconfig}\nnamespace: echo-dev\necho:\n  message: caf")
        .into_bytes();
    bytes.extend(b"\xe9\n");
    std::fs::write(project.root().join("stacks/dev.yaml"), bytes).unwrap();
    project
        .run(&["preview"])
        .assert_code(1)
        .assert_contains("dev.yaml:4:15: the stack file is not UTF-8 text")
        .assert_contains("save the file as UTF-8");
}

#[test]
fn toleration_key_that_is_no_label_key_is_refused_before_the_server_sees_it() {
    assert_stack_error(
        "namespace: echo-dev\necho:\n  tolerations:\n    - {key: 'bad key!', operator: Exists}\n",
        "5:7",
        &["toleration key \"bad key!\" is not a label key"],
    );
}
