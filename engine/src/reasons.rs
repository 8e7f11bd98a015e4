//! Why a workload's pods are not ready, read from their status the way a
//! person would with `kubectl describe pod`: the scheduler's verdict, each
//! container's waiting reason and message, the last exit of a container
//! that keeps crashing, a readiness probe that does not pass.
//!
//! Some reasons do not heal by waiting (a tag that does not exist, a
//! missing ConfigMap key, no node that could ever take the pod, a command
//! that exits at once): [`PodReason::fatal`] marks them, so a wait can stop
//! early instead of running into its timeout.

use std::fmt;

use serde_json::Value;

/// What holds one pod back, at its newest.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PodReason {
    pub pod: String,
    /// The container the reason is about; `None` for the pod as a whole
    /// (scheduling).
    pub container: Option<String>,
    /// Kubernetes' own word: `ImagePullBackOff`, `CrashLoopBackOff`,
    /// `Unschedulable`, ...
    pub reason: String,
    /// The detail: the image and the pull error, the exit code, the
    /// scheduler's message.
    pub message: String,
    /// Whether waiting longer would not help.
    pub fatal: bool,
    /// For a crashing container: its restarts, so its log is read once per
    /// crash.
    pub restarts: i64,
    /// The last lines of the crashed container's log, once read.
    pub log: Option<String>,
}

impl PodReason {
    /// The kind of fix the reason calls for, for the hint.
    pub(crate) fn what_to_fix(&self) -> &'static str {
        match self.reason.as_str() {
            "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull" => {
                "the image cannot be pulled: check `image:` in the stack file (name and tag) and that the nodes can reach its registry"
            }
            "CreateContainerConfigError" => {
                "the container's configuration refers to something missing (a ConfigMap or Secret, or a key in one): create it or fix the reference"
            }
            "Unschedulable" => {
                "no node can take the pods: check the stack's nodeSelector and tolerations against the nodes' labels and taints"
            }
            "CrashLoopBackOff" => {
                "the container exits soon after it starts: its log lines above say why; fix its command or configuration"
            }
            _ => "fix the cause above",
        }
    }
}

impl fmt::Display for PodReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pod {}", self.pod)?;
        if let Some(container) = &self.container {
            write!(f, " container {container}")?;
        }
        write!(f, ": {}", self.reason)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(log) = &self.log {
            write!(f, "\n      last log lines:")?;
            for line in log.lines() {
                write!(f, "\n        | {line}")?;
            }
        }
        Ok(())
    }
}

/// Waiting reasons that no amount of waiting fixes.
const FATAL_WAITING: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CrashLoopBackOff",
];

/// The scheduler's words for "no node could take this pod even if others
/// were evicted": more time or fewer pods would not help.
const NEVER_FITS: &str = "Preemption is not helpful";

/// The newest reason a pod is not ready, or `None` if it is ready, being
/// deleted, or simply still starting.
pub(crate) fn pod_reason(pod: &Value) -> Option<PodReason> {
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        return None;
    }
    let name = pod["metadata"]["name"].as_str().unwrap_or("?").to_string();
    let conditions = pod["status"]["conditions"].as_array();
    let condition = |kind: &str| conditions.and_then(|c| c.iter().find(|c| c["type"] == kind));
    if let Some(scheduled) = condition("PodScheduled")
        && scheduled["status"] == "False"
    {
        let message = scheduled["message"].as_str().unwrap_or_default();
        return Some(PodReason {
            pod: name,
            container: None,
            reason: scheduled["reason"]
                .as_str()
                .unwrap_or("Unschedulable")
                .to_string(),
            message: message.to_string(),
            fatal: message.contains(NEVER_FITS),
            restarts: 0,
            log: None,
        });
    }
    let statuses = pod["status"]["initContainerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(
            pod["status"]["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten(),
        );
    let mut found: Option<PodReason> = None;
    for status in statuses {
        if let Some(reason) = container_reason(pod, &name, status) {
            // A reason that will not heal says the most; otherwise the first.
            if found.as_ref().is_none_or(|f| !f.fatal && reason.fatal) {
                found = Some(reason);
            }
        }
    }
    found
}

fn container_reason(pod: &Value, pod_name: &str, status: &Value) -> Option<PodReason> {
    let container = status["name"].as_str().unwrap_or("?").to_string();
    let restarts = status["restartCount"].as_i64().unwrap_or(0);
    let last_exit = &status["lastState"]["terminated"];
    let exited = last_exit["exitCode"].as_i64();
    let crash = || {
        let code = exited.unwrap_or(0);
        let why = last_exit["reason"].as_str().unwrap_or("Error");
        format!("last exit code {code} ({why}), {restarts} restart(s)")
    };
    let reason = |reason: &str, message: String, fatal: bool| PodReason {
        pod: pod_name.to_string(),
        container: Some(container.clone()),
        reason: reason.to_string(),
        message,
        fatal,
        restarts,
        log: None,
    };
    let state = &status["state"];
    if let Some(waiting) = state["waiting"].as_object() {
        let why = waiting
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("Waiting");
        if matches!(why, "ContainerCreating" | "PodInitializing") {
            return None;
        }
        let mut message = waiting
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if why == "CrashLoopBackOff" {
            message = crash();
        }
        if why.contains("Image") {
            let image = image_of(pod, status);
            if !image.is_empty() && !message.contains(&image) {
                message = format!("image {image}: {message}");
            }
        }
        return Some(reason(why, message, FATAL_WAITING.contains(&why)));
    }
    if status["ready"] == true {
        return None;
    }
    // Between two crashes a crash-looping container is briefly running or
    // terminated; it is still the same crash loop.
    if restarts >= 2 && exited.is_some_and(|code| code != 0) {
        return Some(reason("CrashLoopBackOff", crash(), true));
    }
    if let Some(terminated) = state["terminated"].as_object() {
        let code = terminated
            .get("exitCode")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let why = terminated
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("Terminated");
        return Some(reason(why, format!("exit code {code}"), false));
    }
    if state["running"].is_object() && has_readiness_probe(pod, &container) {
        return Some(reason(
            "Unready",
            "running, but its readiness probe does not pass".into(),
            false,
        ));
    }
    None
}

fn image_of(pod: &Value, status: &Value) -> String {
    let name = &status["name"];
    ["containers", "initContainers"]
        .iter()
        .flat_map(|key| pod["spec"][key].as_array().into_iter().flatten())
        .find(|c| &c["name"] == name)
        .and_then(|c| c["image"].as_str())
        .or_else(|| status["image"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn has_readiness_probe(pod: &Value, container: &str) -> bool {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["name"] == container && c["readinessProbe"].is_object())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(status: Value) -> Value {
        json!({"metadata": {"name": "web-1"},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:nope",
                "readinessProbe": {"httpGet": {"port": 80}}}]},
            "status": status})
    }

    #[test]
    fn an_image_pull_back_off_names_the_image_and_is_fatal() {
        let p = pod(
            json!({"containerStatuses": [{"name": "nginx", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff",
                "message": "Back-off pulling image \"nginx:nope\": ErrImagePull: not found"}}}]}),
        );
        let r = pod_reason(&p).unwrap();
        assert!(r.fatal);
        assert_eq!(
            r.to_string(),
            "pod web-1 container nginx: ImagePullBackOff: Back-off pulling image \"nginx:nope\": ErrImagePull: not found"
        );
    }

    #[test]
    fn a_pull_message_without_the_image_gets_it() {
        let p = pod(
            json!({"containerStatuses": [{"name": "nginx", "ready": false,
            "state": {"waiting": {"reason": "ErrImagePull", "message": "rpc error: not found"}}}]}),
        );
        assert_eq!(
            pod_reason(&p).unwrap().message,
            "image nginx:nope: rpc error: not found"
        );
    }

    #[test]
    fn a_crash_loop_reports_the_last_exit_even_while_briefly_running() {
        let waiting = pod(
            json!({"containerStatuses": [{"name": "nginx", "ready": false, "restartCount": 2,
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}}}]}),
        );
        let r = pod_reason(&waiting).unwrap();
        assert!(r.fatal);
        assert_eq!(r.message, "last exit code 1 (Error), 2 restart(s)");
        let running = pod(
            json!({"containerStatuses": [{"name": "nginx", "ready": false, "restartCount": 3,
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
            "state": {"running": {}}}]}),
        );
        assert_eq!(pod_reason(&running).unwrap().reason, "CrashLoopBackOff");
    }

    #[test]
    fn unschedulable_is_fatal_only_when_no_node_could_ever_fit() {
        let never = json!({"metadata": {"name": "p"}, "status": {"conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable",
            "message": "0/4 nodes are available: 4 node(s) didn't match Pod's node affinity/selector. preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling."}]}});
        assert!(pod_reason(&never).unwrap().fatal);
        let later = json!({"metadata": {"name": "p"}, "status": {"conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."}]}});
        assert!(!pod_reason(&later).unwrap().fatal);
    }

    #[test]
    fn a_failing_readiness_probe_is_shown_but_waited_for() {
        let p = pod(
            json!({"containerStatuses": [{"name": "nginx", "ready": false, "restartCount": 0,
            "state": {"running": {"startedAt": "x"}}}]}),
        );
        let r = pod_reason(&p).unwrap();
        assert_eq!(r.reason, "Unready");
        assert!(!r.fatal);
    }

    #[test]
    fn starting_and_ready_pods_have_no_reason() {
        let creating = pod(
            json!({"containerStatuses": [{"name": "nginx", "ready": false,
            "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
        );
        assert_eq!(pod_reason(&creating), None);
        let ready = pod(
            json!({"containerStatuses": [{"name": "nginx", "ready": true,
            "state": {"running": {}}}]}),
        );
        assert_eq!(pod_reason(&ready), None);
    }

    #[test]
    fn log_lines_are_indented_under_the_reason() {
        let mut r = pod_reason(&pod(
            json!({"containerStatuses": [{"name": "nginx", "ready": false,
            "restartCount": 2, "lastState": {"terminated": {"exitCode": 1}},
            "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
        ))
        .unwrap();
        r.log = Some("nginx: [emerg] unknown directive \"oops\"\n".into());
        assert!(
            r.to_string()
                .ends_with("last log lines:\n        | nginx: [emerg] unknown directive \"oops\""),
            "{r}"
        );
    }
}
