//! Which files in `stacks/` are stacks: `.yaml` and `.yml` alike, and a
//! stack defined by both is refused rather than half ignored.

use crate::harness::TestProject;

const STACK: &str = "namespace: echo-dev\necho:\n  replicas: 1\n  nodePort: 30999\n";

#[test]
fn a_stack_file_ending_in_yml_is_read() {
    let project = TestProject::new();
    std::fs::write(project.root().join("stacks/ci.yml"), STACK).unwrap();
    project
        .run(&["render"])
        .assert_code(0)
        .assert_contains("name: nginx-echo-config")
        .assert_contains("namespace: echo-dev");
    project
        .run(&["stack", "ls"])
        .assert_code(0)
        .assert_contains("ci");
}

#[test]
fn a_stack_in_both_yaml_and_yml_is_refused_naming_both_files() {
    let project = TestProject::new();
    project.write_stack("dev", STACK);
    std::fs::write(project.root().join("stacks/dev.yml"), STACK).unwrap();
    project
        .run(&["render"])
        .assert_code(1)
        .assert_contains("dev.yaml and ")
        .assert_contains("dev.yml exist")
        .assert_contains("hint: ");
}
