//! The audit trail under faults, against the real daemon: a client that dies,
//! a daemon that dies, shutdown with live sessions, a killed execgate, load,
//! and an audit disk that fills up. Every test ends with `audit verify`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{
    Container, Gate, IMAGE, TempDir, Tmpfs, direct_docker, docker_sock, fill, frames, log_lines, ok_stdout,
    read_response, read_until, records, start_request, unique, verify_ok, wait_record,
};

// ---------------------------------------------------------------------------
// Reading the trail back

/// The id of the allowed exec whose command mentions `marker`.
fn exec_id_of(dir: &Path, marker: &str) -> String {
    let start = wait_record(dir, &format!("allowed exec.start for {marker}"), Duration::from_secs(20), |r| {
        r["event"] == "exec.start"
            && r["decision"] == "allow"
            && r["command"]
                .as_array()
                .is_some_and(|c| c.iter().any(|a| a.as_str().is_some_and(|a| a.contains(marker))))
    });
    start["exec_id"].as_str().expect("exec_id").to_owned()
}

/// The exec.end of `exec_id`, once it is written.
fn end_of(dir: &Path, exec_id: &str, within: Duration) -> Value {
    wait_record(dir, &format!("exec.end for {exec_id}"), within, |r| {
        r["event"] == "exec.end" && r["exec_id"] == exec_id
    })
}

/// How many exec.end records `exec_id` has.
fn ends_of(dir: &Path, exec_id: &str) -> usize {
    records(dir).iter().filter(|r| r["event"] == "exec.end" && r["exec_id"] == exec_id).count()
}

// ---------------------------------------------------------------------------
// Processes

/// Sends `signal` to `pid`.
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().expect("kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// A thread that forwards the lines of `out`.
fn lines_of(out: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for the line `want` (a session is streaming once its output arrives).
fn wait_line(rx: &mpsc::Receiver<String>, want: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line == want => return,
            Ok(_) => {}
            Err(err) => panic!("line {want:?} did not arrive within {within:?}: {err}"),
        }
    }
}

/// A child process killed and reaped on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `docker exec` through `gate` with stdout piped (stdin piped too when `-i` is asked).
fn spawn_exec(host: &str, args: &[&str]) -> (Reaped, mpsc::Receiver<String>) {
    let mut child = Command::new("docker")
        .env("DOCKER_HOST", host)
        .arg("exec")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn docker exec");
    let lines = lines_of(child.stdout.take().expect("stdout"));
    (Reaped(child), lines)
}

// ---------------------------------------------------------------------------
// 1. The client dies mid-session

#[test]
fn a_killed_client_ends_its_session_as_client_hangup() {
    common::require_daemon();
    let audit = TempDir::new("hangup-audit");
    let gate = Gate::start_with(Path::new(docker_sock()), &["--audit-dir", &audit.path().to_string_lossy()]);
    let c = Container::run("hangup", &[]);
    let marker = unique("hangup");
    // After the client dies the daemon sees stdin's EOF, the process prints
    // once more and ends: that write is what finds the client gone.
    let script = format!("echo ready-{marker}; cat >/dev/null; echo done-{marker}");
    let (mut cli, lines) = spawn_exec(&gate.host(), &["-i", &c.name, "sh", "-c", &script]);
    wait_line(&lines, &format!("ready-{marker}"), Duration::from_secs(20));
    let exec_id = exec_id_of(&gate.audit, &marker);
    assert_eq!(ends_of(&gate.audit, &exec_id), 0, "the session ended before the client was killed");

    cli.0.kill().expect("SIGKILL the docker CLI");
    cli.0.wait().expect("reap the docker CLI");

    let end = end_of(&gate.audit, &exec_id, Duration::from_secs(20));
    assert_eq!(end["reason"], "client_hangup", "{end}");
    // The process itself ended normally once its stdin closed.
    assert_eq!(end["exit_code"], 0, "{end}");
    assert_eq!(end["output_captured"], true, "{end}");
    assert!(
        end["bytes"]["stdout"].as_u64().unwrap_or(0) >= format!("ready-{marker}\n").len() as u64,
        "{end}"
    );
    let path = end["recording"]["path"].as_str().expect("recording path");
    let recording = std::fs::read_to_string(gate.audit.join(path)).expect("recording");
    assert!(recording.contains(&format!("ready-{marker}")), "{recording}");
    assert_eq!(ends_of(&gate.audit, &exec_id), 1);
    // The gate still serves.
    ok_stdout(&gate.run(&["version"]));
    verify_ok(&gate.audit);
}

// ---------------------------------------------------------------------------
// 2. The daemon dies mid-session

/// A dockerd of this test's own: socket, data, state and cgroups in a temp dir.
/// Drop kills it and everything it left running, and unmounts what it mounted.
struct PrivateDaemon {
    child: Option<Child>,
    socket: PathBuf,
    base: PathBuf,
    cgroup_parent: String,
    log: PathBuf,
}

impl PrivateDaemon {
    fn start() -> Self {
        let base = std::env::temp_dir().join(unique("privd"));
        std::fs::create_dir_all(&base).expect("private daemon dir");
        let socket = base.join("d.sock");
        let log = base.join("dockerd.log");
        let cgroup_parent = format!("/{}", unique("privd"));
        // Its own network namespace: with `--bridge none` dockerd deletes any
        // `docker0` it sees, and the host's belongs to the main daemon.
        let child = Command::new("unshare")
            .args(["--net", "--", "dockerd"])
            .arg("--host")
            .arg(format!("unix://{}", socket.display()))
            .arg("--data-root")
            .arg(base.join("data"))
            .arg("--exec-root")
            .arg(base.join("exec"))
            .arg("--pidfile")
            .arg(base.join("d.pid"))
            .args(["--bridge", "none", "--iptables=false", "--ip6tables=false"])
            .args(["--cgroup-parent", &cgroup_parent])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("dockerd log"))
            .spawn()
            .expect("spawn dockerd");
        let daemon = PrivateDaemon { child: Some(child), socket, base, cgroup_parent, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !daemon.docker().arg("version").output().is_ok_and(|o| o.status.success()) {
            assert!(
                Instant::now() < deadline,
                "a second dockerd did not start within 60 s; its log:\n{}",
                std::fs::read_to_string(&daemon.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let loaded = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "docker -H unix://{} save {IMAGE} | docker -H unix://{} load",
                docker_sock(),
                daemon.socket.display()
            ))
            .output()
            .expect("image save | load");
        ok_stdout(&loaded);
        daemon
    }

    fn docker(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_HOST", format!("unix://{}", self.socket.display()));
        cmd
    }

    /// SIGKILLs dockerd (its containerd follows; shims and containers stay).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Processes whose command line names this daemon's directory (its
    /// containerd and shims), and every descendant of those.
    fn leftover_processes(&self) -> Vec<u32> {
        let needle = self.base.to_string_lossy().into_owned();
        let mut roots = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().filter_map(|e| e.ok()) {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&needle) {
                roots.push(pid);
            }
        }
        let mut all = Vec::new();
        while let Some(pid) = roots.pop() {
            if all.contains(&pid) {
                continue;
            }
            all.push(pid);
            for task in
                std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().filter_map(|e| e.ok())
            {
                let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
                roots.extend(children.split_whitespace().filter_map(|s| s.parse::<u32>().ok()));
            }
        }
        all
    }

    /// This daemon's container cgroups (cgroup v1 and v2 layouts).
    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let parent = self.cgroup_parent.trim_start_matches('/');
        let mut dirs = vec![Path::new("/sys/fs/cgroup").join(parent)];
        for entry in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().filter_map(|e| e.ok()) {
            dirs.push(entry.path().join(parent));
        }
        dirs.retain(|d| d.is_dir());
        dirs
    }
}

impl Drop for PrivateDaemon {
    fn drop(&mut self) {
        self.kill();
        // Container processes first (by their cgroups), then shims and containerd.
        for dir in self.cgroup_dirs() {
            for sub in std::fs::read_dir(&dir).into_iter().flatten().filter_map(|e| e.ok()) {
                let procs = std::fs::read_to_string(sub.path().join("cgroup.procs")).unwrap_or_default();
                for pid in procs.split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).stderr(Stdio::null()).status();
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = self.leftover_processes();
            if left.is_empty() || Instant::now() > deadline {
                break;
            }
            for pid in left {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).stderr(Stdio::null()).status();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Unmount everything under the base, deepest first.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let base = self.base.to_string_lossy().into_owned();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|p| p.starts_with(&base))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for point in points {
            let _ = Command::new("umount").args(["-l", point]).stderr(Stdio::null()).status();
        }
        // Empty cgroups can go once their processes are gone.
        for dir in self.cgroup_dirs() {
            for sub in std::fs::read_dir(&dir).into_iter().flatten().filter_map(|e| e.ok()) {
                if sub.path().is_dir() {
                    for _ in 0..50 {
                        if std::fs::remove_dir(sub.path()).is_ok() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
            let _ = std::fs::remove_dir(&dir);
        }
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

#[test]
fn a_daemon_killed_mid_session_ends_it_as_daemon_error() {
    common::require_daemon();
    let mut daemon = PrivateDaemon::start();
    let name = unique("privd-c");
    ok_stdout(
        &daemon
            .docker()
            .args([
                "run",
                "-d",
                "--network",
                "none",
                "--user",
                "app",
                "--name",
                &name,
                IMAGE,
                "sleep",
                "3600",
            ])
            .output()
            .expect("docker run on the private daemon"),
    );
    let audit = TempDir::new("daemon-audit");
    let gate = Gate::start_with(&daemon.socket, &["--audit-dir", &audit.path().to_string_lossy()]);
    let marker = unique("daemon");
    let script = format!("echo started-{marker}; sleep 60");
    let (_cli, lines) = spawn_exec(&gate.host(), &[&name, "sh", "-c", &script]);
    wait_line(&lines, &format!("started-{marker}"), Duration::from_secs(20));
    let exec_id = exec_id_of(&gate.audit, &marker);
    assert_eq!(ends_of(&gate.audit, &exec_id), 0);

    daemon.kill();

    let end = end_of(&gate.audit, &exec_id, Duration::from_secs(20));
    assert_eq!(end["reason"], "daemon_error", "{end}");
    assert_eq!(end["exit_code"], Value::Null, "no exit code can be known: {end}");
    assert!(end["recording"]["path"].is_string(), "the recording is still closed and named: {end}");
    assert_eq!(ends_of(&gate.audit, &exec_id), 1);
    verify_ok(&gate.audit);
}

// ---------------------------------------------------------------------------
// 3. SIGTERM with a session that outlives the grace period

#[test]
fn sigterm_past_the_grace_cuts_sessions_as_proxy_shutdown_and_anchors_the_head() {
    common::require_daemon();
    let audit = TempDir::new("shutdown-audit");
    let audit_dir = audit.path().to_string_lossy().into_owned();
    let serve =
        Gate::start_with(Path::new(docker_sock()), &["--audit-dir", &audit_dir, "--shutdown-grace", "1"]);
    let c = Container::run("shutdown", &[]);
    let marker = unique("shutdown");
    let script = format!("echo started-{marker}; sleep 30");
    let (_cli, lines) = spawn_exec(&serve.host(), &[&c.name, "sh", "-c", &script]);
    wait_line(&lines, &format!("started-{marker}"), Duration::from_secs(20));
    let exec_id = exec_id_of(audit.path(), &marker);

    let signalled = Instant::now();
    signal(serve.pid(), "TERM");
    let log = serve.log.clone();
    let code = serve.wait_exit(Duration::from_secs(15));
    let took = signalled.elapsed();
    assert_eq!(code, Some(0), "log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    assert!(took < Duration::from_secs(10), "shutdown took {took:?} with a 1 s grace");

    let end = end_of(audit.path(), &exec_id, Duration::ZERO);
    assert_eq!(end["reason"], "proxy_shutdown", "{end}");
    assert_eq!(ends_of(audit.path(), &exec_id), 1);
    let report = verify_ok(audit.path());

    // The last anchor is the shutdown's, and it pins the head of the log.
    let (file, last) = log_lines(audit.path()).pop().expect("a log line");
    let head: Value = serde_json::from_str(&last).expect("json");
    let anchors = std::fs::read_to_string(audit.path().join("anchors.jsonl")).expect("anchors file");
    let anchor: Value =
        serde_json::from_str(anchors.lines().last().expect("an anchor")).expect("anchor json");
    assert_eq!(anchor["reason"], "shutdown", "{anchors}");
    assert_eq!(anchor["seq"], head["seq"], "{anchors}");
    assert_eq!(anchor["file"], file.as_str(), "{anchors}");
    assert_eq!(anchor["hash"].as_str(), Some(common::sha256_hex(last.as_bytes()).as_str()), "{anchors}");
    assert!(
        report.contains(&format!("head seq {} {}", head["seq"], common::sha256_hex(last.as_bytes()))),
        "{report}"
    );
}

// ---------------------------------------------------------------------------
// 4. execgate SIGKILLed mid-session

#[test]
fn a_session_left_open_by_a_killed_execgate_is_closed_as_incomplete_on_restart() {
    common::require_daemon();
    let audit = TempDir::new("killed-audit");
    let dir = audit.path().to_string_lossy().into_owned();
    let c = Container::run("killed", &[]);
    let marker = unique("killed");
    let exec_id = {
        let gate = Gate::start_with(Path::new(docker_sock()), &["--audit-dir", &dir]);
        let script = format!("echo started-{marker}; sleep 30");
        let (_cli, lines) = spawn_exec(&gate.host(), &[&c.name, "sh", "-c", &script]);
        wait_line(&lines, &format!("started-{marker}"), Duration::from_secs(20));
        let exec_id = exec_id_of(audit.path(), &marker);
        signal(gate.pid(), "KILL");
        assert_eq!(gate.wait_exit(Duration::from_secs(10)), None, "killed by a signal, not exited");
        exec_id
    };
    assert_eq!(ends_of(audit.path(), &exec_id), 0, "a SIGKILLed execgate cannot have ended the session");

    let gate = Gate::start_with(Path::new(docker_sock()), &["--audit-dir", &dir]);
    let end = end_of(audit.path(), &exec_id, Duration::from_secs(10));
    assert_eq!(end["reason"], "incomplete", "{end}");
    assert_eq!(end["exit_code"], Value::Null, "{end}");
    assert_eq!(ends_of(audit.path(), &exec_id), 1);
    // The restart's checkpoint named the session it found open.
    let all = records(audit.path());
    let restart = all
        .iter()
        .rfind(|r| r["event"] == "audit.checkpoint" && r["reason"] == "start")
        .expect("a start checkpoint");
    assert!(
        restart["open_sessions"].as_array().is_some_and(|o| o.iter().any(|id| id == exec_id.as_str())),
        "{restart}"
    );
    // The new gate works on the same trail.
    assert_eq!(ok_stdout(&gate.run(&["exec", &c.name, "echo", "after-restart"])), "after-restart\n");
    verify_ok(audit.path());
}

// ---------------------------------------------------------------------------
// 5. Load

/// One exec over raw HTTP through the gate: create, then an upgraded start on
/// the same connection, read to EOF. Returns (exec id, stdout).
fn raw_exec(socket: &Path, container: &str, n: usize) -> (String, String) {
    let mut stream = UnixStream::connect(socket).expect("connect to execgate");
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let body = format!(r#"{{"AttachStdout":true,"AttachStderr":true,"Cmd":["sh","-c","echo {n}"]}}"#);
    let create = format!(
        "POST /v1.41/containers/{container}/exec HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(create.as_bytes()).expect("write create");
    let (head, answer) = read_response(&mut stream);
    assert!(head.starts_with("HTTP/1.1 201"), "exec {n} create: {head}{}", String::from_utf8_lossy(&answer));
    let value: Value = serde_json::from_slice(&answer).expect("create answer");
    let id = value["Id"].as_str().expect("Id").to_owned();
    let start = start_request("/v1.41", &id, r#"{"Detach":false,"Tty":false}"#, true);
    stream.write_all(&start).expect("write start");
    let data = read_until(&mut stream, b"\r\n\r\n");
    let split = data.windows(4).position(|w| w == b"\r\n\r\n").expect("start head") + 4;
    let head = String::from_utf8_lossy(&data[..split]).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "exec {n} start: {head}");
    let mut got = data[split..].to_vec();
    stream.read_to_end(&mut got).expect("read the stream");
    let stdout = frames(&got)
        .into_iter()
        .filter(|(s, _)| *s == 1)
        .map(|(_, p)| String::from_utf8_lossy(&p).into_owned())
        .collect();
    (id, stdout)
}

#[test]
fn five_hundred_execs_fifty_at_a_time_are_each_recorded_once() {
    const TOTAL: usize = 500;
    const PARALLEL: usize = 50;
    common::require_daemon();
    let audit = TempDir::new("load-audit");
    let gate = Gate::start_with(Path::new(docker_sock()), &["--audit-dir", &audit.path().to_string_lossy()]);
    let c = Container::run("load", &[]);
    let socket = Arc::new(gate.socket.clone());
    let name = Arc::new(c.name.clone());
    let next = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(Vec::with_capacity(TOTAL)));
    let started = Instant::now();
    let workers: Vec<_> = (0..PARALLEL)
        .map(|_| {
            let (socket, name, next, results) = (socket.clone(), name.clone(), next.clone(), results.clone());
            std::thread::spawn(move || {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= TOTAL {
                        break;
                    }
                    let (id, stdout) = raw_exec(&socket, &name, n);
                    results.lock().expect("results").push((n, id, stdout));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a worker failed");
    }
    let ran = started.elapsed();
    let results = std::mem::take(&mut *results.lock().expect("results"));
    assert_eq!(results.len(), TOTAL);
    for (n, _, stdout) in &results {
        assert_eq!(stdout, &format!("{n}\n"), "exec {n}");
    }
    let ids: BTreeSet<String> = results.iter().map(|(_, id, _)| id.clone()).collect();
    assert_eq!(ids.len(), TOTAL, "exec ids are not distinct");

    // exec.end is written after the stream closes: wait for the last ones.
    let deadline = Instant::now() + Duration::from_secs(30);
    let all = loop {
        let all = records(audit.path());
        if all.iter().filter(|r| r["event"] == "exec.end").count() >= TOTAL || Instant::now() > deadline {
            break all;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let recorded = started.elapsed();
    let starts: Vec<&Value> = all.iter().filter(|r| r["event"] == "exec.start").collect();
    let ends: Vec<&Value> = all.iter().filter(|r| r["event"] == "exec.end").collect();
    assert_eq!(starts.len(), TOTAL);
    assert!(starts.iter().all(|r| r["decision"] == "allow"));
    assert_eq!(
        starts.iter().map(|r| r["exec_id"].as_str().expect("id").to_owned()).collect::<BTreeSet<_>>(),
        ids
    );
    assert_eq!(all.iter().filter(|r| r["event"] == "exec.create" && r["decision"] == "allow").count(), TOTAL);
    assert_eq!(ends.len(), TOTAL, "exec.end records");
    let mut by_id: BTreeMap<String, &Value> = BTreeMap::new();
    for end in &ends {
        assert_eq!(end["reason"], "exited", "{end}");
        assert_eq!(end["exit_code"], 0, "{end}");
        let path = end["recording"]["path"].as_str().unwrap_or_else(|| panic!("no recording: {end}"));
        assert!(audit.path().join(path).is_file(), "recording {path} missing");
        by_id.insert(end["exec_id"].as_str().expect("id").to_owned(), end);
    }
    assert_eq!(by_id.keys().cloned().collect::<BTreeSet<_>>(), ids, "one exec.end per exec");
    verify_ok(audit.path());
    println!(
        "{TOTAL} execs, {PARALLEL} at a time: streams done in {ran:.2?}, all recorded in {recorded:.2?}"
    );
}

// ---------------------------------------------------------------------------
// 6. The audit disk fills up

#[test]
fn a_full_audit_disk_denies_execs_but_not_other_calls_and_recovers() {
    common::require_daemon();
    let tmpfs = Tmpfs::mount("256k");
    let gate = Gate::start_with(Path::new(docker_sock()), &["--audit-dir", &tmpfs.mount.to_string_lossy()]);
    let c = Container::run("full", &[]);
    assert_eq!(ok_stdout(&gate.run(&["exec", &c.name, "echo", "before"])), "before\n");

    let filler = tmpfs.mount.join("filler");
    fill(&filler);
    // The env makes the exec's record larger than a page, so it cannot slip
    // into the slack at the end of the log file's last page.
    let marker = unique("full");
    let pad = format!("EG_PAD={}", "x".repeat(6000));
    let out = gate.run(&["exec", "-e", &pad, &c.name, "sh", "-c", &format!("touch /tmp/{marker}")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exec ran with a full audit disk: {stderr}");
    assert!(stderr.contains("execgate: audit log unavailable:"), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    // The daemon never ran it.
    let ran = direct_docker().args(["exec", &c.name, "test", "-e", &format!("/tmp/{marker}")]).status();
    assert!(!ran.expect("docker exec test").success(), "the denied exec ran");
    // Calls that need no record still pass.
    assert!(ok_stdout(&gate.run(&["ps", "--format", "{{.Names}}"])).lines().any(|n| n == c.name));
    assert!(gate.log_text().contains("audit log unavailable"), "{}", gate.log_text());

    std::fs::remove_file(&filler).expect("remove filler");
    assert_eq!(ok_stdout(&gate.run(&["exec", "-e", &pad, &c.name, "echo", "after"])), "after\n");
    assert!(gate.log_text().contains("audit log writable again"), "{}", gate.log_text());
    verify_ok(&tmpfs.mount);
}

// ---------------------------------------------------------------------------
// Regressions: each of these failed before its fix.

#[test]
fn a_client_killed_during_a_quiet_session_is_recorded_as_client_hangup() {
    common::require_daemon();
    let audit = TempDir::new("quiet-audit");
    let gate = Gate::start_with(Path::new(docker_sock()), &["--audit-dir", &audit.path().to_string_lossy()]);
    let c = Container::run("quiet", &[]);
    let marker = unique("quiet");
    // Nothing is written after stdin closes, so no write ever fails on the dead client.
    let script = format!("echo ready-{marker}; cat >/dev/null; sleep 1");
    let (mut cli, lines) = spawn_exec(&gate.host(), &["-i", &c.name, "sh", "-c", &script]);
    wait_line(&lines, &format!("ready-{marker}"), Duration::from_secs(20));
    let exec_id = exec_id_of(&gate.audit, &marker);
    cli.0.kill().expect("SIGKILL the docker CLI");
    cli.0.wait().expect("reap the docker CLI");
    let end = end_of(&gate.audit, &exec_id, Duration::from_secs(20));
    assert_eq!(end["reason"], "client_hangup", "the client was SIGKILLed mid-session: {end}");
    verify_ok(&gate.audit);
}

/// Recordings under `audit`'s sessions dir that process `pid` holds open.
fn open_recordings(pid: u32, audit: &Path) -> Vec<PathBuf> {
    let sessions = audit.join("sessions");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|target| target.starts_with(&sessions))
        .collect()
}

#[test]
fn a_client_gone_before_the_upgrade_still_gets_an_exec_end() {
    common::require_daemon();
    let audit = TempDir::new("early-audit");
    let gate = Gate::start_with(Path::new(docker_sock()), &["--audit-dir", &audit.path().to_string_lossy()]);
    let c = Container::run("early", &[]);
    // Close the client connection at different moments after the start request,
    // from "at once" to "after the 101": some land while the start is in flight.
    for i in 0..60u64 {
        let mut stream = gate.connect();
        let body = r#"{"AttachStdout":true,"AttachStderr":true,"Cmd":["sh","-c","sleep 0.2"]}"#;
        let create = format!(
            "POST /v1.41/containers/{}/exec HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            c.name,
            body.len()
        );
        stream.write_all(create.as_bytes()).expect("write create");
        let (head, answer) = read_response(&mut stream);
        assert!(head.starts_with("HTTP/1.1 201"), "{head}");
        let value: Value = serde_json::from_slice(&answer).expect("create answer");
        let id = value["Id"].as_str().expect("Id");
        let request = start_request("/v1.41", id, r#"{"Detach":false,"Tty":false}"#, true);
        stream.write_all(&request).expect("write start");
        std::thread::sleep(Duration::from_micros(i * 200));
        drop(stream);
    }
    // Some starts must have been allowed, or the check below holds vacuously.
    let allowed = wait_record(audit.path(), "an allowed exec.start", Duration::from_secs(15), |r| {
        r["event"] == "exec.start" && r["decision"] == "allow"
    });
    assert!(allowed["exec_id"].is_string(), "{allowed}");
    // Every allowed start must be ended (the longest session is 0.2 s).
    let deadline = Instant::now() + Duration::from_secs(15);
    let missing = loop {
        let all = records(audit.path());
        let ended: BTreeSet<&str> =
            all.iter().filter(|r| r["event"] == "exec.end").filter_map(|r| r["exec_id"].as_str()).collect();
        let missing: Vec<String> = all
            .iter()
            .filter(|r| r["event"] == "exec.start" && r["decision"] == "allow")
            .filter_map(|r| r["exec_id"].as_str())
            .filter(|id| !ended.contains(id))
            .map(str::to_owned)
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let ran: Vec<&String> = missing
        .iter()
        .filter(|id| {
            let mut s = UnixStream::connect(docker_sock()).expect("daemon");
            let get = format!("GET /v1.41/exec/{id}/json HTTP/1.1\r\nHost: d\r\n\r\n");
            s.write_all(get.as_bytes()).expect("write");
            let (_, body) = read_response(&mut s);
            serde_json::from_slice::<Value>(&body).is_ok_and(|v| v["Pid"].as_u64().unwrap_or(0) != 0)
        })
        .collect();
    let open = open_recordings(gate.pid(), audit.path());
    assert!(
        missing.is_empty() && open.is_empty(),
        "{} allowed exec.start records have no exec.end ({} of those execs did run on the daemon): {missing:?}; \
         recordings still held open by execgate: {open:?}",
        missing.len(),
        ran.len()
    );
}
