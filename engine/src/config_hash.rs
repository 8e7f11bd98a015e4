//! The config hash that rolls a workload's pods when what they read
//! changes. Kubernetes restarts no pod when a ConfigMap or Secret it mounts
//! or reads its environment from changes: mounted files change in place
//! (late, and never under a `subPath`), environment variables not at all,
//! and a process that read them at start keeps the old values. A Deployment, StatefulSet
//! or DaemonSet does roll its pods when its pod template changes, so a hash
//! of that configuration in a template annotation turns a config change
//! into an ordinary, in-place rollout.
//!
//! Only objects declared in the same [`Resources`](crate::declare::Resources)
//! count: the content of any other is unknown here.
//!
//! A ConfigMap's part is SHA-256 of its `data` as JSON (then of its
//! `binaryData`, when it has one); a workload that reads one ConfigMap
//! and nothing else carries the first 8 bytes of it in hex, the hash
//! programs commonly wrote themselves, so that a program which did can
//! leave it to the engine without rolling its live pods. A Secret's part
//! must not give its values away to whoever can read the workload: a plain
//! hash of a short password is checked against guesses a billion times a
//! second. It is [`sensitive::stable_digest`]: Argon2id at the cost of the
//! state's seals, salted by the stack, namespace and name, so a guess costs
//! what it costs against the state and the annotation still stays put
//! while the values do. Several parts are hashed together in the order of
//! their objects' ids.

use std::collections::HashMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::identity::Identity;
use crate::references::{Declared, mounted_config};
use crate::resource::{DesiredResource, ResourceId};
use crate::sensitive;

/// Sets the config hash annotation on the pod template of each workload in
/// `resources` that reads declared ConfigMaps or Secrets.
pub(crate) fn annotate(resources: &mut [DesiredResource], identity: &Identity, stack: &str) {
    let ids: Vec<ResourceId> = resources.iter().map(|r| r.id.clone()).collect();
    let index = Declared::new(&ids);
    let by_id: HashMap<&ResourceId, &Value> =
        resources.iter().map(|r| (&r.id, &r.object)).collect();
    let mut parts: HashMap<ResourceId, [u8; 32]> = HashMap::new();
    let mut hashes: Vec<(usize, String)> = Vec::new();
    for (at, resource) in resources.iter().enumerate() {
        let mut read = mounted_config(&resource.object, &index);
        if read.is_empty() {
            continue;
        }
        read.sort_by_key(ResourceId::to_string);
        let digests: Vec<(&ResourceId, [u8; 32])> = read
            .iter()
            .map(|id| {
                // A Secret read by several workloads costs one Argon2id run.
                let digest = *parts
                    .entry(id.clone())
                    .or_insert_with(|| part(id, by_id[id], identity, stack));
                (id, digest)
            })
            .collect();
        hashes.push((at, combine(&digests)));
    }
    let key = identity.config_hash_annotation();
    for (at, hash) in hashes {
        let template = &mut resources[at].object["spec"]["template"];
        let annotations = &mut template["metadata"]["annotations"];
        if !annotations.is_object() {
            *annotations = json!({});
        }
        annotations[key.as_str()] = Value::String(hash);
    }
}

/// The digest of what one ConfigMap or Secret holds.
fn part(id: &ResourceId, object: &Value, identity: &Identity, stack: &str) -> [u8; 32] {
    if id.kind == "Secret" {
        let values = json!({"data": object["data"], "stringData": object["stringData"]});
        let context = [
            "config-hash",
            identity.name(),
            stack,
            id.namespace.as_deref().unwrap_or_default(),
            &id.name,
        ];
        return sensitive::stable_digest(&context, values.to_string().as_bytes());
    }
    let data = object.get("data").cloned().unwrap_or(Value::Null);
    let mut hash = Sha256::new().chain_update(data.to_string().as_bytes());
    if let Some(binary) = object.get("binaryData").filter(|b| !b.is_null()) {
        hash.update(b"\0binaryData\0");
        hash.update(binary.to_string().as_bytes());
    }
    hash.finalize().into()
}

/// The annotation's value: 16 hex digits, of the one part as it is or of
/// the parts hashed together with their ids.
fn combine(parts: &[(&ResourceId, [u8; 32])]) -> String {
    let digest: [u8; 32] = match parts {
        [(_, only)] => *only,
        _ => {
            let mut hash = Sha256::new();
            for (id, part) in parts {
                hash.update(id.to_string().as_bytes());
                hash.update(b"\0");
                hash.update(part);
            }
            hash.finalize().into()
        }
    };
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
    use k8s_openapi::api::core::v1::{
        ConfigMap, ConfigMapVolumeSource, Container, EnvFromSource, PodSpec, PodTemplateSpec,
        Secret, SecretEnvSource, Volume,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use crate::declare::Resources;

    use super::*;

    const PASSWORD: &str = "hunter2";

    fn meta(name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("shop".into()),
            ..ObjectMeta::default()
        }
    }

    fn config_map(greeting: &str) -> ConfigMap {
        ConfigMap {
            metadata: meta("settings"),
            data: Some([("greeting".to_string(), greeting.to_string())].into()),
            ..ConfigMap::default()
        }
    }

    fn secret(password: &str) -> Secret {
        Secret {
            metadata: meta("auth"),
            data: Some([("password".to_string(), ByteString(password.into()))].into()),
            ..Secret::default()
        }
    }

    /// A Deployment that mounts `settings` and reads `auth` as environment.
    fn web(replicas: i32) -> Deployment {
        Deployment {
            metadata: meta("web"),
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                template: PodTemplateSpec {
                    spec: Some(PodSpec {
                        volumes: Some(vec![Volume {
                            name: "settings".into(),
                            config_map: Some(ConfigMapVolumeSource {
                                name: "settings".into(),
                                ..ConfigMapVolumeSource::default()
                            }),
                            ..Volume::default()
                        }]),
                        containers: vec![Container {
                            name: "web".into(),
                            env_from: Some(vec![EnvFromSource {
                                secret_ref: Some(SecretEnvSource {
                                    name: "auth".into(),
                                    ..SecretEnvSource::default()
                                }),
                                ..EnvFromSource::default()
                            }]),
                            ..Container::default()
                        }],
                        ..PodSpec::default()
                    }),
                    ..PodTemplateSpec::default()
                },
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }
    }

    /// The Deployment's config hash when the stack is `stack` and declares
    /// `objects` besides it.
    fn hash_of(stack: &str, replicas: i32, declare: impl FnOnce(&mut Resources)) -> Option<String> {
        let mut resources = Resources::new(&Identity::new("shop-iac"), stack);
        resources.roll_on_config_change();
        declare(&mut resources);
        resources.add(web(replicas));
        let desired = resources.finish().unwrap();
        let web = desired.iter().find(|d| d.id.kind == "Deployment").unwrap();
        web.object["spec"]["template"]["metadata"]["annotations"]["shop-iac.io/config-hash"]
            .as_str()
            .map(str::to_string)
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn one_config_map_gives_sha256_of_its_data_in_16_hex_digits() {
        let hash = hash_of("dev", 1, |r| {
            r.add(config_map("hello"));
        });
        let data = serde_json::to_string(&json!({"greeting": "hello"})).unwrap();
        assert_eq!(hash, Some(hex(&Sha256::digest(data.as_bytes())[..8])));
    }

    #[test]
    fn without_the_option_or_declared_config_no_annotation_is_set() {
        let mut resources = Resources::new(&Identity::new("shop-iac"), "dev");
        resources.add(config_map("hello"));
        resources.add(web(1));
        let desired = resources.finish().unwrap();
        assert!(desired.iter().all(|d| {
            d.object
                .pointer("/spec/template/metadata/annotations")
                .is_none()
        }));
        assert_eq!(hash_of("dev", 1, |_| {}), None);
    }

    #[test]
    fn a_secret_changes_the_hash_but_cannot_be_read_or_cheaply_guessed_from_it() {
        let with = |password: &str, greeting: &str, replicas: i32| {
            hash_of("dev", replicas, |r| {
                r.add(config_map(greeting));
                r.add(secret(password));
            })
            .expect("the Deployment reads declared config")
        };
        let hash = with(PASSWORD, "hello", 1);
        assert_eq!(hash.len(), 16);
        assert_eq!(hash, with(PASSWORD, "hello", 1), "the same on every run");
        assert_eq!(
            hash,
            with(PASSWORD, "hello", 3),
            "a change elsewhere leaves it"
        );
        assert_ne!(hash, with("hunter3", "hello", 1), "a new password rolls");
        assert_ne!(hash, with(PASSWORD, "hi", 1), "a new greeting rolls");

        // Nothing of the value, and none of the plain hashes a reader of
        // the Deployment could compute for a guess.
        let encoded = json!(ByteString(PASSWORD.into()))
            .as_str()
            .unwrap()
            .to_string();
        assert!(!hash.contains(PASSWORD) && !hash.contains(&encoded));
        let only_secret = hash_of("dev", 1, |r| {
            r.add(secret(PASSWORD));
        })
        .unwrap();
        for guess in [
            PASSWORD.to_string(),
            encoded.clone(),
            json!({"password": encoded}).to_string(),
            json!({"data": {"password": encoded}, "stringData": null}).to_string(),
        ] {
            let plain = hex(&Sha256::digest(guess.as_bytes())[..8]);
            assert_ne!(only_secret, plain, "sha256 of {guess}");
        }
        // Salted per stack: the same password elsewhere is unrelated.
        let other_stack = hash_of("prod", 1, |r| {
            r.add(secret(PASSWORD));
        });
        assert_ne!(Some(only_secret), other_stack);
    }

    #[test]
    fn only_workloads_that_roll_get_a_hash() {
        let identity = Identity::new("shop-iac");
        let mut resources = Resources::new(&identity, "dev");
        resources.roll_on_config_change();
        resources.add(config_map("hello"));
        let mut job = serde_json::to_value(web(1)).unwrap();
        job["apiVersion"] = json!("batch/v1");
        job["kind"] = json!("Job");
        job["spec"] = json!({"template": job["spec"]["template"]});
        resources.add(job);
        let desired = resources.finish().unwrap();
        let job = desired.iter().find(|d| d.id.kind == "Job").unwrap();
        assert!(job.object["spec"]["template"]["metadata"].is_null());
    }
}
