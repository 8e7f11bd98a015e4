//! How long a request waits for a server that does not answer: briefly
//! before it has ever answered in this run, up to the outage budget once
//! it has (a restart in the middle of a run).

use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::cluster::{ClusterError, FIRST_CONTACT_BUDGET, Notice, Notices, Transport};

fn some_config_map() -> ResourceId {
    ResourceId::new("v1", "ConfigMap", Some("default"), "c")
}

#[tokio::test(start_paused = true)]
async fn a_server_never_reached_is_given_up_within_the_first_contact_budget() {
    let fake = FakeApi::new();
    fake.inject(Fault::on(Verb::Get).answer(Answer::Drop).always());
    let cluster = fake
        .cluster(identity())
        .with_outage_budget(Duration::from_secs(300));
    let start = Instant::now();
    let err = cluster.get(&some_config_map()).await.unwrap_err();
    assert!(
        start.elapsed() <= FIRST_CONTACT_BUDGET,
        "{:?}",
        start.elapsed()
    );
    assert!(
        matches!(
            &err,
            ClusterError::Unreachable {
                cause: Transport::Closed,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("closed the connection"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn once_answered_an_outage_is_ridden_out_for_the_outage_budget() {
    let fake = FakeApi::new();
    let told = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let cluster = fake
        .cluster(identity())
        .with_outage_budget(Duration::from_secs(300))
        .with_notices(Notices::to({
            let told = told.clone();
            move |notice| told.lock().unwrap().push(notice.clone())
        }));
    let id = some_config_map();
    assert_eq!(cluster.get(&id).await.unwrap(), None);
    // Ten dropped tries take about half a minute of backoff.
    fake.inject(Fault::on(Verb::Get).answer(Answer::Drop).times(10));
    let start = Instant::now();
    assert_eq!(cluster.get(&id).await.unwrap(), None);
    assert!(
        start.elapsed() > Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    // Told once when the wait starts and once when it ends, not per try;
    // and through the notices, never written by the engine itself.
    let told = told.lock().unwrap();
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(
        matches!(&told[0], Notice::WaitingForServer { retrying_for, .. }
            if *retrying_for > Duration::from_secs(200)),
        "{told:?}"
    );
    assert!(
        matches!(&told[1], Notice::ServerAnswersAgain { .. }),
        "{told:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn without_an_outage_budget_an_answered_server_is_retried_for_20_s() {
    let fake = FakeApi::new();
    let cluster = fake.cluster(identity());
    let id = some_config_map();
    assert_eq!(cluster.get(&id).await.unwrap(), None);
    fake.inject(Fault::on(Verb::Get).answer(Answer::Drop).always());
    let start = Instant::now();
    let err = cluster.get(&id).await.unwrap_err();
    let took = start.elapsed();
    assert!(
        took > Duration::from_secs(10) && took <= Duration::from_secs(20),
        "{took:?}"
    );
    assert!(matches!(err, ClusterError::Unreachable { .. }), "{err}");
}
