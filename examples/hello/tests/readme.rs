//! The README shows this program whole: the block must be the file, so the
//! README can never drift from the runner's API (the file compiles).

#[test]
fn the_readme_shows_the_smallest_program_as_it_is() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let program = std::fs::read_to_string(format!("{root}/examples/hello/src/main.rs")).unwrap();
    let marker = "<!-- examples/hello/src/main.rs -->\n```rust\n";
    let start = readme
        .find(marker)
        .expect("the README has the marked block")
        + marker.len();
    let end = start + readme[start..].find("```\n").expect("the block ends");
    assert_eq!(
        &readme[start..end],
        program,
        "README.md and examples/hello/src/main.rs differ"
    );
}
