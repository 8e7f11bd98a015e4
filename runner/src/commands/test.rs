//! `test`: the program's smoke tests, run from inside the cluster as `helm
//! test` runs a chart's. Per smoke test a curl Pod in the stack's namespace
//! requests a Service by its short name through cluster DNS, and every
//! answer must be what the test expects (for echo: an answer that names a
//! live pod of the Service's Deployment).
//!
//! The curl image has no shell, so the Pod runs one curl with the same URL
//! N times and a write-out line after each transfer; it runs to completion
//! and its log is read through the API, so nothing needs `exec`. Each
//! request closes its connection, so kube-proxy picks a backend per
//! request rather than once.

use std::collections::BTreeMap;

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use super::Session;
use super::labels;
use crate::cli::TestArgs;
use crate::error::{Error, exit};
use crate::program::Program;
use crate::smoke::{Expect, SmokeTest};
use crate::{note, print, print_document, watch_interrupts};
use echo_iac_engine::cluster::{Cluster, ClusterError};
use echo_iac_engine::{Cancel, DesiredResource, EngineError, ResourceId};

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

/// The label that marks the Pods `test` starts, with the Service they test
/// as value, so that a Pod left by a run stopped at once is found and
/// deleted: `<program>.io/test-of`.
pub(crate) fn test_label<P: Program>() -> String {
    crate::program::identity::<P>().key("test-of")
}

pub(crate) async fn run<P: Program>(session: &Session<P>, args: TestArgs) -> Result<(), Error> {
    let tests = session
        .program()
        .smoke_tests(&session.info(), &session.stack.program);
    let namespace = session.stack.namespace.clone();
    if tests.is_empty() {
        let said = format!(
            "{} declares no smoke tests: nothing to test in stack {}",
            P::NAME,
            session.stack.name
        );
        if args.json {
            note(&said);
            print_document(&report_json(&session.stack.name, &namespace, &[]));
        } else {
            print(&said);
        }
        return Ok(());
    }
    let desired = session.desired().await?;
    let cluster = session.connect().await?;
    let cancel = watch_interrupts();
    let deadline = Instant::now() + args.timeout;
    let label = test_label::<P>();
    let mut reports = Vec::new();
    for test in &tests {
        if !args.json {
            print(&format!(
                "Testing {namespace}/{}: {} requests to {} from a curl pod",
                test.service(),
                args.requests,
                test.url()
            ));
        }
        let run = Run {
            cluster: &cluster,
            namespace: &namespace,
            label: &label,
            requests: usize::from(args.requests),
            deadline,
            cancel: cancel.clone(),
        };
        let report = run.test(test, &desired, args.json).await?;
        reports.push(report);
    }
    let passed = reports.iter().all(|r| r.passed);
    if args.json {
        print_document(&report_json(&session.stack.name, &namespace, &reports));
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
    let bin = crate::name::bin();
    Err(Error::refused(
        format!("the test failed for {}", failed.join(", ")),
        format!(
            "check that `{bin} up` finished and its pods are ready (`{bin} graph` shows \
             them); `Could not resolve host` means the cluster gives its pods no DNS"
        ),
    ))
}

fn report_json(stack: &str, namespace: &str, reports: &[ServiceReport]) -> Value {
    json!({
        "stack": stack,
        "namespace": namespace,
        "passed": reports.iter().all(|r| r.passed),
        "services": reports,
    })
}

/// What one smoke test found.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServiceReport {
    pub service: String,
    pub url: String,
    pub pod: String,
    pub requests: usize,
    pub answers: Vec<Answer>,
    /// Answers that are as the test expects.
    pub ok: usize,
    /// Answers per pod IP, when the test expects answers to name a pod.
    pub pods: BTreeMap<String, usize>,
    pub distinct_pods: usize,
    /// The pods the Service selects that had an IP when the test ran.
    pub live_pods: usize,
    pub failures: Vec<String>,
    pub passed: bool,
    /// What the answers were judged by, for the summary line.
    #[serde(skip)]
    pub expect: Expect,
}

/// One request as curl reported it, judged against the expectation.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Answer {
    pub body: String,
    pub http_code: u16,
    /// curl's exit code for this transfer (0: it worked).
    pub curl_exit: i32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// The pod IP the answer names, when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_ip: Option<String>,
    /// The pod that has that IP, when one the Service selects does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    pub ok: bool,
}

/// What every smoke test of one run shares.
struct Run<'a> {
    cluster: &'a Cluster,
    namespace: &'a str,
    label: &'a str,
    requests: usize,
    deadline: Instant,
    cancel: Cancel,
}

impl Run<'_> {
    async fn test(
        &self,
        test: &SmokeTest,
        desired: &[DesiredResource],
        quiet: bool,
    ) -> Result<ServiceReport, Error> {
        let (cluster, namespace) = (self.cluster, self.namespace);
        let service_id = ResourceId::new("v1", "Service", Some(namespace), test.service());
        let Some(service) = cluster.get(&service_id).await? else {
            let bin = crate::name::bin();
            return Err(Error::refused(
                format!("Service {namespace}/{} does not exist", test.service()),
                format!("run `{bin} up` first; `{bin} test` tests a stack that is up"),
            ));
        };
        clean_up_leftovers(cluster, namespace, self.label, test.service()).await;

        let pod = test_pod(namespace, self.label, test, self.requests);
        let name = pod["metadata"]["name"].as_str().expect("named").to_string();
        let id = ResourceId::new("v1", "Pod", Some(namespace), &name);
        let created = cluster.apply(&pod, false, false).await?;
        let uid = created["metadata"]["uid"].as_str().unwrap_or_default();
        // Whatever happens from here, the Pod goes: a failed wait, an
        // unreadable log, Ctrl-C.
        let outcome = self.run_pod(&name, test).await;
        delete_pod(cluster, &id, uid).await;
        if outcome.as_ref().is_err_and(Error::is_interrupted) {
            note(&format!(
                "Interrupted: test pod {namespace}/{name} was deleted"
            ));
            return Err(Error::Exit(exit::INTERRUPTED));
        }
        let log = outcome?;

        let live = live_pod_ips(cluster, namespace, &service).await?;
        let owner = owner_of(&service, desired);
        let answers = judge(parse_log(&log), test.expectation(), &live);
        let mut report = summarize(test, &owner, &name, self.requests, answers, live.len());
        if report.answers.len() < self.requests && log.len() + 1024 >= LOG_LIMIT_BYTES {
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

    /// Waits for the Pod to run to completion and returns its log. Fails
    /// fast on an image that cannot be pulled, and at the deadline with the
    /// Pod's last state.
    async fn run_pod(&self, name: &str, test: &SmokeTest) -> Result<String, Error> {
        let namespace = self.namespace;
        let id = ResourceId::new("v1", "Pod", Some(namespace), name);
        // When the Pod was first seen running, and whether its log has shown
        // that it really does.
        let mut running_since: Option<Instant> = None;
        let mut wrote = false;
        loop {
            if self.cancel.is_cancelled() {
                return Err(EngineError::Interrupted.into());
            }
            let pod = self.cluster.get(&id).await?.unwrap_or(Value::Null);
            let phase = pod["status"]["phase"].as_str();
            if matches!(phase, Some("Succeeded" | "Failed")) {
                break;
            }
            if let Some(stuck) = stuck_reason(&pod) {
                let hint = match &test.test_pod().image_setting {
                    Some(setting) => format!(
                        "the curl image cannot be pulled: set {setting} to a curl image \
                         the nodes have or can pull"
                    ),
                    None => "the curl image cannot be pulled: the program's smoke test must \
                             name a curl image the nodes have or can pull"
                        .to_string(),
                };
                return Err(Error::refused(
                    format!("test pod {namespace}/{name} cannot start: {stuck}"),
                    hint,
                ));
            }
            if phase == Some("Running") && !wrote {
                let since = *running_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= NO_OUTPUT_AFTER {
                    wrote = self
                        .cluster
                        .pod_log(namespace, name, CONTAINER, false, 1)
                        .await
                        .is_some();
                    if !wrote {
                        return Err(no_output(namespace, name, &pod, since.elapsed()));
                    }
                }
            }
            if Instant::now() >= self.deadline {
                return Err(Error::refused(
                    format!(
                        "test pod {namespace}/{name} did not finish in time: {}",
                        pod_state(&pod, phase)
                    ),
                    "give it longer with `--timeout`, or check where the pod is scheduled \
                     (the smoke test's nodeSelector and tolerations apply to it)",
                ));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // Two lines per request at most, plus curl's own error lines.
        let lines = i64::try_from(self.requests * 4 + 16).unwrap_or(i64::MAX);
        self.cluster
            .pod_log(namespace, name, CONTAINER, false, lines)
            .await
            .ok_or_else(|| {
                Error::refused(
                    format!("the log of test pod {namespace}/{name} could not be read"),
                    "these credentials need `get` on `pods/log` in the stack's namespace",
                )
            })
    }
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
async fn clean_up_leftovers(cluster: &Cluster, namespace: &str, label: &str, service: &str) {
    let selector = format!("{label}={service}");
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
             place the stack's pods on a node that runs them (the smoke test's nodeSelector \
             and tolerations apply to its pod too); if it does run them, these credentials \
             need `get` on `pods/log` to read the answers"
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
/// the smoke test says (so it lands on the nodes that can reach the pods).
pub(crate) fn test_pod(namespace: &str, label: &str, test: &SmokeTest, requests: usize) -> Value {
    let suffix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ std::process::id())
        .unwrap_or_default();
    // A Pod name is a DNS subdomain (253), but its hostname a label (63).
    let mut base = format!("{}-test", test.service());
    base.truncate(63 - 6);
    let name = format!("{base}-{:05x}", suffix & 0xfffff);
    let placement = test.test_pod();
    let mut spec = json!({
        "restartPolicy": "Never",
        "containers": [{
            "name": CONTAINER,
            "image": placement.image,
            "imagePullPolicy": "IfNotPresent",
            "args": curl_args(&test.url(), requests),
        }],
    });
    if !placement.node_selector.is_empty() {
        spec["nodeSelector"] = json!(placement.node_selector);
    }
    if !placement.tolerations.is_empty() {
        spec["tolerations"] = json!(placement.tolerations);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {label: test.service()},
        },
        "spec": spec,
    })
}

/// curl's arguments: the URL `requests` times, each on a new connection,
/// each followed by a line `echo-iac-test: <curl exit> <HTTP code> <error>`.
pub(crate) fn curl_args(url: &str, requests: usize) -> Vec<String> {
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
pub(crate) fn parse_log(log: &str) -> Vec<Answer> {
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

/// The IP an answer names: what follows its last `: ` (`Hello! I am Pod:
/// 10.0.0.5`), else its first word that is an IP.
fn named_ip(body: &str) -> Option<String> {
    let is_ip = |text: &str| text.parse::<std::net::IpAddr>().is_ok();
    body.rsplit_once(": ")
        .map(|(_, ip)| ip.trim())
        .filter(|ip| is_ip(ip))
        .or_else(|| body.split_whitespace().find(|word| is_ip(word)))
        .map(str::to_string)
}

/// Marks each answer ok when curl succeeded and the answer is as `expect`
/// says; `live` (pod IP → pod name) are the pods the Service selects.
pub(crate) fn judge(
    mut answers: Vec<Answer>,
    expect: &Expect,
    live: &BTreeMap<String, String>,
) -> Vec<Answer> {
    for answer in &mut answers {
        let worked = answer.curl_exit == 0;
        answer.ok = match expect {
            Expect::AnswerNamesLivePod => {
                answer.pod_ip = named_ip(&answer.body);
                answer.pod_name = answer.pod_ip.as_ref().and_then(|ip| live.get(ip)).cloned();
                worked && answer.http_code == 200 && answer.pod_name.is_some()
            }
            Expect::Status(code) => worked && answer.http_code == *code,
            Expect::BodyContains(text) => {
                worked && answer.http_code == 200 && answer.body.contains(text.as_str())
            }
        };
    }
    answers
}

/// One smoke test's report. `owner` names the pods' workload kind in
/// failures ("a live pod of the Deployment").
pub(crate) fn summarize(
    test: &SmokeTest,
    owner: &str,
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
        failures.push(format!(
            "request {}: {}",
            n + 1,
            why_not(answer, test.expectation(), owner)
        ));
    }
    ServiceReport {
        service: test.service().to_string(),
        url: test.url(),
        pod: pod.to_string(),
        requests,
        ok,
        distinct_pods: pods.len(),
        pods,
        live_pods,
        passed: failures.is_empty() && ok == requests,
        failures,
        answers,
        expect: test.expectation().clone(),
    }
}

fn why_not(answer: &Answer, expect: &Expect, owner: &str) -> String {
    if answer.curl_exit != 0 {
        return format!("curl failed (exit {}): {}", answer.curl_exit, answer.error);
    }
    match expect {
        Expect::Status(code) => format!("HTTP {}, expected {code}", answer.http_code),
        _ if answer.http_code != 200 => format!("HTTP {}", answer.http_code),
        Expect::BodyContains(text) => {
            format!("the answer {:?} does not contain {text:?}", answer.body)
        }
        Expect::AnswerNamesLivePod => match &answer.pod_ip {
            Some(ip) => format!("{ip} is not the IP of a live pod of the {owner}"),
            None => format!("the answer {:?} names no pod IP", answer.body),
        },
    }
}

/// What owns the pods `service` selects, as failures name it: the kind of
/// the declared workload whose pod template it selects, else the Service.
fn owner_of(service: &Value, desired: &[DesiredResource]) -> String {
    let Some(selector) = labels::selector_of(service) else {
        return "Service".into();
    };
    desired
        .iter()
        .filter(|d| labels::is_workload(&d.id.kind))
        .find(|d| labels::template_labels(&d.object).is_some_and(|l| labels::matches(&selector, l)))
        .map_or_else(|| "Service".into(), |d| d.id.kind.clone())
}

/// The pods the Service selects, by IP.
async fn live_pod_ips(
    cluster: &Cluster,
    namespace: &str,
    service: &Value,
) -> Result<BTreeMap<String, String>, ClusterError> {
    let Some(query) = labels::selector_of(service).and_then(|s| labels::query(&s)) else {
        return Ok(BTreeMap::new());
    };
    let pods = cluster
        .list("v1", "Pod", Some(namespace), Some(&query))
        .await?;
    Ok(pod_ips(&pods))
}

/// Pod IP → pod name, for pods that have IPs (every IP of dual-stack pods).
pub(crate) fn pod_ips(pods: &[Value]) -> BTreeMap<String, String> {
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

pub(crate) fn report_text(report: &ServiceReport) -> String {
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
    let mark = if report.passed { "✓" } else { "✗" };
    if report.expect == Expect::AnswerNamesLivePod {
        let spread: Vec<String> = report
            .pods
            .iter()
            .map(|(ip, count)| format!("{ip} ×{count}"))
            .collect();
        text.push_str(&format!(
            "{mark} {}: {}/{} answers from a live pod; {} distinct pod(s) of {} answered{}\n",
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
    } else {
        text.push_str(&format!(
            "{mark} {}: {}/{} answers as expected\n",
            report.service, report.ok, report.requests
        ));
    }
    for failure in &report.failures {
        text.push_str(&format!("    {failure}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Toleration;

    use super::*;
    use crate::smoke::TestPod;

    const LABEL: &str = "echo-iac.io/test-of";

    /// The echo program's smoke test of the seed's Service.
    fn echo() -> SmokeTest {
        SmokeTest::http("echo-nodeport-service").expect(Expect::AnswerNamesLivePod)
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
        let answers = judge(parse_log(log), &Expect::AnswerNamesLivePod, &live());
        let ok: Vec<bool> = answers.iter().map(|a| a.ok).collect();
        assert_eq!(ok, [true, false, false, false, false]);
        assert_eq!(
            answers[0].pod_name.as_deref(),
            Some("nginx-echo-nodeport-a")
        );
        assert_eq!(answers[1].pod_ip.as_deref(), Some("10.214.0.9"));
        assert_eq!(answers[1].pod_name, None);

        let report = summarize(&echo(), "Deployment", "t", 6, answers, 2);
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
        let answers = judge(parse_log(log), &Expect::AnswerNamesLivePod, &live());
        let report = summarize(&echo(), "Deployment", "t", 3, answers, 2);
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
    fn the_test_pod_is_placed_as_the_smoke_test_says() {
        let placement = TestPod {
            image: "localhost/echo-iac/curl:1".into(),
            image_setting: None,
            node_selector: BTreeMap::from([("echo-iac.io/node".into(), "real".into())]),
            tolerations: vec![Toleration {
                key: Some("echo-iac.io/node".into()),
                operator: Some("Equal".into()),
                value: Some("real".into()),
                effect: Some("NoSchedule".into()),
                ..Toleration::default()
            }],
        };
        let test = echo().pod(placement);
        let pod = test_pod("echo-dev", LABEL, &test, 2);
        let name = pod["metadata"]["name"].as_str().unwrap();
        assert!(
            name.starts_with("echo-nodeport-service-test-") && name.len() <= 63,
            "{name}"
        );
        assert_eq!(
            pod["metadata"]["labels"],
            json!({LABEL: "echo-nodeport-service"})
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
        assert_eq!(
            pod["spec"]["containers"][0]["image"],
            "localhost/echo-iac/curl:1"
        );
        assert_eq!(
            pod["spec"]["containers"][0]["args"][7],
            "http://echo-nodeport-service"
        );
    }

    #[test]
    fn other_expectations_judge_the_status_or_the_body() {
        let log = "ok\n\necho-iac-test: 0 204 \n\
                   ready: yes\n\necho-iac-test: 0 200 \n";
        let none = BTreeMap::new();
        let status = judge(parse_log(log), &Expect::Status(204), &none);
        assert_eq!(
            status.iter().map(|a| a.ok).collect::<Vec<_>>(),
            [true, false]
        );
        let body = judge(parse_log(log), &Expect::BodyContains("ready".into()), &none);
        assert_eq!(body.iter().map(|a| a.ok).collect::<Vec<_>>(), [false, true]);

        let test = SmokeTest::http("quorum").expect(Expect::Status(204));
        let report = summarize(&test, "StatefulSet", "t", 2, status, 0);
        assert_eq!(report.failures, ["request 2: HTTP 200, expected 204"]);
        assert!(
            report_text(&report).contains("✗ quorum: 1/2 answers as expected"),
            "{}",
            report_text(&report)
        );
    }

    /// A program with settings but no smoke tests.
    struct Untested;

    #[derive(Default, serde::Deserialize)]
    struct Settings {}

    impl crate::SectionConfig for Settings {
        const KEY: &'static str = "untested";
    }

    impl Program for Untested {
        // The runner's name for the process stays the tool's, which other
        // tests' messages expect.
        const NAME: &'static str = "echo-iac";
        const ABOUT: &'static str = "a program with nothing to test";
        type Config = crate::Section<Settings>;
        type Command = crate::NoCommands;

        fn declare(
            &self,
            stack: &crate::StackInfo,
            _: &Settings,
        ) -> Result<crate::Resources, Error> {
            Ok(stack.resources())
        }
    }

    #[test]
    fn a_program_without_smoke_tests_passes_without_contacting_the_cluster() {
        let project = tempfile::tempdir().unwrap();
        std::fs::create_dir(project.path().join("stacks")).unwrap();
        // A kubeconfig that does not exist: connecting would fail the run.
        std::fs::write(
            project.path().join("stacks/dev.yaml"),
            format!(
                "kubeconfig: {}/nowhere\nnamespace: untested\n",
                project.path().display()
            ),
        )
        .unwrap();
        let dir = project.path().to_str().unwrap();
        for args in [&["test"][..], &["test", "--json"]] {
            let code =
                crate::Runner::new(Untested).run_from(["echo-iac", "-C", dir].iter().chain(args));
            assert_eq!(code, std::process::ExitCode::SUCCESS, "{args:?}");
        }
        assert!(
            Untested
                .smoke_tests(
                    &crate::StackInfo::new(
                        "dev",
                        "untested",
                        false,
                        echo_iac_engine::Identity::new("x")
                    ),
                    &Settings {}
                )
                .is_empty()
        );
    }

    #[test]
    fn an_answer_names_the_ip_after_its_last_colon_or_as_a_word() {
        assert_eq!(
            named_ip("Hello! I am Pod: 10.0.0.5").as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(
            named_ip("served by 10.0.0.7 today").as_deref(),
            Some("10.0.0.7")
        );
        assert_eq!(named_ip("Welcome to nginx"), None);
    }
}
