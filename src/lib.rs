//! The echo program: the seed's echo stack as code. Per echo service an
//! nginx ConfigMap answering `Hello! I am Pod: <address>`, a Deployment
//! mounting it and a Service in front of its pods; the runner
//! (`echo-iac-runner`) gives it every command.

mod program;

pub use program::echo::Echo;
