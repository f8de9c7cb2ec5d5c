//! What execgate learns about an exec before judging it: the container (from
//! the daemon), the exec as the daemon stored it, and the calling process.

use std::collections::BTreeMap;
use std::path::PathBuf;

use http_body_util::BodyExt;
use hyper::StatusCode;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use crate::daemon::upstream::Control;
use crate::http::error::ProxyError;

/// Characters left as they are in a path segment; everything else is escaped
/// so a name cannot add segments or a query to execgate's own requests.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// A path segment, percent-encoded.
pub fn segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

/// The container an exec targets, as policy sees it (`input.container`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerInfo {
    /// Full container id.
    pub id: String,
    /// Name without the leading slash.
    pub name: String,
    /// Image reference the container was created from.
    pub image: String,
    /// Container labels.
    pub labels: BTreeMap<String, String>,
    /// Default user (`Config.User`); empty means root.
    pub user: String,
    /// Runs privileged (every exec inherits it).
    pub privileged: bool,
    /// Capabilities added at creation.
    pub cap_add: Vec<String>,
    /// Supplementary groups added at creation (`--group-add`): names or gids,
    /// which the daemon adds to every exec's groups as well.
    pub group_add: Vec<String>,
    /// Running now.
    pub running: bool,
    /// `State.Status`: created, running, paused, restarting, exited, dead.
    pub status: String,
    /// Has a TTY (`Config.Tty`): its attach stream is raw, else multiplexed.
    pub tty: bool,
    /// Keeps stdin open (`Config.OpenStdin`, `-i`): an attach can write to PID 1.
    pub open_stdin: bool,
    /// PID 1's command (`Path` then `Args`).
    pub command: Vec<String>,
    /// PID 1's exit code, once it has exited.
    #[serde(skip)]
    pub exit_code: Option<i64>,
    /// When PID 1 last exited (`State.FinishedAt`): a change tells that it ran
    /// and exited in between.
    #[serde(skip)]
    pub finished_at: String,
    /// The overlay root the daemon reads `/etc/passwd` from, when it has one.
    #[serde(skip)]
    pub merged_dir: Option<PathBuf>,
    /// Where the container's mounts sit (`Mounts[].Destination`).
    #[serde(skip)]
    pub mounts: Vec<String>,
}

// The daemon's answers are read tolerantly: every field may be absent or
// null (Go's `omitempty`, pointers, older and newer API versions, Podman), and
// unknown fields are ignored. Only what execgate cannot judge without (the
// container's id, the exec's container) is required.

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawContainer {
    id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    path: String,
    #[serde(default, deserialize_with = "null_as_default")]
    args: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    config: RawConfig,
    #[serde(default, deserialize_with = "null_as_default")]
    host_config: RawHostConfig,
    #[serde(default, deserialize_with = "null_as_default")]
    state: RawState,
    #[serde(default, deserialize_with = "null_as_default")]
    graph_driver: RawGraphDriver,
    #[serde(default, deserialize_with = "null_as_default")]
    mounts: Vec<RawMount>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawMount {
    #[serde(default, deserialize_with = "null_as_default")]
    destination: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawConfig {
    #[serde(default, deserialize_with = "null_as_default")]
    image: String,
    #[serde(default, deserialize_with = "null_as_default")]
    labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_default")]
    user: String,
    #[serde(default, deserialize_with = "null_as_default")]
    tty: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    open_stdin: bool,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawHostConfig {
    #[serde(default, deserialize_with = "null_as_default")]
    privileged: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    cap_add: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    group_add: Vec<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawState {
    #[serde(default, deserialize_with = "null_as_default")]
    running: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    status: String,
    #[serde(default)]
    exit_code: Option<i64>,
    #[serde(default, deserialize_with = "null_as_default")]
    finished_at: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawGraphDriver {
    #[serde(default, deserialize_with = "null_as_default")]
    data: BTreeMap<String, String>,
}

/// The exec as the daemon stored it (`GET /exec/{id}/json`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecInspect {
    /// The container it runs in (full id).
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    /// Running now.
    #[serde(default, deserialize_with = "null_as_default")]
    pub running: bool,
    /// Exit code once ended.
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// The process it will run.
    #[serde(default, deserialize_with = "null_as_default")]
    pub process_config: ProcessConfig,
}

/// The daemon's view of an exec's process. `privileged` is a `*bool` and
/// `user` a string, both `omitempty`: absent means false and "".
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ProcessConfig {
    /// Allocates a TTY.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tty: bool,
    /// `Cmd[0]`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub entrypoint: String,
    /// `Cmd[1..]`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub arguments: Vec<String>,
    /// Privileged exec.
    #[serde(default, deserialize_with = "null_as_default")]
    pub privileged: bool,
    /// The user spec the daemon will resolve at start (the container's default if the exec gave none).
    #[serde(default, deserialize_with = "null_as_default")]
    pub user: String,
}

/// A field that is `null` reads as its default, as Go leaves a zero value.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// GETs `path` from the daemon and decodes a 200 answer; any other status
/// becomes an error carrying the daemon's own message and status.
async fn get_json<T: serde::de::DeserializeOwned>(
    daemon: &Control<'_>,
    path: &str,
    what: &str,
) -> Result<T, ProxyError> {
    let response = daemon.get(path).await?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| {
            ProxyError::DaemonAnswer(format!("failed to read the daemon's answer about {what}: {e}"))
        })?
        .to_bytes();
    if status != StatusCode::OK {
        let message = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        return Err(ProxyError::Daemon { status, context: format!("cannot look up {what}"), message });
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ProxyError::DaemonAnswer(format!("unreadable daemon answer about {what}: {e}")))
}

/// Resolves a container reference (name, id or prefix) to the container (`GET /containers/{ref}/json`).
pub async fn container_inspect(daemon: &Control<'_>, reference: &str) -> Result<ContainerInfo, ProxyError> {
    let raw: RawContainer = get_json(
        daemon,
        &format!("/containers/{}/json", segment(reference)),
        &format!("container {reference:?}"),
    )
    .await?;
    let merged_dir = raw.graph_driver.data.get("MergedDir").map(PathBuf::from);
    Ok(ContainerInfo {
        id: raw.id,
        name: raw.name.trim_start_matches('/').to_owned(),
        image: raw.config.image,
        labels: raw.config.labels,
        user: raw.config.user,
        privileged: raw.host_config.privileged,
        cap_add: raw.host_config.cap_add,
        group_add: raw.host_config.group_add,
        running: raw.state.running,
        // Go writes 0 for a container that never ran, so the code counts only once it stopped.
        exit_code: raw.state.exit_code.filter(|_| !raw.state.running && raw.state.status != "created"),
        status: raw.state.status,
        finished_at: raw.state.finished_at,
        tty: raw.config.tty,
        open_stdin: raw.config.open_stdin,
        command: (!raw.path.is_empty()).then_some(raw.path).into_iter().chain(raw.args).collect(),
        merged_dir,
        mounts: raw.mounts.into_iter().map(|m| m.destination).collect(),
    })
}

/// Reads an exec back from the daemon (`GET /exec/{id}/json`).
pub async fn exec_inspect(daemon: &Control<'_>, exec_id: &str) -> Result<ExecInspect, ProxyError> {
    get_json(daemon, &format!("/exec/{}/json", segment(exec_id)), &format!("exec {exec_id:?}")).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_escape_their_place() {
        assert_eq!(segment("web-1_a.b"), "web-1_a.b");
        assert_eq!(segment("../x?y#z"), "..%2Fx%3Fy%23z");
        assert_eq!(segment("a b"), "a%20b");
    }

    #[test]
    fn exec_inspect_decodes_the_daemons_answer() {
        let text = r#"{"ID":"e0","Running":false,"ExitCode":2,"ProcessConfig":{"tty":true,"entrypoint":"sh","arguments":["-c","exit 2"],"privileged":false,"user":"app"},"OpenStdin":true,"ContainerID":"04d1","Pid":13325}"#;
        let e: ExecInspect = serde_json::from_str(text).expect("decodes");
        assert_eq!(e.exit_code, Some(2));
        assert_eq!(e.process_config.arguments, vec!["-c", "exit 2"]);
        assert_eq!(e.container_id, "04d1");
    }

    #[test]
    fn omitted_and_null_fields_read_as_go_zero_values() {
        // dockerd 20.10 and 28.5 omit `user` when neither the exec nor the
        // container names one, and `privileged` is an omitempty pointer.
        let text = r#"{"ID":"e1","Running":true,"ExitCode":null,"ProcessConfig":{"tty":false,"entrypoint":"id","arguments":null},"ContainerID":"c","New":1}"#;
        let e: ExecInspect = serde_json::from_str(text).expect("decodes");
        assert_eq!(e.process_config.user, "");
        assert!(!e.process_config.privileged);
        assert!(e.running);
        let e: ExecInspect =
            serde_json::from_str(r#"{"ContainerID":"c","ProcessConfig":null}"#).expect("decodes");
        assert_eq!(e.process_config, ProcessConfig::default());
        assert!(
            serde_json::from_str::<ExecInspect>(r#"{"ProcessConfig":{}}"#).is_err(),
            "the container is needed"
        );
    }

    #[test]
    fn a_sparse_container_answer_is_read() {
        let raw: RawContainer = serde_json::from_str(
            r#"{"Id":"abc","Name":null,"Config":{"Labels":null},"HostConfig":null,"GraphDriver":{"Name":"overlayfs","Data":null},"Mounts":null,"Storage":{}}"#,
        )
        .expect("decodes");
        assert_eq!(raw.id, "abc");
        assert!(raw.config.labels.is_empty() && !raw.host_config.privileged && !raw.state.running);
        assert!(raw.graph_driver.data.is_empty() && raw.mounts.is_empty());
    }

    /// Real answers captured from each daemon of the test bed
    /// (`tests/fixtures/answers/`): Docker 20.10 (API 1.41), Docker 28.5 (API
    /// 1.51) and Podman 4.3. Read field by field as execgate reads them.
    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/answers/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    const DAEMONS: [&str; 3] = ["docker20", "docker28", "podman43"];

    #[test]
    fn real_exec_answers_from_every_daemon() {
        for daemon in DAEMONS {
            let created: ExecInspect =
                serde_json::from_str(&fixture(&format!("{daemon}-exec-nouser-created.json"))).expect(daemon);
            // No user anywhere: Docker omits `user`, Podman sends "".
            assert_eq!(created.process_config.user, "", "{daemon}");
            assert_eq!(created.process_config.entrypoint, "sleep", "{daemon}");
            assert_eq!(created.process_config.arguments, vec!["2"], "{daemon}");
            assert!(!created.running, "{daemon}");
            assert_eq!(created.container_id.len(), 64, "{daemon}");
            let running: ExecInspect =
                serde_json::from_str(&fixture(&format!("{daemon}-exec-nouser-running.json"))).expect(daemon);
            assert!(running.running, "{daemon}");
            let exited: ExecInspect =
                serde_json::from_str(&fixture(&format!("{daemon}-exec-pinned-exited.json"))).expect(daemon);
            assert_eq!(exited.exit_code, Some(3), "{daemon}");
            assert_eq!(exited.process_config.user, "1000:1000", "{daemon}");
            assert_eq!(exited.process_config.arguments, vec!["-c", "exit 3"], "{daemon}");
            let id: serde_json::Value =
                serde_json::from_str(&fixture(&format!("{daemon}-exec-create.json"))).expect(daemon);
            assert_eq!(id["Id"].as_str().map(str::len), Some(64), "{daemon}");
        }
    }

    #[test]
    fn real_container_answers_from_every_daemon() {
        for daemon in DAEMONS {
            for (which, user) in [("user", "app"), ("root", "")] {
                let raw: RawContainer =
                    serde_json::from_str(&fixture(&format!("{daemon}-container-{which}.json")))
                        .expect(daemon);
                assert_eq!(raw.id.len(), 64, "{daemon} {which}");
                assert!(raw.name.starts_with("/fx-"), "{daemon} {which}: {}", raw.name);
                assert_eq!(raw.config.user, user, "{daemon} {which}");
                assert!(raw.config.image.contains("execgate-test/busybox"), "{daemon} {which}");
                assert!(raw.state.running && !raw.host_config.privileged, "{daemon} {which}");
                assert!(
                    raw.host_config.cap_add.is_empty() && raw.host_config.group_add.is_empty(),
                    "{daemon}"
                );
            }
        }
    }
}
