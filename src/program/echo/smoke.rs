//! echo's smoke test, which the runner's `test` runs: the seed's own check.
//! A curl pod placed as the echo pods are (their node selector and
//! tolerations, so it lands where they can be reached) requests each echo
//! Service by its short name, and every answer must name a live pod of the
//! Service's Deployment (nginx answers `<message>: <pod IP>`).

use echo_iac_runner::{Expect, SmokeTest, TestPod};

use super::config::EchoConfig;
use super::objects::toleration;

/// The smoke test of one echo service.
pub(super) fn smoke_test(echo: &EchoConfig) -> SmokeTest {
    SmokeTest::http(&echo.service_name)
        .expect(Expect::AnswerNamesLivePod)
        .pod(TestPod {
            image: echo.test_image.clone(),
            image_setting: Some("`testImage:` in the stack file's echo section".into()),
            node_selector: echo.node_selector.clone(),
            tolerations: echo.tolerations.iter().map(toleration).collect(),
        })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::program::echo::config::Toleration;

    #[test]
    fn the_test_pod_is_placed_as_the_echo_pods_are() {
        let mut echo = crate::program::echo::seed_echo();
        echo.node_selector = BTreeMap::from([("echo-iac.io/node".into(), "real".into())]);
        echo.tolerations = vec![Toleration {
            key: Some("echo-iac.io/node".into()),
            operator: Some("Equal".into()),
            value: Some("real".into()),
            effect: Some("NoSchedule".into()),
        }];
        let test = smoke_test(&echo);
        assert_eq!(test.url(), "http://echo-nodeport-service");
        assert_eq!(test.expectation(), &Expect::AnswerNamesLivePod);
        let pod = test.test_pod();
        assert_eq!(pod.image, echo.test_image);
        assert_eq!(pod.node_selector, echo.node_selector);
        assert_eq!(
            serde_json::to_value(&pod.tolerations).unwrap(),
            serde_json::json!([{"key": "echo-iac.io/node", "operator": "Equal", "value": "real", "effect": "NoSchedule"}])
        );
        assert!(pod.image_setting.as_deref().unwrap().contains("testImage"));
    }
}
