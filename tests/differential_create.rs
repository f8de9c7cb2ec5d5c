//! Differential test of `container_body::decode_create` against the real
//! daemon: each body of a corpus of Go-decoding corner cases (case folding,
//! `ſ`, Kelvin, duplicate objects, slices reused in place, `null`, StrSlice
//! strings, 20.10's top-level HostConfig fields, `HostConfig: null`, trailing
//! data, volume-binds, `..` and `//` in bind sources) is sent straight to the
//! daemon (`POST /containers/create`, never started), and every field the
//! decoder exposes is compared with what the daemon stored
//! (`GET /containers/{id}/json`).
//!
//! The daemon changes some values after decoding; the comparison allows
//! exactly these, each read from the daemon itself (a plain create is the
//! baseline):
//! - `Entrypoint` `[""]` (no entrypoint) → null;
//! - `NetworkMode` `""`/`default` → the default network (`default` on 20.10,
//!   `bridge` on 28.x); `IpcMode`, `CgroupnsMode`, `Runtime` `""` → the
//!   daemon's defaults;
//! - `container:X` in `PidMode`, `IpcMode`, `NetworkMode` → `container:<full id>`;
//! - `MaskedPaths`/`ReadonlyPaths` nil and not privileged → the default lists;
//! - `SecurityOpt` gains `label=disable` for host pid/ipc or privileged;
//! - Config: the image's `Env`, `Labels`, `Cmd`, `Entrypoint`, `User` fill
//!   in as moby's `merge` does.
//!
//! Where the daemon refuses a body the decoder must refuse it too, unless the
//! case is marked as refused by a check after decoding (the decoder decodes,
//! it does not validate). Where the decoder refuses a body the daemon accepts,
//! the case must be marked as one the decoder is stricter on (Go substitutes
//! U+FFFD for a lone surrogate).

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{IMAGE, TempDir, docker_sock};
use execgate::gate::container_body::{
    CreateView, Daemon, HostConfigView, decode_create, decode_start_host_config, decode_update,
};
use serde_json::{Value, json};

/// Which decoding rules the daemon under test follows, and its version.
fn daemon_kind() -> (Daemon, String) {
    let (status, version) = http("GET", "/version", b"");
    assert_eq!(status, 200, "{version}");
    let text = version["Version"].as_str().unwrap_or_default().to_owned();
    (if text.starts_with("20.") { Daemon::Docker20 } else { Daemon::Docker28 }, text)
}

/// One HTTP/1.0 exchange with the daemon (no chunking; read to EOF).
fn http(method: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let mut stream = UnixStream::connect(docker_sock()).expect("connect to the daemon");
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // A daemon that refuses early may close before reading the body: its
    // answer is still there to read.
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body));
    let mut data = Vec::new();
    stream.read_to_end(&mut data).expect("read");
    let split = data.windows(4).position(|w| w == b"\r\n\r\n").expect("response head") + 4;
    let status_line = String::from_utf8_lossy(&data[..split]).into_owned();
    let status = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    let text = &data[split..];
    let value =
        serde_json::from_slice(text).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(text).into()));
    (status, value)
}

/// Creates a container from `body`: `Ok(id)` or `Err((status, message))`.
fn create(body: &[u8]) -> Result<String, (u16, String)> {
    let (status, answer) = http("POST", "/containers/create", body);
    if status == 201 {
        Ok(answer["Id"].as_str().expect("Id").to_owned())
    } else {
        Err((status, answer.to_string()))
    }
}

fn inspect(id: &str) -> Value {
    let (status, value) = http("GET", &format!("/containers/{id}/json"), b"");
    assert_eq!(status, 200, "inspect {id}: {value}");
    value
}

fn remove(id: &str) {
    let (status, value) = http("DELETE", &format!("/containers/{id}?force=1&v=1"), b"");
    assert!(status == 204 || status == 404, "remove {id}: {status} {value}");
}

/// Removes the containers it holds, then the named volume, on drop, even
/// after a failure.
#[derive(Default)]
struct Cleanup(Vec<String>, String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for id in &self.0 {
            remove(id);
        }
        if !self.1.is_empty() {
            let (status, value) = http("DELETE", &format!("/volumes/{}", self.1), b"");
            assert!(status == 204 || status == 404, "remove volume {}: {status} {value}", self.1);
        }
    }
}

/// What a case expects beyond "the daemon and the decoder agree".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// Both accept, or both refuse.
    Agree,
    /// The daemon may refuse it after decoding (validation the decoder does
    /// not do); the decoder accepts it.
    Validated,
    /// Go accepts what serde_json refuses (a lone surrogate).
    Stricter,
}

struct Case {
    name: &'static str,
    body: String,
    mark: Mark,
}

/// The daemon's own defaults, from a plain create.
struct Baseline {
    /// The stored HostConfig of `{"Image":…}` (20.10 sets some defaults
    /// only when a HostConfig was decoded) …
    without_host_config: Value,
    /// … and of `{"Image":…,"HostConfig":{}}`.
    with_host_config: Value,
    /// The image's config, merged into each container's.
    image_config: Value,
}

fn str_list(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect())
        .unwrap_or_default()
}

fn json_of<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("json")
}

/// A Go `omitempty` field read back: absent, null and empty are all "none".
fn empty_as_null(value: &Value) -> Value {
    match value {
        Value::Array(a) if a.is_empty() => Value::Null,
        Value::Object(o) if o.is_empty() => Value::Null,
        Value::String(s) if s.is_empty() => Value::Null,
        Value::Bool(false) => Value::Null,
        other => other.clone(),
    }
}

/// The stored mounts, reduced to the exposed fields.
fn mounts_of(stored: &Value) -> Value {
    let Some(list) = stored.as_array() else { return Value::Null };
    if list.is_empty() {
        return Value::Null;
    }
    Value::Array(
        list.iter()
            .map(|m| {
                let driver = &m["VolumeOptions"]["DriverConfig"];
                json!({
                    "Type": empty_as_null(&m["Type"]),
                    "Source": empty_as_null(&m["Source"]),
                    "Target": empty_as_null(&m["Target"]),
                    "ReadOnly": empty_as_null(&m["ReadOnly"]),
                    "Driver": if driver.is_null() { Value::Null } else {
                        json!({"Name": empty_as_null(&driver["Name"]), "Options": empty_as_null(&driver["Options"])})
                    },
                })
            })
            .collect(),
    )
}

fn decoded_mounts(hc: &HostConfigView) -> Value {
    let Some(list) = hc.mounts.get() else { return Value::Null };
    if list.is_empty() {
        return Value::Null;
    }
    Value::Array(
        list.iter()
            .map(|m| {
                let driver = m.volume_options.as_ref().and_then(|v| v.driver_config.as_ref());
                json!({
                    "Type": empty_as_null(&json!(m.r#type)),
                    "Source": empty_as_null(&json!(m.source)),
                    "Target": empty_as_null(&json!(m.target)),
                    "ReadOnly": empty_as_null(&json!(m.read_only)),
                    "Driver": driver.map_or(Value::Null, |d| json!({
                        "Name": empty_as_null(&json!(d.name)),
                        "Options": empty_as_null(&json_of(&d.options)),
                    })),
                })
            })
            .collect(),
    )
}

/// `container:X` as the daemon stores it: X resolved to its full id.
fn resolve_container_mode(mode: &str) -> String {
    match mode.split_once(':') {
        Some(("container", target)) => {
            let (status, value) = http("GET", &format!("/containers/{target}/json"), b"");
            if status == 200 {
                format!("container:{}", value["Id"].as_str().expect("Id"))
            } else {
                mode.to_owned()
            }
        }
        _ => mode.to_owned(),
    }
}

/// Every difference between what the decoder says and what the daemon stored.
fn compare(view: &CreateView, stored: &Value, base: &Baseline) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut check = |field: &str, want: Value, got: Value| {
        if want != got {
            diffs.push(format!("{field}: decoded {want}, daemon {got}"));
        }
    };
    let default_hc = HostConfigView::default();
    let hc = view.host_config.as_ref().unwrap_or(&default_hc);
    let s = &stored["HostConfig"];
    let defaults =
        if view.host_config.is_some() { &base.with_host_config } else { &base.without_host_config };

    check("Privileged", json!(hc.privileged), s["Privileged"].clone());
    check("CapAdd", json_of(&hc.cap_add), s["CapAdd"].clone());
    check("CapDrop", json_of(&hc.cap_drop), s["CapDrop"].clone());
    check("PidMode", json!(resolve_container_mode(&hc.pid_mode)), s["PidMode"].clone());
    let ipc = if hc.ipc_mode.is_empty() {
        defaults["IpcMode"].clone()
    } else {
        json!(resolve_container_mode(&hc.ipc_mode))
    };
    check("IpcMode", ipc, s["IpcMode"].clone());
    let net = if hc.network_mode.is_empty() || hc.network_mode == "default" {
        defaults["NetworkMode"].clone()
    } else {
        json!(resolve_container_mode(&hc.network_mode))
    };
    check("NetworkMode", net, s["NetworkMode"].clone());
    check("UsernsMode", json!(hc.userns_mode), s["UsernsMode"].clone());
    check("UTSMode", json!(hc.uts_mode), s["UTSMode"].clone());
    let cgroupns =
        if hc.cgroupns_mode.is_empty() { defaults["CgroupnsMode"].clone() } else { json!(hc.cgroupns_mode) };
    check("CgroupnsMode", cgroupns, s["CgroupnsMode"].clone());
    check("Cgroup", json!(hc.cgroup), s["Cgroup"].clone());
    check("Binds", json_of(&hc.binds), s["Binds"].clone());
    check("Mounts", decoded_mounts(hc), mounts_of(&s["Mounts"]));
    check("VolumesFrom", json_of(&hc.volumes_from), s["VolumesFrom"].clone());
    check("Devices", empty_as_null(&json_of(&hc.devices)), empty_as_null(&s["Devices"]));
    check(
        "DeviceCgroupRules",
        empty_as_null(&json_of(&hc.device_cgroup_rules)),
        empty_as_null(&s["DeviceCgroupRules"]),
    );
    // The daemon appends `label=disable` for host pid/ipc and privileged.
    let mut security = str_list(&s["SecurityOpt"]);
    let host_ns = hc.privileged || hc.pid_mode == "host" || hc.ipc_mode == "host";
    if host_ns && security.last().is_some_and(|l| l == "label=disable") {
        security.pop();
    }
    check("SecurityOpt", json!(hc.security_opt.iter().collect::<Vec<_>>()), json!(security));
    for (field, decoded, default) in [
        ("MaskedPaths", &hc.masked_paths, &defaults["MaskedPaths"]),
        ("ReadonlyPaths", &hc.readonly_paths, &defaults["ReadonlyPaths"]),
    ] {
        let want = match decoded.get() {
            None if !hc.privileged => default.clone(),
            _ => json_of(decoded),
        };
        check(field, want, s[field].clone());
    }
    check("Sysctls", empty_as_null(&json_of(&hc.sysctls)), empty_as_null(&s["Sysctls"]));
    let runtime = if hc.runtime.is_empty() { defaults["Runtime"].clone() } else { json!(hc.runtime) };
    check("Runtime", runtime, s["Runtime"].clone());
    check("Init", json_of(&hc.init), s["Init"].clone());

    // Config, after moby's merge with the image's config.
    let c = &view.config;
    let image = &base.image_config;
    let sc = &stored["Config"];
    check("Image", json!(c.image), sc["Image"].clone());
    let user = if c.user.is_empty() {
        image["User"].as_str().unwrap_or_default().to_owned()
    } else {
        c.user.clone()
    };
    check("User", json!(user), sc["User"].clone());
    check("Tty", json!(c.tty), sc["Tty"].clone());
    check("OpenStdin", json!(c.open_stdin), sc["OpenStdin"].clone());
    let user_env: Vec<String> = c.env.iter().cloned().collect();
    let mut env = user_env.clone();
    if env.is_empty() {
        env = str_list(&image["Env"]);
    } else {
        for image_env in str_list(&image["Env"]) {
            let key = image_env.split('=').next().unwrap_or_default();
            if !user_env.iter().any(|u| u.split('=').next().unwrap_or_default() == key) {
                env.push(image_env);
            }
        }
    }
    check("Env", json!(env), json!(str_list(&sc["Env"])));
    let mut labels = c.labels.clone().unwrap_or_default();
    if let Some(image_labels) = image["Labels"].as_object() {
        for (k, v) in image_labels {
            labels.entry(k.clone()).or_insert_with(|| v.as_str().unwrap_or_default().to_owned());
        }
    }
    check("Labels", json!(labels), sc["Labels"].clone());
    let (mut cmd, mut entrypoint) = (json_of(&c.cmd), json_of(&c.entrypoint));
    if c.entrypoint.iter().len() == 0 {
        if c.cmd.iter().len() == 0 {
            cmd = image["Cmd"].clone();
        }
        if c.entrypoint.0.is_none() {
            entrypoint = image["Entrypoint"].clone();
        }
    }
    // After the merge, `[""]` means no entrypoint and is stored as null.
    if entrypoint == json!([""]) {
        entrypoint = Value::Null;
    }
    check("Cmd", cmd, sc["Cmd"].clone());
    check("Entrypoint", entrypoint, sc["Entrypoint"].clone());
    diffs
}

fn corpus(dir: &str, target: &str, volume: &str) -> Vec<Case> {
    let img = IMAGE;
    // The test image has no command: every body that names it gets one
    // first (a later `Cmd` in the body wins).
    let with_cmd = |body: String| {
        if body.contains(IMAGE) { body.replacen('{', r#"{"Cmd":["true"],"#, 1) } else { body }
    };
    let case = |name: &'static str, body: String| Case { name, body: with_cmd(body), mark: Mark::Agree };
    let validated =
        |name: &'static str, body: String| Case { name, body: with_cmd(body), mark: Mark::Validated };
    vec![
        case("plain", format!(r#"{{"Image":"{img}"}}"#)),
        case("plain with HostConfig", format!(r#"{{"Image":"{img}","HostConfig":{{}}}}"#)),
        case(
            "case folding",
            format!(
                r#"{{"image":"{img}","hostconfig":{{"privileged":true,"PIDMODE":"host","capadd":["NET_RAW"],"NETWORKMODE":"none"}}}}"#
            ),
        ),
        case(
            "long s in keys and values",
            format!(
                r#"{{"Image":"{img}","HoſtConfig":{{"CapAdd":["ſys_admin"],"Bindſ":["{dir}:/d"],"UſernſMode":"host","SecurityOpt":["no-new-privileges"]}}}}"#
            ),
        ),
        case(
            "Kelvin sign",
            format!(
                r#"{{"Image":"{img}","HostConfig":{{"Mas\u212AedPaths":[],"ReadonlyPaths":["/proc/kcore"]}}}}"#
            ),
        ),
        case(
            "escaped keys",
            format!(
                r#"{{"\u0049mage":"{img}","HostConfig":{{"\u0050idMode":"host","Pr\u0069vileged":true}}}}"#
            ),
        ),
        case(
            "HostConfig objects merge",
            format!(
                r#"{{"Image":"{img}","HostConfig":{{"Privileged":true}},"HostConfig":{{"PidMode":"host"}},"hostconfig":{{"IpcMode":"host"}}}}"#
            ),
        ),
        case(
            "labels merge, null label value",
            format!(r#"{{"Image":"{img}","Labels":{{"a":"1","z":"x"}},"labels":{{"b":"2","z":null}}}}"#),
        ),
        case(
            "null keeps a bool",
            format!(r#"{{"Image":"{img}","HostConfig":{{"Privileged":true,"privileged":null}}}}"#),
        ),
        case(
            "null keeps a string",
            format!(r#"{{"Image":"{img}","HostConfig":{{"PidMode":"host","PidMode":null}}}}"#),
        ),
        case(
            "HostConfig null after an object",
            format!(
                r#"{{"Image":"{img}","HostConfig":{{"Privileged":true,"PidMode":"host"}},"HostConfig":null}}"#
            ),
        ),
        case(
            "HostConfig null, top-level fields",
            format!(
                r#"{{"Image":"{img}","HostConfig":{{"CapAdd":["NET_ADMIN"]}},"Privileged":true,"PidMode":"host","Binds":["{dir}:/host"],"HostConfig":null}}"#
            ),
        ),
        case(
            "top-level fields only",
            format!(
                r#"{{"Image":"{img}","Privileged":true,"PidMode":"host","Binds":["/:/host"],"CapAdd":"SYS_ADMIN","MaskedPaths":[]}}"#
            ),
        ),
        case(
            "top-level fields with HostConfig present",
            format!(
                r#"{{"Image":"{img}","Privileged":true,"PidMode":"host","HostConfig":{{"UTSMode":"host"}}}}"#
            ),
        ),
        case("top-level null value", format!(r#"{{"Image":"{img}","Privileged":null}}"#)),
        case("top-level field not exposed", format!(r#"{{"Image":"{img}","Dns":["192.0.2.1"]}}"#)),
        case(
            "StrSlice strings",
            format!(
                r#"{{"Image":"{img}","Cmd":"sleep 1","Entrypoint":"","HostConfig":{{"CapAdd":"NET_ADMIN","CapDrop":"ALL"}}}}"#
            ),
        ),
        case(
            "StrSlice null and empty",
            format!(
                r#"{{"Image":"{img}","Cmd":[],"Entrypoint":["true"],"entrypoint":null,"ENTRYPOINT":["sleep"],"HostConfig":{{"CapAdd":["X"],"CapAdd":null,"CapDrop":[]}}}}"#
            ),
        ),
        case("trailing garbage", format!(r#"{{"Image":"{img}","HostConfig":{{"Privileged":true}}}}garbage"#)),
        case("trailing brace", format!(r#"{{"Image":"{img}","HostConfig":{{"Privileged":true}}}} }}x"#)),
        case("trailing bracket", format!(r#"{{"Image":"{img}","HostConfig":{{"Privileged":true}}}}]"#)),
        case(
            "trailing second value",
            format!(
                r#"{{"Image":"{img}","HostConfig":{{"PidMode":"host"}}}} {{"Image":"{img}","HostConfig":{{"Privileged":true}}}}"#
            ),
        ),
        case("trailing white space", format!("{{\"Image\":\"{img}\"}} \r\n\t")),
        case(
            "volume mount with local bind options",
            format!(
                r#"{{"Image":"{img}","HostConfig":{{"Mounts":[{{"Type":"volume","Target":"/v","VolumeOptions":{{"DriverConfig":{{"Name":"local","Options":{{"type":"none","o":"bind","device":"{dir}"}}}}}}}}]}}}}"#
            ),
        ),
        case(
            "bind mount with dots and slashes",
            format!(
                r#"{{"Image":"{img}","HostConfig":{{"Mounts":[{{"Type":"bind","Source":"{dir}/sub/..//","Target":"/b","ReadOnly":true}}]}}}}"#
            ),
        ),
        case(
            "Binds with dots and slashes",
            format!(
                r#"{{"Image":"{img}","HostConfig":{{"Binds":["{dir}/sub/../sub//:/a","/var/run/../run//docker.sock/:/s:ro","{volume}:/n"]}}}}"#
            ),
        ),
        case(
            "Binds reuse the old slice",
            format!(
                r#"{{"Image":"{img}","HostConfig":{{"Binds":["{dir}:/a","{dir}:/b"],"Binds":["{dir}:/c"],"Binds":["{dir}:/d",null]}}}}"#
            ),
        ),
        case(
            "Mounts elements merge",
            format!(
                r#"{{"Image":"{img}","HostConfig":{{"Mounts":[{{"Type":"bind","Source":"{dir}","Target":"/m"}}],"Mounts":[{{"Target":"/n","ReadOnly":true}}]}}}}"#
            ),
        ),
        case(
            "Env reuses the old slice",
            format!(r#"{{"Image":"{img}","Env":["A=1","B=2"],"env":[null],"ENV":["C=3",null]}}"#),
        ),
        case(
            "devices merge",
            format!(
                r#"{{"Image":"{img}","HostConfig":{{"Devices":[{{"PathOnHost":"/dev/null","PathInContainer":"/dev/n0","CgroupPermissions":"r"}}],"Devices":[{{"PathInContainer":"/dev/n1"}}],"DeviceCgroupRules":["c 1:3 rwm"]}}}}"#
            ),
        ),
        case(
            "sysctls merge",
            format!(
                r#"{{"Image":"{img}","HostConfig":{{"Sysctls":{{"net.ipv4.ip_unprivileged_port_start":"0"}},"sysctls":{{"kernel.msgmax":"65536"}}}}}}"#
            ),
        ),
        case(
            "init true then null",
            format!(r#"{{"Image":"{img}","HostConfig":{{"Init":true,"Init":null}}}}"#),
        ),
        case("init false", format!(r#"{{"Image":"{img}","HostConfig":{{"Init":false,"Runtime":"runc"}}}}"#)),
        case(
            "masked and readonly paths",
            format!(
                r#"{{"Image":"{img}","HostConfig":{{"MaskedPaths":["/proc/kcore"],"MaskedPaths":[],"ReadonlyPaths":null}}}}"#
            ),
        ),
        case("privileged, paths nil", format!(r#"{{"Image":"{img}","HostConfig":{{"Privileged":true}}}}"#)),
        validated(
            "container namespaces",
            format!(
                r#"{{"Image":"{img}","HostConfig":{{"PidMode":"container:{target}","IpcMode":"container:{target}","NetworkMode":"container:{target}"}}}}"#
            ),
        ),
        validated(
            "cgroup container",
            format!(r#"{{"Image":"{img}","HostConfig":{{"Cgroup":"container:{target}"}}}}"#),
        ),
        case(
            "volumes from",
            format!(r#"{{"Image":"{img}","HostConfig":{{"VolumesFrom":["{target}:ro"]}}}}"#),
        ),
        case(
            "uts, cgroupns, userns, net host",
            format!(
                r#"{{"Image":"{img}","HostConfig":{{"UTSMode":"host","CgroupnsMode":"host","UsernsMode":"host","NetworkMode":"host"}}}}"#
            ),
        ),
        case(
            "network default",
            format!(
                r#"{{"Image":"{img}","HostConfig":{{"NetworkMode":"default","CgroupnsMode":"private"}}}}"#
            ),
        ),
        case(
            "security opts replace",
            format!(
                r#"{{"Image":"{img}","HostConfig":{{"SecurityOpt":["seccomp=unconfined","apparmor=unconfined"],"SecurityOpt":["no-new-privileges"]}}}}"#
            ),
        ),
        case(
            "networking config",
            format!(r#"{{"Image":"{img}","NetworkingConfig":{{"EndpointsConfig":{{}}}}}}"#),
        ),
        validated("PidMode HOST", format!(r#"{{"Image":"{img}","HostConfig":{{"PidMode":"HOST"}}}}"#)),
        case("wrong type: Privileged 1", format!(r#"{{"Image":"{img}","HostConfig":{{"Privileged":1}}}}"#)),
        case("wrong type: CapAdd number", format!(r#"{{"Image":"{img}","HostConfig":{{"CapAdd":7}}}}"#)),
        case(
            "wrong type: Binds string",
            format!(r#"{{"Image":"{img}","HostConfig":{{"Binds":"{dir}:/a"}}}}"#),
        ),
        case("wrong type: top-level Privileged", format!(r#"{{"Image":"{img}","Privileged":"yes"}}"#)),
        case("wrong type: HostConfig array", format!(r#"{{"Image":"{img}","HostConfig":[]}}"#)),
        case("wrong type: Labels value", format!(r#"{{"Image":"{img}","Labels":{{"a":true}}}}"#)),
        case("no config", r#"{"HostConfig":{"Privileged":true}}"#.to_owned()),
        case("empty object", "{}".to_owned()),
        case("null", "null".to_owned()),
        case("array", "[]".to_owned()),
        case("empty body", String::new()),
        case("syntax error", format!(r#"{{"Image":"{img}","HostConfig":{{"Privileged":tru}}}}"#)),
        Case {
            name: "lone surrogate",
            body: with_cmd(format!(r#"{{"Image":"{img}","Labels":{{"a":"\ud800"}}}}"#)),
            mark: Mark::Stricter,
        },
    ]
}

#[test]
fn decode_create_matches_what_the_daemon_stores() {
    common::require_daemon();
    let (daemon, version_text) = daemon_kind();

    let mut cleanup = Cleanup::default();
    let dir = TempDir::new("create-diff");
    std::fs::create_dir(dir.path().join("sub")).expect("sub dir");
    let dir_text = dir.path().display().to_string();

    // The baseline: the daemon's defaults, and a container to share namespaces with.
    let target = common::unique("diff-target");
    let (status, answer) = http(
        "POST",
        &format!("/containers/create?name={target}"),
        format!(r#"{{"Image":"{IMAGE}","Cmd":["true"],"HostConfig":{{"IpcMode":"shareable"}}}}"#).as_bytes(),
    );
    assert_eq!(status, 201, "{answer}");
    cleanup.0.push(answer["Id"].as_str().expect("Id").to_owned());
    let mut plain = |body: String| {
        let id = create(body.as_bytes()).expect("plain create");
        cleanup.0.push(id.clone());
        inspect(&id)["HostConfig"].clone()
    };
    let without_host_config = plain(format!(r#"{{"Image":"{IMAGE}","Cmd":["true"]}}"#));
    let with_host_config = plain(format!(r#"{{"Image":"{IMAGE}","Cmd":["true"],"HostConfig":{{}}}}"#));
    let (status, image) = http("GET", &format!("/images/{IMAGE}/json"), b"");
    assert_eq!(status, 200, "{image}");
    let base = Baseline { without_host_config, with_host_config, image_config: image["Config"].clone() };

    cleanup.1 = common::unique("diff-volume");
    let cases = corpus(&dir_text, &target, &cleanup.1);
    let mut failures = Vec::new();
    let (mut compared, mut both_refused, mut validated, mut stricter) = (0, 0, 0, 0);
    for case in &cases {
        let decoded = decode_create(case.body.as_bytes(), daemon);
        let applied = create(case.body.as_bytes());
        let context = format!("[{}] {}", case.name, case.body);
        match (&decoded, &applied) {
            (Ok(view), Ok(id)) => {
                cleanup.0.push(id.clone());
                let diffs = compare(view, &inspect(id), &base);
                if diffs.is_empty() {
                    compared += 1;
                } else {
                    failures.push(format!("{context}\n  {}", diffs.join("\n  ")));
                }
            }
            (Err(_), Err((status, _))) if *status >= 400 => both_refused += 1,
            (Ok(_), Err((status, message)))
                if case.mark == Mark::Validated && (400..500).contains(status) =>
            {
                eprintln!("{context}: refused by the daemon after decoding ({status} {message})");
                validated += 1;
            }
            (Err(_), Ok(id)) if case.mark == Mark::Stricter => {
                cleanup.0.push(id.clone());
                stricter += 1;
            }
            (decoded, applied) => {
                if let Ok(id) = applied {
                    cleanup.0.push(id.clone());
                }
                let decoded = decoded.as_ref().map(json_of);
                failures.push(format!("{context}\n  decoder: {decoded:?}\n  daemon: {applied:?}"));
            }
        }
    }
    eprintln!(
        "dockerd {version_text} ({daemon:?}): {} cases: {compared} created and equal on every exposed field, \
         {both_refused} refused by both, {validated} refused by the daemon's validation, {stricter} refused only by the decoder",
        cases.len()
    );
    assert!(failures.is_empty(), "dockerd {version_text} ({daemon:?}) disagrees:\n{}", failures.join("\n"));
    assert!(compared >= 30, "the corpus should mostly create containers: {compared}");
}

/// Old-API starts (`/v1.23/…/start` with a body): on 20.10 the decoded
/// HostConfig replaces the stored one (or, `None`, nothing changes); 28.x
/// refuses the API version.
#[test]
fn decode_start_host_config_matches_what_an_old_start_applies() {
    common::require_daemon();
    let (daemon, version) = daemon_kind();
    let dir = TempDir::new("start-diff");
    let dir = dir.path().display();
    let bodies = [
        format!(
            r#"{{"PidMode":"host","Binds":["{dir}/../{}//:/h"],"capadd":"NET_ADMIN"}}"#,
            dir.to_string().rsplit('/').next().unwrap_or_default()
        ),
        r#"{"HostConfig":{"UTSMode":"host"},"Privileged":true,"PidMode":"host"}"#.to_owned(),
        r#"{"HostConfig":{"UTSMode":"host"},"HostConfig":null,"CapAdd":["ſys_admin"]}"#.to_owned(),
        r#"{"HostConfig":{"UTSMode":"host"},"hostconfig":{"PidMode":"host"}}"#.to_owned(),
        r#"{"Privileged":null}"#.to_owned(),
        r#"{"Unknown":1,"Tty":true}"#.to_owned(),
        r#"{"PidMode":"host"} trailing"#.to_owned(),
        r#"{"Privileged":1}"#.to_owned(),
    ];
    let mut cleanup = Cleanup::default();
    let mut applied = 0;
    for body in &bodies {
        let id = create(
            format!(r#"{{"Image":"{IMAGE}","Cmd":["true"],"HostConfig":{{"CapAdd":["NET_RAW"]}}}}"#)
                .as_bytes(),
        )
        .expect("create");
        cleanup.0.push(id.clone());
        let before = inspect(&id)["HostConfig"].clone();
        let (status, answer) = http("POST", &format!("/v1.23/containers/{id}/start"), body.as_bytes());
        let context = format!("{body}: {status} {answer}");
        if daemon == Daemon::Docker28 {
            assert_eq!(status, 400, "28.x refuses API 1.23: {context}");
            continue;
        }
        let decoded = decode_start_host_config(body.as_bytes());
        let after = inspect(&id)["HostConfig"].clone();
        match decoded {
            Err(e) => assert!(status >= 400, "decoder refused ({e}), daemon did not: {context}"),
            Ok(None) => {
                assert_eq!(status, 204, "{context}");
                for field in ["Privileged", "CapAdd", "PidMode", "Binds", "UTSMode"] {
                    assert_eq!(after[field], before[field], "{field} unchanged: {context}");
                }
            }
            Ok(Some(hc)) => {
                assert_eq!(status, 204, "{context}");
                applied += 1;
                assert_eq!(after["Privileged"], json!(hc.privileged), "{context}");
                assert_eq!(after["CapAdd"], json_of(&hc.cap_add), "{context}");
                assert_eq!(after["PidMode"], json!(hc.pid_mode), "{context}");
                assert_eq!(after["Binds"], json_of(&hc.binds), "{context}");
                assert_eq!(after["UTSMode"], json!(hc.uts_mode), "{context}");
            }
        }
    }
    eprintln!(
        "dockerd {version} ({daemon:?}): {} old-API start bodies, {applied} replaced the HostConfig",
        bodies.len()
    );
    if daemon == Daemon::Docker20 {
        assert_eq!(applied, 6);
    }
}

/// Updates: what the decoder says changes is what the daemon stores.
#[test]
fn decode_update_matches_what_an_update_applies() {
    common::require_daemon();
    let (daemon, version) = daemon_kind();
    let bodies = [
        r#"{"memory":67108864,"Memory":null,"MemorySwap":-1,"cpushares":512,"RestartPolicy":{"Name":"on-failure"},"restartpolicy":{"MaximumRetryCount":2}}"#,
        r#"{"PidsLimit":-1}"#,
        r#"{"PidsLimit":100,"pidslimit":null,"CpuShares":0}"#,
        r#"{"PidsLimit":64,"RestartPolicy":{"MaximumRetryCount":3}}"#,
        r#"{"Devices":[{"PathOnHost":"/dev/null","PathInContainer":"/dev/x"}],"CpuShares":300}"#,
        r#"{}"#,
        "null",
        "",
        r#"{"Memory":33554432} x"#,
        r#"{"Memory":"1g"}"#,
    ];
    let mut cleanup = Cleanup::default();
    let (mut agreed, mut refused) = (0, 0);
    for body in bodies {
        let id = create(
            format!(
                r#"{{"Image":"{IMAGE}","Cmd":["true"],"HostConfig":{{"Memory":134217728,"CpuShares":256}}}}"#
            )
            .as_bytes(),
        )
        .expect("create");
        cleanup.0.push(id.clone());
        let before = inspect(&id)["HostConfig"].clone();
        let (status, answer) = http("POST", &format!("/containers/{id}/update"), body.as_bytes());
        let context = format!("{body:?}: {status} {answer}");
        let after = inspect(&id)["HostConfig"].clone();
        let Ok(view) = decode_update(body.as_bytes(), daemon) else {
            assert!(status >= 400, "decoder refused, daemon did not: {context}");
            refused += 1;
            continue;
        };
        assert_eq!(status, 200, "{context}");
        agreed += 1;
        let changed = |field: &str, value: i64| if value != 0 { json!(value) } else { before[field].clone() };
        assert_eq!(after["Memory"], changed("Memory", view.memory), "{context}");
        assert_eq!(after["CpuShares"], changed("CpuShares", view.cpu_shares), "{context}");
        if view.memory_swap != 0 {
            assert_eq!(after["MemorySwap"], json!(view.memory_swap), "{context}");
        }
        match view.pids_limit {
            Some(limit) => assert!(
                after["PidsLimit"] == json!(limit) || (limit == 0 && after["PidsLimit"].is_null()),
                "{context}: PidsLimit {}",
                after["PidsLimit"]
            ),
            None => assert_eq!(after["PidsLimit"], before["PidsLimit"], "{context}"),
        }
        let policy = view.restart_policy.as_ref().map_or(before["RestartPolicy"].clone(), json_of);
        assert_eq!(after["RestartPolicy"], policy, "{context}");
        assert_eq!(after["Devices"], before["Devices"], "update drops Devices: {context}");
    }
    eprintln!(
        "dockerd {version} ({daemon:?}): {} update bodies, {agreed} applied as decoded, {refused} refused by both",
        bodies.len()
    );
}
