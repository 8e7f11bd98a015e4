//! What a program declares for `test`: smoke tests, each a number of HTTP
//! requests from a curl Pod in the stack's namespace to one of the stack's
//! Services by its DNS name, with what every answer must be.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Toleration;

/// The curl image a smoke test runs unless the program names another: any
/// image whose entrypoint is curl 7.75 or newer will do.
pub const DEFAULT_TEST_IMAGE: &str = "curlimages/curl:8.11.1";

/// One smoke test: `requests` GETs of `http://<service>[:port]<path>` from a
/// curl Pod, each on a new connection so that the Service picks a backend
/// per request, each answer judged by an [`Expect`].
///
/// ```
/// use echo_iac_runner::{Expect, SmokeTest};
///
/// let test = SmokeTest::http("web").path("/healthz").expect(Expect::Status(204));
/// assert_eq!(test.url(), "http://web/healthz");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SmokeTest {
    service: String,
    port: Option<u16>,
    path: String,
    expect: Expect,
    pod: TestPod,
}

/// What every answer of a smoke test must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// HTTP 200, and the body names (ends in `: <IP>`, or holds as a word)
    /// the IP of a live pod the Service selects: proof that the answer came
    /// through the Service from one of the stack's own pods.
    AnswerNamesLivePod,
    /// This HTTP status.
    Status(u16),
    /// HTTP 200 and a body that contains this text.
    BodyContains(String),
}

/// Where the curl Pod runs and what it runs: it lands where the pods it
/// tests can be reached from.
#[derive(Clone, Debug, PartialEq)]
pub struct TestPod {
    /// The image, with curl as its entrypoint (the Pod passes curl's
    /// arguments only; it has no shell).
    pub image: String,
    /// Where a user sets the image, for the hint when it cannot be pulled
    /// (e.g. "`testImage:` in the stack file's echo section").
    pub image_setting: Option<String>,
    /// Node labels the Pod must match (`spec.nodeSelector`).
    pub node_selector: BTreeMap<String, String>,
    /// Taints the Pod tolerates (`spec.tolerations`).
    pub tolerations: Vec<Toleration>,
}

impl Default for TestPod {
    fn default() -> Self {
        TestPod {
            image: DEFAULT_TEST_IMAGE.to_string(),
            image_setting: None,
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
        }
    }
}

impl SmokeTest {
    /// Requests to the Service `service` of the stack's namespace, on port
    /// 80 at `/`, each expected to answer HTTP 200.
    pub fn http(service: &str) -> Self {
        SmokeTest {
            service: service.to_string(),
            port: None,
            path: String::new(),
            expect: Expect::Status(200),
            pod: TestPod::default(),
        }
    }

    /// The Service's port, when it is not 80.
    pub fn port(mut self, port: u16) -> Self {
        self.port = (port != 80).then_some(port);
        self
    }

    /// The path requested (`/healthz`); default `/`.
    pub fn path(mut self, path: &str) -> Self {
        self.path = if path.is_empty() || path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        self
    }

    /// What every answer must be.
    pub fn expect(mut self, expect: Expect) -> Self {
        self.expect = expect;
        self
    }

    /// Where the curl Pod runs and what it runs.
    pub fn pod(mut self, pod: TestPod) -> Self {
        self.pod = pod;
        self
    }

    /// The Service requested, in the stack's namespace.
    pub(crate) fn service(&self) -> &str {
        &self.service
    }

    /// The URL curl requests: the Service's short name, found through
    /// cluster DNS from the stack's namespace.
    pub fn url(&self) -> String {
        match self.port {
            Some(port) => format!("http://{}:{port}{}", self.service, self.path),
            None => format!("http://{}{}", self.service, self.path),
        }
    }

    /// What every answer must be.
    pub fn expectation(&self) -> &Expect {
        &self.expect
    }

    /// The curl Pod's image and placement.
    pub fn test_pod(&self) -> &TestPod {
        &self.pod
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_has_the_port_only_when_it_is_not_80() {
        assert_eq!(SmokeTest::http("web").url(), "http://web");
        assert_eq!(SmokeTest::http("web").port(80).url(), "http://web");
        assert_eq!(
            SmokeTest::http("web").port(8080).path("ready").url(),
            "http://web:8080/ready"
        );
    }
}
