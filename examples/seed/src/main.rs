//! A program on the echo-iac runner that declares nothing of its own: the
//! objects of its stacks are plain YAML files, named by each stack file's
//! `manifests:` (here the seed's three files in `manifests/`). The runner
//! gives them what it gives a program's typed objects: the stack's
//! namespace, ownership labels, dependencies from their references,
//! previews from the server, waits until ready, pruning and history.

use echo_iac_runner::{Error, NoCommands, NoSettings, Program, Resources, Runner, StackInfo};

struct Seed;

impl Program for Seed {
    const NAME: &'static str = "seed-iac";
    const ABOUT: &'static str = "Plain manifests, from the stack file's `manifests:`";
    type Config = NoSettings;
    type Command = NoCommands;

    fn declare(&self, stack: &StackInfo, _settings: &()) -> Result<Resources, Error> {
        // Nothing but the namespace, when the stack creates it.
        Ok(stack.resources())
    }
}

fn main() -> std::process::ExitCode {
    Runner::new(Seed).version(env!("CARGO_PKG_VERSION")).run()
}
