//! `ctr events|event [FILTER...]`: one line per envelope, as containerd 1.6's
//! ctr prints it — `<Go Time.String of the timestamp> <namespace> <topic>
//! <json.Marshal of the decoded event>` — until the stream ends.
//!
//! The event is decoded by its type URL into the struct containerd 1.6 has
//! for it (the same fields and JSON names: `omitempty` everywhere but
//! `ContentDelete.digest` and the tasks' `exited_at`). A type containerd
//! 1.6's ctr does not know is logged as a warning and skipped, as it does.
//! (containerd's ctr would also decode any other protobuf type compiled into
//! it, such as the API's own messages; nobody publishes those as events.)

use std::collections::HashMap;
use std::io::Write as _;

use anyhow::anyhow;
use prost::Message;
use prost_types::Any;
use rcontainerd_api::client::NamespacedChannel;
use rcontainerd_api::events as ev;
use rcontainerd_api::services::events::events_client::EventsClient;
use rcontainerd_api::services::events::SubscribeRequest;
use rcontainerd_api::services::images as image_events;
use rcontainerd_api::types::{self, Envelope};
use tonic::Status;

use crate::errors::unclassified;
use crate::gojson::{go_time_string, rfc3339_nano, Json};
use crate::log;

use super::containers::any_json;

/// Prints envelopes as they arrive. Returns only with the error that ended
/// the stream, which containerd's ctr prints unclassified (`rpc error: …`);
/// a stream the daemon closes cleanly ends with Go's `EOF`.
pub async fn run(channel: NamespacedChannel, filters: &[String]) -> anyhow::Result<()> {
    let mut stream = EventsClient::new(channel)
        .subscribe(SubscribeRequest {
            filters: filters.to_vec(),
        })
        .await
        .map_err(failed)?
        .into_inner();
    loop {
        match stream.message().await {
            Ok(Some(envelope)) => {
                if let Some(line) = line(&envelope) {
                    let mut stdout = std::io::stdout().lock();
                    // A line at a time, as Go's fmt.Println writes it.
                    stdout.write_all(line.as_bytes())?;
                    stdout.flush()?;
                }
            }
            Ok(None) => return Err(anyhow!("EOF")),
            Err(status) => return Err(failed(status)),
        }
    }
}

fn failed(status: Status) -> anyhow::Error {
    anyhow!(unclassified(&status))
}

/// The line for `envelope`, or `None` (with a warning) when its event
/// cannot be decoded.
fn line(envelope: &Envelope) -> Option<String> {
    let json = match &envelope.event {
        None => String::new(),
        Some(event) => match event_json(event) {
            Ok(json) => json.to_compact(),
            Err(error) => {
                log::warning_with_error("cannot unmarshal an event from Any", &error);
                return None;
            }
        },
    };
    Some(format!(
        "{} {} {} {json}\n",
        go_time_string(envelope.timestamp.as_ref()),
        envelope.namespace,
        envelope.topic
    ))
}

/// A Go struct's JSON members: with `omitempty`, zero values are left out.
#[derive(Default)]
struct Members(Vec<(String, Json)>);

impl Members {
    fn text(self, key: &str, value: &str) -> Self {
        if value.is_empty() {
            self
        } else {
            self.always(key, Json::string(value))
        }
    }

    fn labels(self, key: &str, labels: &HashMap<String, String>) -> Self {
        if labels.is_empty() {
            self
        } else {
            self.always(key, Json::sorted_map(labels))
        }
    }

    fn number(self, key: &str, value: u32) -> Self {
        if value == 0 {
            self
        } else {
            self.always(key, Json::Number(i64::from(value)))
        }
    }

    fn object(self, key: &str, value: Option<Json>) -> Self {
        match value {
            Some(value) => self.always(key, value),
            None => self,
        }
    }

    fn always(mut self, key: &str, value: Json) -> Self {
        self.0.push((key.to_owned(), value));
        self
    }

    fn done(self) -> Json {
        Json::Object(self.0)
    }
}

/// typeurl's error for a type it does not know.
fn unknown(type_url: &str) -> String {
    format!("type with url {type_url}: not found")
}

fn mount_json(mount: &types::Mount) -> Json {
    let options = if mount.options.is_empty() {
        None
    } else {
        Some(Json::strings(&mount.options))
    };
    Members::default()
        .text("type", &mount.r#type)
        .text("source", &mount.source)
        .text("target", &mount.target)
        .object("options", options)
        .done()
}

/// The event as containerd 1.6's Go struct for its type marshals.
fn event_json(event: &Any) -> Result<Json, String> {
    fn decode<M: Message + Default>(event: &Any) -> Result<M, String> {
        M::decode(event.value.as_slice()).map_err(|e| e.to_string())
    }
    let m = Members::default();
    let json = match event.type_url.as_str() {
        "containerd.events.ContainerCreate" => {
            let e: ev::ContainerCreate = decode(event)?;
            let runtime = e.runtime.map(|r| {
                Members::default()
                    .text("name", &r.name)
                    .object("options", r.options.as_ref().map(any_json))
                    .done()
            });
            m.text("id", &e.id)
                .text("image", &e.image)
                .object("runtime", runtime)
        }
        "containerd.events.ContainerUpdate" => {
            let e: ev::ContainerUpdate = decode(event)?;
            m.text("id", &e.id)
                .text("image", &e.image)
                .labels("labels", &e.labels)
                .text("snapshot_key", &e.snapshot_key)
        }
        "containerd.events.ContainerDelete" => {
            let e: ev::ContainerDelete = decode(event)?;
            m.text("id", &e.id)
        }
        // No omitempty on the digest in containerd's struct.
        "containerd.events.ContentDelete" => {
            let e: ev::ContentDelete = decode(event)?;
            m.always("digest", Json::string(e.digest))
        }
        "containerd.services.images.v1.ImageCreate" => {
            let e: image_events::ImageCreate = decode(event)?;
            m.text("name", &e.name).labels("labels", &e.labels)
        }
        "containerd.services.images.v1.ImageUpdate" => {
            let e: image_events::ImageUpdate = decode(event)?;
            m.text("name", &e.name).labels("labels", &e.labels)
        }
        "containerd.services.images.v1.ImageDelete" => {
            let e: image_events::ImageDelete = decode(event)?;
            m.text("name", &e.name)
        }
        "containerd.events.NamespaceCreate" => {
            let e: ev::NamespaceCreate = decode(event)?;
            m.text("name", &e.name).labels("labels", &e.labels)
        }
        "containerd.events.NamespaceUpdate" => {
            let e: ev::NamespaceUpdate = decode(event)?;
            m.text("name", &e.name).labels("labels", &e.labels)
        }
        "containerd.events.NamespaceDelete" => {
            let e: ev::NamespaceDelete = decode(event)?;
            m.text("name", &e.name)
        }
        // containerd 1.6's snapshot events have no snapshotter field.
        "containerd.events.SnapshotPrepare" => {
            let e: ev::SnapshotPrepare = decode(event)?;
            m.text("key", &e.key).text("parent", &e.parent)
        }
        "containerd.events.SnapshotCommit" => {
            let e: ev::SnapshotCommit = decode(event)?;
            m.text("key", &e.key).text("name", &e.name)
        }
        "containerd.events.SnapshotRemove" => {
            let e: ev::SnapshotRemove = decode(event)?;
            m.text("key", &e.key)
        }
        "containerd.events.TaskCreate" => {
            let e: ev::TaskCreate = decode(event)?;
            let rootfs = (!e.rootfs.is_empty())
                .then(|| Json::Array(e.rootfs.iter().map(mount_json).collect()));
            let io = e.io.map(|io| {
                let m = Members::default()
                    .text("stdin", &io.stdin)
                    .text("stdout", &io.stdout)
                    .text("stderr", &io.stderr);
                let m = if io.terminal {
                    m.always("terminal", Json::Bool(true))
                } else {
                    m
                };
                m.done()
            });
            m.text("container_id", &e.container_id)
                .text("bundle", &e.bundle)
                .object("rootfs", rootfs)
                .object("io", io)
                .text("checkpoint", &e.checkpoint)
                .number("pid", e.pid)
        }
        "containerd.events.TaskStart" => {
            let e: ev::TaskStart = decode(event)?;
            m.text("container_id", &e.container_id).number("pid", e.pid)
        }
        "containerd.events.TaskDelete" => {
            let e: ev::TaskDelete = decode(event)?;
            m.text("container_id", &e.container_id)
                .number("pid", e.pid)
                .number("exit_status", e.exit_status)
                .always(
                    "exited_at",
                    Json::string(rfc3339_nano(e.exited_at.as_ref())),
                )
                .text("id", &e.id)
        }
        "containerd.events.TaskExit" => {
            let e: ev::TaskExit = decode(event)?;
            m.text("container_id", &e.container_id)
                .text("id", &e.id)
                .number("pid", e.pid)
                .number("exit_status", e.exit_status)
                .always(
                    "exited_at",
                    Json::string(rfc3339_nano(e.exited_at.as_ref())),
                )
        }
        "containerd.events.TaskOOM" => {
            let e: ev::TaskOom = decode(event)?;
            m.text("container_id", &e.container_id)
        }
        "containerd.events.TaskExecAdded" => {
            let e: ev::TaskExecAdded = decode(event)?;
            m.text("container_id", &e.container_id)
                .text("exec_id", &e.exec_id)
        }
        "containerd.events.TaskExecStarted" => {
            let e: ev::TaskExecStarted = decode(event)?;
            m.text("container_id", &e.container_id)
                .text("exec_id", &e.exec_id)
                .number("pid", e.pid)
        }
        "containerd.events.TaskPaused" => {
            let e: ev::TaskPaused = decode(event)?;
            m.text("container_id", &e.container_id)
        }
        "containerd.events.TaskResumed" => {
            let e: ev::TaskResumed = decode(event)?;
            m.text("container_id", &e.container_id)
        }
        "containerd.events.TaskCheckpointed" => {
            let e: ev::TaskCheckpointed = decode(event)?;
            m.text("container_id", &e.container_id)
                .text("checkpoint", &e.checkpoint)
        }
        other => return Err(unknown(other)),
    };
    Ok(json.done())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Name;

    fn pack<M: Message + Name>(message: &M) -> Any {
        Any {
            type_url: M::full_name(),
            value: message.encode_to_vec(),
        }
    }

    fn json(event: Any) -> String {
        event_json(&event).unwrap().to_compact()
    }

    /// Lines containerd 1.6.20's ctr printed for the same events.
    #[test]
    fn events_print_as_containerds_ctr_prints_them() {
        let create = ev::NamespaceCreate {
            name: "foo".into(),
            labels: [("b", "2"), ("a", "1")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let envelope = Envelope {
            timestamp: Some(prost_types::Timestamp {
                seconds: 1_796_644_340,
                nanos: 332_038_586,
            }),
            namespace: "default".into(),
            topic: "/namespaces/create".into(),
            event: Some(pack(&create)),
        };
        assert_eq!(
            line(&envelope).unwrap(),
            "2026-12-07 11:52:20.332038586 +0000 UTC default /namespaces/create \
             {\"name\":\"foo\",\"labels\":{\"a\":\"1\",\"b\":\"2\"}}\n"
        );
        assert_eq!(
            json(pack(&ev::SnapshotPrepare {
                key: "k/<&>".into(),
                parent: String::new(),
                snapshotter: "overlayfs".into(),
            })),
            r#"{"key":"k/\u003c\u0026\u003e"}"#
        );
        assert_eq!(
            json(pack(&ev::SnapshotCommit {
                key: "k1".into(),
                name: "n1".into(),
                snapshotter: String::new(),
            })),
            r#"{"key":"k1","name":"n1"}"#
        );
        assert_eq!(
            json(pack(&ev::ContentDelete {
                digest: String::new()
            })),
            r#"{"digest":""}"#
        );
        assert_eq!(
            json(pack(&ev::ContainerCreate {
                id: "c".into(),
                image: String::new(),
                runtime: Some(ev::container_create::Runtime {
                    name: "io.containerd.runc.v2".into(),
                    options: Some(Any {
                        type_url: "x.Options".into(),
                        value: vec![1, 2, 3],
                    }),
                }),
            })),
            r#"{"id":"c","runtime":{"name":"io.containerd.runc.v2","options":{"type_url":"x.Options","value":"AQID"}}}"#
        );
        assert_eq!(
            json(pack(&ev::TaskExit {
                container_id: "c".into(),
                id: "c".into(),
                pid: 42,
                exit_status: 0,
                exited_at: None,
            })),
            r#"{"container_id":"c","id":"c","pid":42,"exited_at":"0001-01-01T00:00:00Z"}"#
        );
        assert_eq!(json(pack(&ev::NamespaceDelete::default())), "{}");
    }

    #[test]
    fn an_envelope_without_an_event_prints_an_empty_last_column() {
        let envelope = Envelope {
            timestamp: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: 0,
            }),
            namespace: "ns".into(),
            topic: "/a".into(),
            event: None,
        };
        assert_eq!(
            line(&envelope).unwrap(),
            "1970-01-01 00:00:00 +0000 UTC ns /a \n"
        );
    }

    #[test]
    fn types_containerd_16_does_not_know_are_not_decoded() {
        for type_url in [
            "containerd.events.ContentCreate",
            "type.googleapis.com/containerd.events.NamespaceCreate",
            "",
        ] {
            let event = Any {
                type_url: type_url.into(),
                value: vec![],
            };
            assert_eq!(
                event_json(&event).unwrap_err(),
                format!("type with url {type_url}: not found")
            );
        }
    }
}
