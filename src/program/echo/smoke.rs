//! `echo-iac test`: the seed's own check, as `helm test` runs a chart's: a
//! curl Pod in the stack's namespace requests each echo Service by its
//! short name through cluster DNS, and every answer must name a live pod
//! of the Service's Deployment.
//!
//! The curl image has no shell, so the Pod runs one curl with the same URL
//! N times and a write-out line after each transfer; it runs to completion
//! and its log is read through the API, so nothing needs `exec`. Each
//! request closes its connection, so kube-proxy picks a backend per
//! request rather than once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use clap::Args;

use super::{Echo, EchoConfig};
use echo_iac_engine::EngineError;
use echo_iac_engine::ResourceId;
use echo_iac_engine::cluster::{Cluster, ClusterError};
use echo_iac_runner::cli::parse_duration;
use echo_iac_runner::error::exit;
use echo_iac_runner::{Error, Session, note, print, print_document, watch_interrupts};

/// Marks the Pods this command starts, with the Service they test as value,
/// so that a Pod left by a run stopped at once is found and deleted.
pub const TEST_LABEL: &str = "echo-iac.io/test-of";
/// Starts the line curl writes after each transfer.
const MARKER: &str = "echo-iac-test:";
const CONTAINER: &str = "curl";
/// One request may take this long, connecting included.
const REQUEST_TIMEOUT_SECS: u32 = 5;
/// How much of a log the engine's `pod_log` reads.
const LOG_LIMIT_BYTES: usize = 16 * 1024;
/// How long a running test Pod may write nothing before it is given up on:
/// curl writes a line after each request, and each request ends within
/// [`REQUEST_TIMEOUT_SECS`].
const NO_OUTPUT_AFTER: Duration = Duration::from_secs(REQUEST_TIMEOUT_SECS as u64 + 5);
/// How long a deleted test Pod is waited for; a finished one goes at once.
const POD_GONE_WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, Args)]
/// `echo-iac test`'s flags.
pub struct TestArgs {
    /// Print the answers and counts as one JSON document.
    #[arg(long)]
    pub json: bool,
    /// How many requests to send to each Service.
    #[arg(long, default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=200))]
    pub requests: u16,
    /// How long the whole test may take (the pod starting, running and its log).
    #[arg(long, default_value = "1m", value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Duration,
}

pub async fn run(session: &Session<Echo>, args: TestArgs) -> Result<(), Error> {
    let cluster = session.connect().await?;
    let cancel = watch_interrupts();
    let namespace = session.stack.namespace.clone();
    let deadline = Instant::now() + args.timeout;
    let mut reports = Vec::new();
    for echo in &session.stack.program.echoes {
        if !args.json {
            print(&format!(
                "Testing {namespace}/{}: {} requests to http://{} from a curl pod",
                echo.service_name, args.requests, echo.service_name
            ));
        }
        let report = test_service(
            &cluster,
            &namespace,
            echo,
            usize::from(args.requests),
            deadline,
            cancel,
            args.json,
        )
        .await?;
        reports.push(report);
    }
    let passed = reports.iter().all(|r| r.passed);
    if args.json {
        print_document(&json!({
            "stack": session.stack.name,
            "namespace": namespace,
            "passed": passed,
            "services": reports,
        }));
    }
    if passed {
        return Ok(());
    }
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| !r.passed)
        .map(|r| {
            let mut shown: Vec<&str> = r.failures.iter().take(3).map(String::as_str).collect();
            let more = r.failures.len().saturating_sub(3);
            let more = format!("and {more} more");
            if r.failures.len() > 3 {
                shown.push(&more);
            }
            format!("{} ({})", r.service, shown.join("; "))
        })
        .collect();
    Err(Error::refused(
        format!("the test failed for {}", failed.join(", ")),
        "check that `echo-iac up` finished and its pods are ready (`echo-iac graph` shows \
         them); `Could not resolve host` means the cluster gives its pods no DNS",
    ))
}

/// What one Service's test found.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceReport {
    pub service: String,
    pub url: String,
    pub pod: String,
    pub requests: usize,
    pub answers: Vec<Answer>,
    /// Answers that name a live pod of the Deployment.
    pub ok: usize,
    /// Answers per pod IP.
    pub pods: BTreeMap<String, usize>,
    pub distinct_pods: usize,
    /// The Deployment's pods with an IP when the test ran.
    pub live_pods: usize,
    pub failures: Vec<String>,
    pub passed: bool,
}

/// One request as curl reported it, judged against the live pods.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub body: String,
    pub http_code: u16,
    /// curl's exit code for this transfer (0: it worked).
    pub curl_exit: i32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// The pod IP the answer names, when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_ip: Option<String>,
    /// The pod that has that IP, when one of the Deployment's does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    pub ok: bool,
}

async fn test_service(
    cluster: &Cluster,
    namespace: &str,
    echo: &EchoConfig,
    requests: usize,
    deadline: Instant,
    cancel: &AtomicBool,
    quiet: bool,
) -> Result<ServiceReport, Error> {
    let service_id = ResourceId::new("v1", "Service", Some(namespace), &echo.service_name);
    if cluster.get(&service_id).await?.is_none() {
        return Err(Error::refused(
            format!("Service {namespace}/{} does not exist", echo.service_name),
            "run `echo-iac up` first; `echo-iac test` tests a stack that is up",
        ));
    }
    clean_up_leftovers(cluster, namespace, &echo.service_name).await;

    let pod = test_pod(namespace, echo, requests);
    let name = pod["metadata"]["name"].as_str().expect("named").to_string();
    let id = ResourceId::new("v1", "Pod", Some(namespace), &name);
    let created = cluster.apply(&pod, false, false).await?;
    let uid = created["metadata"]["uid"].as_str().unwrap_or_default();
    // Whatever happens from here, the Pod goes: a failed wait, an
    // unreadable log, Ctrl-C.
    let outcome = run_pod(cluster, namespace, &name, requests, deadline, cancel).await;
    delete_pod(cluster, &id, uid).await;
    if outcome.as_ref().is_err_and(Error::is_interrupted) {
        note(&format!(
            "Interrupted: test pod {namespace}/{name} was deleted"
        ));
        return Err(Error::Exit(exit::INTERRUPTED));
    }
    let log = outcome?;

    let live = live_pod_ips(cluster, namespace, &echo.app_label).await?;
    let answers = judge(parse_log(&log), &live);
    let mut report = summarize(echo, &name, requests, answers, live.len());
    if report.answers.len() < requests && log.len() + 1024 >= LOG_LIMIT_BYTES {
        // The API gives at most this much of a log: the answers after it
        // ran, but cannot be read.
        report.failures.insert(
            0,
            format!(
                "the test pod's log was cut at {} KiB after {} answers; use fewer --requests",
                LOG_LIMIT_BYTES / 1024,
                report.answers.len()
            ),
        );
    }
    if !quiet {
        print(&report_text(&report));
    }
    Ok(report)
}

/// Deletes the test Pod and waits (briefly) until it is gone, so that a
/// command that returns leaves nothing behind; a Pod that lingers is
/// reported, not an error.
async fn delete_pod(cluster: &Cluster, id: &ResourceId, uid: &str) {
    let gone = async {
        cluster.delete(id, uid).await?;
        let until = Instant::now() + POD_GONE_WAIT;
        while Instant::now() < until {
            match cluster.get(id).await? {
                Some(pod) if pod["metadata"]["uid"] == uid => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                _ => return Ok(true),
            }
        }
        Ok::<_, ClusterError>(false)
    };
    match gone.await {
        Ok(true) => {}
        Ok(false) => note(&format!(
            "warning: test pod {id} was deleted but is still terminating"
        )),
        Err(e) => note(&format!("warning: could not delete test pod {id}: {e}")),
    }
}

/// Deletes Pods an earlier run left (one stopped by a second Ctrl-C, which
/// exits at once). Best effort: without `list` on pods there is nothing to
/// find.
async fn clean_up_leftovers(cluster: &Cluster, namespace: &str, service: &str) {
    let selector = format!("{TEST_LABEL}={service}");
    let Ok(pods) = cluster
        .list("v1", "Pod", Some(namespace), Some(&selector))
        .await
    else {
        return;
    };
    for pod in pods {
        if let (Some(name), Some(uid)) = (
            pod["metadata"]["name"].as_str(),
            pod["metadata"]["uid"].as_str(),
        ) {
            let id = ResourceId::new("v1", "Pod", Some(namespace), name);
            let _ = cluster.delete(&id, uid).await;
        }
    }
}

/// Waits for the Pod to run to completion and returns its log. Fails fast
/// on an image that cannot be pulled, and at the deadline with the Pod's
/// last state.
async fn run_pod(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    requests: usize,
    deadline: Instant,
    cancel: &AtomicBool,
) -> Result<String, Error> {
    let id = ResourceId::new("v1", "Pod", Some(namespace), name);
    // When the Pod was first seen running, and whether its log has shown
    // that it really does.
    let mut running_since: Option<Instant> = None;
    let mut wrote = false;
    loop {
        if cancel.load(Ordering::SeqCst) {
            return Err(EngineError::Interrupted.into());
        }
        let pod = cluster.get(&id).await?.unwrap_or(Value::Null);
        let phase = pod["status"]["phase"].as_str();
        if matches!(phase, Some("Succeeded" | "Failed")) {
            break;
        }
        if let Some(stuck) = stuck_reason(&pod) {
            return Err(Error::refused(
                format!("test pod {namespace}/{name} cannot start: {stuck}"),
                "the curl image cannot be pulled: set `testImage:` in the stack file's echo \
                 section to a curl image the nodes have or can pull",
            ));
        }
        if phase == Some("Running") && !wrote {
            let since = *running_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= NO_OUTPUT_AFTER {
                wrote = cluster
                    .pod_log(namespace, name, CONTAINER, false, 1)
                    .await
                    .is_some();
                if !wrote {
                    return Err(no_output(namespace, name, &pod, since.elapsed()));
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::refused(
                format!(
                    "test pod {namespace}/{name} did not finish in time: {}",
                    pod_state(&pod, phase)
                ),
                "give it longer with `--timeout`, or check where the pod is scheduled \
                 (the echo pods' nodeSelector and tolerations apply to it)",
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Two lines per request at most, plus curl's own error lines.
    let lines = i64::try_from(requests * 4 + 16).unwrap_or(i64::MAX);
    cluster
        .pod_log(namespace, name, CONTAINER, false, lines)
        .await
        .ok_or_else(|| {
            Error::refused(
                format!("the log of test pod {namespace}/{name} could not be read"),
                "these credentials need `get` on `pods/log` in the stack's namespace",
            )
        })
}

/// A Pod that runs but writes nothing: its node reports containers running
/// that never start (a kwok node only pretends to run them), or its log
/// cannot be read.
fn no_output(namespace: &str, name: &str, pod: &Value, running: Duration) -> Error {
    let node = pod["spec"]["nodeName"]
        .as_str()
        .unwrap_or("an unknown node");
    Error::refused(
        format!(
            "test pod {namespace}/{name} has been running for {}s on node {node} and has \
             written no output, though curl writes a line after each request",
            running.as_secs()
        ),
        format!(
            "node {node} may start no containers (a kwok node only reports them running): \
             place the echo pods on a node that runs them with `nodeSelector:` (and \
             `tolerations:`) in the stack file; if it does run them, these credentials need \
             `get` on `pods/log` to read the answers"
        ),
    )
}

fn pod_state(pod: &Value, phase: Option<&str>) -> String {
    let waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"].as_str();
    let unscheduled = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "PodScheduled" && c["status"] == "False")
        .and_then(|c| c["message"].as_str());
    match (phase, waiting, unscheduled) {
        (_, _, Some(message)) => format!("not scheduled: {message}"),
        (_, Some(reason), _) => format!("container waiting: {reason}"),
        (Some(phase), _, _) => match pod["spec"]["nodeName"].as_str() {
            Some(node) => format!("phase {phase} on node {node}"),
            None => format!("phase {phase}"),
        },
        (None, _, _) => "no status yet".into(),
    }
}

/// A reason the curl container will never start without a change.
fn stuck_reason(pod: &Value) -> Option<String> {
    let waiting = &pod["status"]["containerStatuses"][0]["state"]["waiting"];
    let reason = waiting["reason"].as_str()?;
    matches!(
        reason,
        "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull"
    )
    .then(|| format!("{reason}: {}", waiting["message"].as_str().unwrap_or("")))
}

/// The Pod: curl with the Service's short name `requests` times, placed as
/// the echo pods are (so it lands on the nodes that can reach them).
pub fn test_pod(namespace: &str, echo: &EchoConfig, requests: usize) -> Value {
    let suffix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ std::process::id())
        .unwrap_or_default();
    // A Pod name is a DNS subdomain (253), but its hostname a label (63).
    let mut base = format!("{}-test", echo.service_name);
    base.truncate(63 - 6);
    let name = format!("{base}-{:05x}", suffix & 0xfffff);
    let mut spec = json!({
        "restartPolicy": "Never",
        "containers": [{
            "name": CONTAINER,
            "image": echo.test_image,
            "imagePullPolicy": "IfNotPresent",
            "args": curl_args(&format!("http://{}", echo.service_name), requests),
        }],
    });
    if !echo.node_selector.is_empty() {
        spec["nodeSelector"] = json!(echo.node_selector);
    }
    if !echo.tolerations.is_empty() {
        spec["tolerations"] = json!(
            echo.tolerations
                .iter()
                .map(|t| {
                    let mut toleration = serde_json::Map::new();
                    for (key, value) in [
                        ("key", &t.key),
                        ("operator", &t.operator),
                        ("value", &t.value),
                        ("effect", &t.effect),
                    ] {
                        if let Some(value) = value {
                            toleration.insert(key.into(), json!(value));
                        }
                    }
                    Value::Object(toleration)
                })
                .collect::<Vec<_>>()
        );
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {TEST_LABEL: echo.service_name},
        },
        "spec": spec,
    })
}

/// curl's arguments: the URL `requests` times, each on a new connection,
/// each followed by a line `echo-iac-test: <curl exit> <HTTP code> <error>`.
pub fn curl_args(url: &str, requests: usize) -> Vec<String> {
    let mut args: Vec<String> = [
        "--silent",
        "--header",
        "Connection: close",
        "--max-time",
        &REQUEST_TIMEOUT_SECS.to_string(),
        "--write-out",
        &format!("\n{MARKER} %{{exitcode}} %{{http_code}} %{{errormsg}}\n"),
    ]
    .map(str::to_string)
    .to_vec();
    args.extend(std::iter::repeat_n(url.to_string(), requests));
    args
}

/// The answers in curl's output: the body before each marker line, and
/// what the marker says.
pub fn parse_log(log: &str) -> Vec<Answer> {
    let mut answers = Vec::new();
    let mut body: Vec<&str> = Vec::new();
    for line in log.lines() {
        let Some(rest) = line.strip_prefix(MARKER) else {
            body.push(line);
            continue;
        };
        let mut fields = rest.trim().splitn(3, ' ');
        let curl_exit = fields.next().and_then(|f| f.parse().ok()).unwrap_or(-1);
        let http_code = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
        let error = fields.next().unwrap_or("").trim().to_string();
        answers.push(Answer {
            body: body.join("\n").trim().to_string(),
            http_code,
            curl_exit,
            error,
            ..Answer::default()
        });
        body.clear();
    }
    answers
}

/// Marks each answer ok when curl succeeded, the server said 200 and the
/// body ends in `: <IP>` of one of `live` (pod IP → pod name).
pub fn judge(mut answers: Vec<Answer>, live: &BTreeMap<String, String>) -> Vec<Answer> {
    for answer in &mut answers {
        answer.pod_ip = answer
            .body
            .rsplit_once(": ")
            .map(|(_, ip)| ip.trim().to_string())
            .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok());
        answer.pod_name = answer.pod_ip.as_ref().and_then(|ip| live.get(ip)).cloned();
        answer.ok = answer.curl_exit == 0 && answer.http_code == 200 && answer.pod_name.is_some();
    }
    answers
}

pub fn summarize(
    echo: &EchoConfig,
    pod: &str,
    requests: usize,
    answers: Vec<Answer>,
    live_pods: usize,
) -> ServiceReport {
    let mut pods = BTreeMap::new();
    for answer in answers.iter().filter(|a| a.ok) {
        if let Some(ip) = &answer.pod_ip {
            *pods.entry(ip.clone()).or_insert(0) += 1;
        }
    }
    let ok = answers.iter().filter(|a| a.ok).count();
    let mut failures = Vec::new();
    if answers.len() < requests {
        failures.push(format!("only {} of {requests} requests ran", answers.len()));
    }
    for (n, answer) in answers.iter().enumerate().filter(|(_, a)| !a.ok) {
        failures.push(format!("request {}: {}", n + 1, why_not(answer)));
    }
    ServiceReport {
        service: echo.service_name.clone(),
        url: format!("http://{}", echo.service_name),
        pod: pod.to_string(),
        requests,
        ok,
        distinct_pods: pods.len(),
        pods,
        live_pods,
        passed: failures.is_empty() && ok == requests,
        failures,
        answers,
    }
}

fn why_not(answer: &Answer) -> String {
    if answer.curl_exit != 0 {
        format!("curl failed (exit {}): {}", answer.curl_exit, answer.error)
    } else if answer.http_code != 200 {
        format!("HTTP {}", answer.http_code)
    } else if let Some(ip) = &answer.pod_ip {
        format!("{ip} is not the IP of a live pod of the Deployment")
    } else {
        format!("the answer {:?} names no pod IP", answer.body)
    }
}

/// The Deployment's pods by IP, found by the `app` label its selector uses.
async fn live_pod_ips(
    cluster: &Cluster,
    namespace: &str,
    app: &str,
) -> Result<BTreeMap<String, String>, ClusterError> {
    let pods = cluster
        .list("v1", "Pod", Some(namespace), Some(&format!("app={app}")))
        .await?;
    Ok(pod_ips(&pods))
}

/// Pod IP → pod name, for pods that have IPs (every IP of dual-stack pods).
pub fn pod_ips(pods: &[Value]) -> BTreeMap<String, String> {
    let mut ips = BTreeMap::new();
    for pod in pods {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let listed = pod["status"]["podIPs"].as_array().into_iter().flatten();
        for ip in listed
            .filter_map(|p| p["ip"].as_str())
            .chain(pod["status"]["podIP"].as_str())
        {
            ips.insert(ip.to_string(), name.to_string());
        }
    }
    ips
}

pub fn report_text(report: &ServiceReport) -> String {
    let mut text = String::new();
    for (n, answer) in report.answers.iter().enumerate() {
        let mark = if answer.ok { "✓" } else { "✗" };
        let shown = if answer.curl_exit == 0 {
            answer.body.clone()
        } else {
            format!("curl failed (exit {}): {}", answer.curl_exit, answer.error)
        };
        let by = match &answer.pod_name {
            Some(pod) => format!("  ({pod})"),
            None => String::new(),
        };
        text.push_str(&format!("  {mark} {:>3}  {shown}{by}\n", n + 1));
    }
    let spread: Vec<String> = report
        .pods
        .iter()
        .map(|(ip, count)| format!("{ip} ×{count}"))
        .collect();
    text.push_str(&format!(
        "{} {}: {}/{} answers from a live pod; {} distinct pod(s) of {} answered{}\n",
        if report.passed { "✓" } else { "✗" },
        report.service,
        report.ok,
        report.requests,
        report.distinct_pods,
        report.live_pods,
        if spread.is_empty() {
            String::new()
        } else {
            format!(" ({})", spread.join(", "))
        },
    ));
    for failure in &report.failures {
        text.push_str(&format!("    {failure}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::echo::Toleration;

    fn echo() -> EchoConfig {
        crate::program::echo::seed_echo()
    }

    fn live() -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "10.214.0.5".to_string(),
                "nginx-echo-nodeport-a".to_string(),
            ),
            (
                "10.214.0.6".to_string(),
                "nginx-echo-nodeport-b".to_string(),
            ),
        ])
    }

    #[test]
    fn curl_requests_the_short_name_n_times_on_new_connections() {
        let args = curl_args("http://echo-nodeport-service", 3);
        assert_eq!(
            args,
            [
                "--silent",
                "--header",
                "Connection: close",
                "--max-time",
                "5",
                "--write-out",
                "\necho-iac-test: %{exitcode} %{http_code} %{errormsg}\n",
                "http://echo-nodeport-service",
                "http://echo-nodeport-service",
                "http://echo-nodeport-service",
            ]
        );
    }

    #[test]
    fn answers_are_read_between_markers() {
        let log = "Hello! I am Pod: 10.214.0.5\n\necho-iac-test: 0 200 \n\
                   Hello! I am Pod: 10.214.0.6\n\necho-iac-test: 0 200 \n\
                   \necho-iac-test: 6 000 Could not resolve host: echo-nodeport-service\n";
        let answers = parse_log(log);
        assert_eq!(answers.len(), 3, "{answers:#?}");
        assert_eq!(answers[0].body, "Hello! I am Pod: 10.214.0.5");
        assert_eq!((answers[0].curl_exit, answers[0].http_code), (0, 200));
        assert_eq!(answers[2].body, "");
        assert_eq!((answers[2].curl_exit, answers[2].http_code), (6, 0));
        assert_eq!(
            answers[2].error,
            "Could not resolve host: echo-nodeport-service"
        );
    }

    #[test]
    fn an_answer_passes_only_when_it_names_a_live_pod() {
        let log = "Hello! I am Pod: 10.214.0.5\n\necho-iac-test: 0 200 \n\
                   Hello! I am Pod: 10.214.0.9\n\necho-iac-test: 0 200 \n\
                   Welcome to nginx\n\necho-iac-test: 0 200 \n\
                   Hello! I am Pod: 10.214.0.6\n\necho-iac-test: 0 503 \n\
                   \necho-iac-test: 28 000 Operation timed out after 5001 milliseconds\n";
        let answers = judge(parse_log(log), &live());
        let ok: Vec<bool> = answers.iter().map(|a| a.ok).collect();
        assert_eq!(ok, [true, false, false, false, false]);
        assert_eq!(
            answers[0].pod_name.as_deref(),
            Some("nginx-echo-nodeport-a")
        );
        assert_eq!(answers[1].pod_ip.as_deref(), Some("10.214.0.9"));
        assert_eq!(answers[1].pod_name, None);

        let report = summarize(&echo(), "t", 6, answers, 2);
        assert!(!report.passed);
        assert_eq!(
            report.failures,
            [
                "only 5 of 6 requests ran",
                "request 2: 10.214.0.9 is not the IP of a live pod of the Deployment",
                "request 3: the answer \"Welcome to nginx\" names no pod IP",
                "request 4: HTTP 503",
                "request 5: curl failed (exit 28): Operation timed out after 5001 milliseconds",
            ]
        );
    }

    #[test]
    fn a_passing_run_counts_distinct_pods() {
        let log = "Hello! I am Pod: 10.214.0.5\n\necho-iac-test: 0 200 \n\
                   Hello! I am Pod: 10.214.0.6\n\necho-iac-test: 0 200 \n\
                   Hello! I am Pod: 10.214.0.5\n\necho-iac-test: 0 200 \n";
        let report = summarize(&echo(), "t", 3, judge(parse_log(log), &live()), 2);
        assert!(report.passed, "{report:#?}");
        assert_eq!(report.ok, 3);
        assert_eq!(report.distinct_pods, 2);
        assert_eq!(
            report.pods,
            BTreeMap::from([("10.214.0.5".into(), 2), ("10.214.0.6".into(), 1)])
        );
        insta::assert_snapshot!(report_text(&report), @r"
          ✓   1  Hello! I am Pod: 10.214.0.5  (nginx-echo-nodeport-a)
          ✓   2  Hello! I am Pod: 10.214.0.6  (nginx-echo-nodeport-b)
          ✓   3  Hello! I am Pod: 10.214.0.5  (nginx-echo-nodeport-a)
        ✓ echo-nodeport-service: 3/3 answers from a live pod; 2 distinct pod(s) of 2 answered (10.214.0.5 ×2, 10.214.0.6 ×1)
        ");
    }

    #[test]
    fn pod_ips_take_every_ip_of_each_pod() {
        let pods = vec![
            json!({"metadata": {"name": "a"}, "status": {"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}}),
            json!({"metadata": {"name": "b"}, "status": {}}),
        ];
        assert_eq!(
            pod_ips(&pods),
            BTreeMap::from([
                ("10.0.0.1".into(), "a".into()),
                ("fd00::1".into(), "a".into())
            ])
        );
    }

    #[test]
    fn the_test_pod_is_placed_as_the_echo_pods_are() {
        let mut echo = echo();
        echo.node_selector = BTreeMap::from([("echo-iac.io/node".into(), "real".into())]);
        echo.tolerations = vec![Toleration {
            key: Some("echo-iac.io/node".into()),
            operator: Some("Equal".into()),
            value: Some("real".into()),
            effect: Some("NoSchedule".into()),
        }];
        let pod = test_pod("echo-dev", &echo, 2);
        let name = pod["metadata"]["name"].as_str().unwrap();
        assert!(
            name.starts_with("echo-nodeport-service-test-") && name.len() <= 63,
            "{name}"
        );
        assert_eq!(
            pod["metadata"]["labels"],
            json!({TEST_LABEL: "echo-nodeport-service"})
        );
        assert_eq!(pod["metadata"]["namespace"], "echo-dev");
        assert_eq!(
            pod["spec"]["nodeSelector"],
            json!({"echo-iac.io/node": "real"})
        );
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([{"key": "echo-iac.io/node", "operator": "Equal", "value": "real", "effect": "NoSchedule"}])
        );
        assert_eq!(pod["spec"]["restartPolicy"], "Never");
        assert_eq!(pod["spec"]["containers"][0]["image"], echo.test_image);
    }
}
