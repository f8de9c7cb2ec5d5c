//! The real docker CLI through execgate against the real daemon: every command
//! must behave exactly as it does against the daemon directly.

mod common;

use std::process::Command;

use common::{Container, Gate, IMAGE, TempDir, direct_docker, ok_stdout, unique};

#[test]
fn version_and_ps_match_the_daemon() {
    let gate = Gate::start();
    let c = Container::run("ps", &[]);
    let through =
        ok_stdout(&gate.run(&["version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}"]));
    let direct = ok_stdout(
        &direct_docker()
            .args(["version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}"])
            .output()
            .expect("docker"),
    );
    assert_eq!(through, direct);
    let names = ok_stdout(&gate.run(&["ps", "--format", "{{.Names}}"]));
    assert!(names.lines().any(|n| n == c.name), "{names}");
}

#[test]
fn run_rm_prints_and_removes() {
    let gate = Gate::start();
    let name = unique("runrm");
    let out = ok_stdout(&gate.run(&["run", "--rm", "--name", &name, IMAGE, "echo", "hello from run"]));
    assert_eq!(out, "hello from run\n");
    let ps = ok_stdout(&direct_docker().args(["ps", "-a", "--format", "{{.Names}}"]).output().expect("ps"));
    assert!(!ps.lines().any(|n| n == name), "--rm container still exists");
}

#[test]
fn run_interactive_carries_stdin_through_attach() {
    let gate = Gate::start();
    let out =
        gate.run_stdin(&["run", "--rm", "-i", IMAGE, "sh", "-c", "cat; echo done"], b"attach-in\nline two\n");
    assert_eq!(ok_stdout(&out), "attach-in\nline two\ndone\n");
}

/// Runs `docker …` under a pseudo-terminal (`script`), as a user's shell would.
fn under_pty(gate: &Gate, docker_args: &str) -> (bool, String) {
    let out = Command::new("script")
        .args(["-qec", &format!("docker {docker_args}"), "/dev/null"])
        .env("DOCKER_HOST", gate.host())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn run_and_exec_with_tty() {
    let gate = Gate::start();
    let (ok, out) = under_pty(&gate, &format!("run --rm -t {IMAGE} sh -c 'tty; echo run-tty-ok'"));
    assert!(ok && out.contains("/dev/pts/") && out.contains("run-tty-ok"), "{out}");

    let c = Container::run("tty", &[]);
    let (ok, out) = under_pty(&gate, &format!("exec -t {} sh -c 'tty; echo exec-tty-ok'", c.name));
    assert!(ok && out.contains("/dev/pts/") && out.contains("exec-tty-ok"), "{out}");
    // Exit status crosses a TTY session too.
    let (ok, _) = under_pty(&gate, &format!("exec -t {} sh -c 'exit 3'", c.name));
    assert!(!ok);
}

#[test]
fn exec_interactive_stdin_reaches_eof() {
    let gate = Gate::start();
    let c = Container::run("execi", &[]);
    // `wc -c` prints only after stdin's EOF: the half-close must reach the daemon.
    let out = gate.run_stdin(&["exec", "-i", &c.name, "wc", "-c"], b"twelve bytes");
    assert_eq!(ok_stdout(&out).trim(), "12");
}

#[test]
fn exec_detached_runs_in_background() {
    let gate = Gate::start();
    let c = Container::run("execd", &[]);
    ok_stdout(&gate.run(&["exec", "-d", &c.name, "sh", "-c", "echo detached > /tmp/flag"]));
    let mut seen = String::new();
    for _ in 0..50 {
        seen = String::from_utf8_lossy(&gate.run(&["exec", &c.name, "cat", "/tmp/flag"]).stdout).into_owned();
        if seen == "detached\n" {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("detached exec never wrote its flag: {seen:?}");
}

#[test]
fn exec_env_workdir_and_user() {
    let gate = Gate::start();
    let c = Container::run("execopts", &[]);
    let dir = TempDir::new("envfile");
    let env_file = dir.path().join("env");
    std::fs::write(&env_file, "FROM_FILE=file-value\n# comment\n").expect("env file");
    let out = ok_stdout(&gate.run(&[
        "exec",
        "-e",
        "FROM_FLAG=flag value",
        "--env-file",
        env_file.to_str().expect("utf8 path"),
        "-w",
        "/tmp",
        "-u",
        "app",
        &c.name,
        "sh",
        "-c",
        "echo \"$FROM_FLAG|$FROM_FILE|$(pwd)|$(id -u):$(id -g)\"",
    ]));
    assert_eq!(out, "flag value|file-value|/tmp|1000:1000\n");
    let out = ok_stdout(&gate.run(&["exec", "-u", "65534", &c.name, "id", "-u"]));
    assert_eq!(out, "65534\n");
}

#[test]
fn exec_exit_codes_and_separate_stderr() {
    let gate = Gate::start();
    let c = Container::run("exit", &[]);
    let out = gate.run(&["exec", &c.name, "sh", "-c", "echo to-out; echo to-err >&2; exit 42"]);
    assert_eq!(out.status.code(), Some(42));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "to-out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to-err\n");
    // The daemon's own failure to start the process reaches the CLI, which
    // exits as it does direct (126 on dockerd 20.10, 127 on 28.5).
    let out = gate.run(&["exec", &c.name, "no-such-binary"]);
    let direct = common::direct_docker().args(["exec", &c.name, "no-such-binary"]).output().expect("direct");
    let err = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(matches!(direct.status.code(), Some(126 | 127)), "{direct:?}");
    assert_eq!(out.status.code(), direct.status.code(), "{err}");
    assert!(err.contains("executable file not found"), "{err}");
}

#[test]
fn logs_follow_streams_until_the_container_ends() {
    let gate = Gate::start();
    let name = unique("logs");
    ok_stdout(
        &direct_docker()
            .args([
                "run",
                "-d",
                "--name",
                &name,
                IMAGE,
                "sh",
                "-c",
                "for i in 1 2 3; do echo line$i; sleep 0.3; done",
            ])
            .output()
            .expect("run"),
    );
    let _guard = Container { name: name.clone() };
    let out = ok_stdout(&gate.run(&["logs", "-f", &name]));
    assert_eq!(out, "line1\nline2\nline3\n");
}

#[test]
fn events_within_a_window() {
    let gate = Gate::start();
    let since =
        ok_stdout(&direct_docker().args(["version", "--format", "{{.Server.Version}}"]).output().expect("v"));
    assert!(!since.is_empty());
    let start = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let c = Container::run("events", &[]);
    let until = start + 3;
    std::thread::sleep(
        std::time::Duration::from_secs(until - start).saturating_sub(std::time::Duration::from_millis(500)),
    );
    let out = ok_stdout(&gate.run(&[
        "events",
        "--since",
        &(start - 1).to_string(),
        "--until",
        &until.to_string(),
        "--filter",
        &format!("container={}", c.name),
        "--format",
        "{{.Action}}",
    ]));
    assert!(out.lines().any(|l| l == "start"), "{out}");
}

#[test]
fn cp_both_ways() {
    let gate = Gate::start();
    let c = Container::run("cp", &[]);
    let dir = TempDir::new("cp");
    let local = dir.path().join("payload.bin");
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&local, &payload).expect("write payload");
    ok_stdout(&gate.run(&["cp", local.to_str().expect("utf8"), &format!("{}:/tmp/payload.bin", c.name)]));
    let back = dir.path().join("back");
    std::fs::create_dir(&back).expect("mkdir");
    ok_stdout(&gate.run(&["cp", &format!("{}:/tmp/payload.bin", c.name), back.to_str().expect("utf8")]));
    assert_eq!(std::fs::read(back.join("payload.bin")).expect("read back"), payload);
}

#[test]
fn build_without_buildkit() {
    let gate = Gate::start();
    let dir = TempDir::new("build");
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {IMAGE}\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt > /built\n"),
    )
    .expect("Dockerfile");
    std::fs::write(dir.path().join("hello.txt"), "built through execgate\n").expect("context file");
    let tag = format!("{}:test", unique("build"));
    let out = gate
        .docker()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", &tag])
        .arg(dir.path())
        .output()
        .expect("build");
    ok_stdout(&out);
    let ran = ok_stdout(&gate.run(&["run", "--rm", &tag, "cat", "/built"]));
    let _ = direct_docker().args(["rmi", "-f", &tag]).output();
    assert_eq!(ran, "built through execgate\n");
}

#[test]
fn a_64_mib_exec_stream_arrives_intact_both_ways() {
    const SIZE: usize = 64 * 1024 * 1024;
    let gate = Gate::start();
    let c = Container::run("bulk", &[]);
    // Out: random bytes made in the container, hashed there and here.
    let made = ok_stdout(&gate.run(&[
        "exec",
        &c.name,
        "sh",
        "-c",
        &format!("head -c {SIZE} /dev/urandom > /tmp/blob && sha256sum /tmp/blob"),
    ]));
    let expected = made.split_whitespace().next().expect("hash").to_owned();
    let out = gate.run(&["exec", &c.name, "cat", "/tmp/blob"]);
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), SIZE);
    assert_eq!(common::sha256_hex(&out.stdout), expected);
    // In: bytes made here, hashed in the container after stdin's EOF.
    let data: Vec<u8> = (0..SIZE as u64).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let out = gate.run_stdin(&["exec", "-i", &c.name, "sha256sum"], &data);
    assert_eq!(ok_stdout(&out).split_whitespace().next(), Some(common::sha256_hex(&data).as_str()));
}

#[test]
fn daemon_errors_pass_through() {
    let gate = Gate::start();
    let out = gate.run(&["inspect", "--type", "container", "no-such-container-execgate"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("No such container"), "{err}");
    let out = gate.run(&["exec", "no-such-container-execgate", "true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("No such container"), "{err}");
}
