//! Policies as users handle them: `execgate policy test|eval`, `--policy`
//! loading rules, hot reload on SIGHUP, and the caller part of the input.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Container, Gate, TempDir, docker_sock, ok_stdout};

fn execgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_execgate")).args(args).output().expect("run execgate")
}

fn write_policy(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write policy");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    path
}

fn deny_command(cmd: &str) -> String {
    format!(
        "package execgate\nimport rego.v1\ndeny contains \"command {cmd} is blocked by the test policy\" if input.exec.Cmd[0] == \"{cmd}\"\n"
    )
}

#[test]
fn policy_test_runs_the_default_pack() {
    let out = execgate(&["policy", "test", "policies"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("PASS execgate.test_root_user_is_denied"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
}

#[test]
fn policy_test_reports_failures_and_exits_non_zero() {
    let dir = TempDir::new("policytest");
    write_policy(dir.path(), "p.rego", &deny_command("cat"));
    write_policy(
        dir.path(),
        "p_test.rego",
        "package execgate\nimport rego.v1\ntest_cat_denied if { count(deny) == 1 with input as {\"exec\": {\"Cmd\": [\"cat\"]}} }\ntest_wrong if { count(deny) == 1 with input as {\"exec\": {\"Cmd\": [\"ls\"]}} }\n",
    );
    let out = execgate(&["policy", "test", dir.path().to_str().expect("utf8")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.contains("PASS execgate.test_cat_denied") && text.contains("FAIL execgate.test_wrong"),
        "{text}"
    );
    assert!(text.contains("1 passed, 1 failed"), "{text}");
}

#[test]
fn policy_eval_prints_the_decision() {
    let dir = TempDir::new("eval");
    let input = dir.path().join("input.json");
    std::fs::write(&input, r#"{"exec":{"Privileged":true},"container":{"privileged":false,"cap_add":[]},"user":{"is_root":false}}"#)
        .expect("input");
    let out = execgate(&["policy", "eval", "--input", input.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let decision: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json decision");
    assert_eq!(decision["allowed"], false);
    assert!(decision["deny"][0].as_str().expect("reason").contains("without --privileged"));
    assert!(decision["policy_hash"].as_str().expect("hash").starts_with("sha256:"));
}

#[test]
fn unsafe_or_incomplete_policies_are_refused_at_start() {
    let dir = TempDir::new("unsafe");
    let writable = write_policy(dir.path(), "p.rego", &deny_command("cat"));
    std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let sock = dir.path().join("s.sock");
    let out = execgate(&[
        "serve",
        "--listen",
        sock.to_str().expect("utf8"),
        "--policy",
        writable.to_str().expect("utf8"),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("writable by group or others"), "{err}");
    assert!(!sock.exists(), "a refused policy must stop start-up before the socket exists");

    let no_deny = write_policy(dir.path(), "q.rego", "package execgate\nallow := true\n");
    let out = execgate(&[
        "serve",
        "--listen",
        sock.to_str().expect("utf8"),
        "--policy",
        no_deny.to_str().expect("utf8"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("must define data.execgate.deny"), "{err}");

    let broken = write_policy(dir.path(), "r.rego", "package execgate\ndeny contains msg if {\n");
    let out =
        execgate(&["policy", "eval", "--input", "/dev/null", "--policy", broken.to_str().expect("utf8")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("r.rego"), "{err}");
}

fn wait_for_log(gate: &Gate, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while gate.log_text().matches(needle).count() < count {
        assert!(Instant::now() < deadline, "no {needle:?} in log:\n{}", gate.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sighup_swaps_the_policy_and_a_broken_one_keeps_the_last_good() {
    common::require_daemon();
    let dir = TempDir::new("reload");
    let policy = write_policy(dir.path(), "p.rego", &deny_command("cat"));
    let gate = Gate::start_with(Path::new(docker_sock()), &["--policy", dir.path().to_str().expect("utf8")]);
    let c = Container::run("reload", &[]);
    let denied = |cmd: &str| {
        let out = gate.run(&["exec", &c.name, cmd, "/etc/hostname"]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (!out.status.success()).then_some(err)
    };
    assert!(denied("cat").is_some_and(|e| e.contains("command cat is blocked")));
    assert!(denied("ls").is_none());

    std::fs::write(&policy, deny_command("ls")).expect("rewrite");
    Command::new("kill").args(["-HUP", &gate.pid().to_string()]).status().expect("kill");
    wait_for_log(&gate, "policy reloaded", 1);
    assert!(denied("cat").is_none());
    assert!(denied("ls").is_some_and(|e| e.contains("command ls is blocked")));

    std::fs::write(&policy, "package execgate\ndeny contains msg if {\n").expect("break");
    Command::new("kill").args(["-HUP", &gate.pid().to_string()]).status().expect("kill");
    wait_for_log(&gate, "policy reload failed", 1);
    assert!(
        denied("ls").is_some_and(|e| e.contains("command ls is blocked")),
        "the last good policy stays in force"
    );
    assert!(denied("cat").is_none());

    // The audit log holds each reload's outcome.
    let log_file = std::fs::read_dir(&gate.audit)
        .expect("audit dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("audit-")))
        .expect("log file");
    let results: Vec<String> = std::fs::read_to_string(log_file)
        .expect("read log")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["event"] == "policy.reload")
        .map(|r| r["result"].as_str().unwrap_or_default().to_owned())
        .collect();
    // At start, on each SIGHUP, and (the file watch) when the file changed:
    // loads first, then only failures once the file is broken.
    let mut outcomes = results.clone();
    outcomes.dedup();
    assert_eq!(outcomes, ["loaded", "failed"], "{results:?}");
    assert!(results.iter().filter(|r| *r == "loaded").count() >= 2, "{results:?}");
}

#[test]
fn the_caller_is_in_the_input() {
    common::require_daemon();
    let dir = TempDir::new("caller");
    write_policy(
        dir.path(),
        "p.rego",
        "package execgate\nimport rego.v1\ndeny contains sprintf(\"caller=%s\", [json.marshal(input.caller)]) if input.exec.Cmd[0] == \"probe\"\n",
    );
    let gate = Gate::start_with(Path::new(docker_sock()), &["--policy", dir.path().to_str().expect("utf8")]);
    let c = Container::run("caller", &[]);
    let out = gate.run(&["exec", &c.name, "probe"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let json_text = err.split("caller=").nth(1).expect("caller in message").trim();
    let caller: serde_json::Value = serde_json::from_str(json_text).expect("caller json");
    assert_eq!(caller["uid"], nix_uid());
    assert!(caller["pid"].as_i64().is_some_and(|p| p > 0), "{caller}");
    assert!(caller["exe"].as_str().is_some_and(|e| e.ends_with("/docker")), "{caller}");
    let loginuid =
        std::fs::read_to_string("/proc/self/loginuid").ok().and_then(|t| t.trim().parse::<u32>().ok());
    match loginuid.filter(|&u| u != u32::MAX) {
        Some(uid) => assert_eq!(caller["loginuid"], uid, "{caller}"),
        None => assert!(caller["loginuid"].is_null(), "{caller}"),
    }
    ok_stdout(&gate.run(&["exec", &c.name, "true"]));
}

fn nix_uid() -> u32 {
    let out = Command::new("id").arg("-u").output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("uid")
}

#[test]
fn every_example_policy_passes_its_own_tests() {
    let mut examples: Vec<_> = std::fs::read_dir("policies/examples")
        .expect("examples dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "rego") && !p.to_string_lossy().ends_with("_test.rego")
        })
        .collect();
    examples.sort();
    assert!(examples.len() >= 5, "{examples:?}");
    for policy in examples {
        let test = policy
            .with_file_name(format!("{}_test.rego", policy.file_stem().expect("stem").to_string_lossy()));
        let out = execgate(&["policy", "test", policy.to_str().expect("utf8"), test.to_str().expect("utf8")]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("PASS") && !text.contains("FAIL"),
            "{}:\n{text}",
            policy.display()
        );
    }
    // The example input is allowed by the default pack.
    let out = execgate(&["policy", "eval", "--input", "policies/examples/input.json"]);
    let decision: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(decision["allowed"], true, "{decision}");
}

#[test]
fn an_edited_policy_file_is_picked_up_without_a_signal() {
    common::require_daemon();
    let dir = TempDir::new("watch");
    let policy = write_policy(dir.path(), "p.rego", &deny_command("cat"));
    let gate = Gate::start_with(Path::new(docker_sock()), &["--policy", dir.path().to_str().expect("utf8")]);
    let c = Container::run("watch", &[]);
    assert!(!gate.run(&["exec", &c.name, "cat", "/etc/hostname"]).status.success());
    std::fs::write(&policy, deny_command("ls")).expect("rewrite");
    wait_for_log(&gate, "policy reloaded", 1);
    ok_stdout(&gate.run(&["exec", &c.name, "cat", "/etc/hostname"]));
    assert!(!gate.run(&["exec", &c.name, "ls"]).status.success());
}

#[test]
fn the_examples_directory_tests_cleanly_as_shipped() {
    // Each example's tests look at that example's own reasons (`<file>_reasons`),
    // not at the whole of `deny`, so they hold whatever else is loaded: all the
    // examples at once, and the default pack with them.
    for args in [
        &["policy", "test", "policies/examples"][..],
        &["policy", "test", "policies/execgate.rego", "policies/examples"],
        &["policy", "test", "policies", "policies/examples"],
        &["policy", "test", "policies", "policies/examples", "policies/examples/lockdown"],
    ] {
        let out = execgate(args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("PASS") && !text.contains("FAIL"),
            "{args:?}:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // And every example's own tests are among those that ran.
    let prefixes: Vec<String> = std::fs::read_dir("policies/examples")
        .expect("examples dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix("_test.rego").map(|p| format!("execgate.test_{p}_")))
        .collect();
    assert!(prefixes.len() >= 5, "{prefixes:?}");
    let out = execgate(&["policy", "test", "policies", "policies/examples"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for prefix in &prefixes {
        assert!(text.contains(&format!("PASS {prefix}")), "{prefix}:\n{text}");
        assert!(!text.contains(&format!("FAIL {prefix}")), "{prefix}:\n{text}");
    }
}

/// `policy_hash` of a set made of the one file `path` holding `text`.
fn hash_of_one(path: &Path, text: &str) -> String {
    format!("sha256:{}", common::sha256_hex(format!("{}\0{text}\0", path.display()).as_bytes()))
}

fn sighup(gate: &Gate) {
    Command::new("kill").args(["-HUP", &gate.pid().to_string()]).status().expect("kill");
}

/// The `policy.reload` records of the gate's log: (result, policy_hash, error).
fn reloads(gate: &Gate) -> Vec<(String, String, String)> {
    common::records(&gate.audit)
        .into_iter()
        .filter(|r| r["event"] == "policy.reload")
        .map(|r| {
            let field = |name: &str| r[name].as_str().unwrap_or_default().to_owned();
            (field("result"), field("policy_hash"), field("error"))
        })
        .collect()
}

#[test]
fn a_policy_rewritten_in_place_is_loaded_only_once_it_is_whole() {
    use std::io::Write;
    common::require_daemon();
    let dir = TempDir::new("halfwritten");
    let first =
        format!("{}deny contains \"ls is blocked\" if input.exec.Cmd[0] == \"ls\"\n", deny_command("cat"));
    let policy = write_policy(dir.path(), "p.rego", &first);
    let gate = Gate::start_with(Path::new(docker_sock()), &["--policy", dir.path().to_str().expect("utf8")]);
    let c = Container::run("halfwritten", &[]);
    // Rewritten in place, as an editor or `cat >` does: truncated, then written
    // in two parts; the reload is asked for between them. The first part alone
    // is a valid policy that blocks only `cat`.
    let head = deny_command("cat");
    let tail = "deny contains \"ls is blocked\" if input.exec.Cmd[0] == \"ls\"\n\
                deny contains \"id is blocked\" if input.exec.Cmd[0] == \"id\"\n";
    let mut file = std::fs::OpenOptions::new().write(true).truncate(true).open(&policy).expect("open");
    file.write_all(head.as_bytes()).expect("first part");
    file.flush().expect("flush");
    sighup(&gate);
    std::thread::sleep(Duration::from_millis(100));
    file.write_all(tail.as_bytes()).expect("second part");
    drop(file);
    wait_for_log(&gate, "policy reloaded", 1);
    // The file watch may reload it once more; never the half.
    std::thread::sleep(Duration::from_secs(3));
    let half = hash_of_one(&policy, &head);
    let whole = hash_of_one(&policy, &format!("{head}{tail}"));
    let loaded: Vec<String> = reloads(&gate)
        .into_iter()
        .filter(|(result, _, _)| result == "loaded")
        .map(|(_, hash, _)| hash)
        .collect();
    assert!(!loaded.contains(&half), "the half-written policy was loaded: {loaded:?}");
    assert_eq!(loaded.first(), Some(&hash_of_one(&policy, &first)), "{loaded:?}");
    assert!(loaded[1..].iter().all(|h| *h == whole) && loaded.len() >= 2, "{loaded:?}");
    for cmd in ["cat", "ls", "id"] {
        assert!(!gate.run(&["exec", &c.name, cmd]).status.success(), "{cmd} ran under the new policy");
    }
}

#[test]
fn a_reload_whose_policy_tests_fail_is_rejected_and_recorded() {
    common::require_daemon();
    let dir = TempDir::new("reloadtests");
    write_policy(dir.path(), "p.rego", &deny_command("cat"));
    let test_cat = "package execgate\nimport rego.v1\ntest_cat_denied if { count(deny) == 1 with input as {\"exec\": {\"Cmd\": [\"cat\"]}} }\n";
    write_policy(dir.path(), "p_test.rego", test_cat);
    let gate = Gate::start_with(Path::new(docker_sock()), &["--policy", dir.path().to_str().expect("utf8")]);
    let c = Container::run("reloadtests", &[]);
    let ran = |cmd: &str| gate.run(&["exec", &c.name, cmd, "/etc/hostname"]).status.success();
    assert!(!ran("cat") && ran("ls"));

    // Deployed by atomic rename, but the new policy breaks the set's own test.
    let staged = write_policy(dir.path(), "p.rego.new", &deny_command("ls"));
    std::fs::rename(&staged, dir.path().join("p.rego")).expect("rename");
    sighup(&gate);
    wait_for_log(&gate, "policy reload failed", 1);
    assert!(!ran("cat") && ran("ls"), "the last good policy stays in force");
    let rejected =
        reloads(&gate).into_iter().find(|(result, _, _)| result == "rejected").expect("a rejected reload");
    assert!(rejected.2.contains("1 of 1 policy tests failed: execgate.test_cat_denied"), "{rejected:?}");

    // With its test updated too, the new policy goes in.
    let test_ls = test_cat.replace("cat", "ls");
    let staged = write_policy(dir.path(), "p_test.rego.new", &test_ls);
    std::fs::rename(&staged, dir.path().join("p_test.rego")).expect("rename");
    sighup(&gate);
    wait_for_log(&gate, "policy reloaded", 1);
    assert!(ran("cat") && !ran("ls"));
}

#[test]
fn a_policy_set_whose_tests_fail_is_refused_at_start() {
    let dir = TempDir::new("starttests");
    write_policy(dir.path(), "p.rego", &deny_command("cat"));
    write_policy(
        dir.path(),
        "p_test.rego",
        "package execgate\nimport rego.v1\ntest_ls_denied if { count(deny) == 1 with input as {\"exec\": {\"Cmd\": [\"ls\"]}} }\n",
    );
    let sock = dir.path().join("s.sock");
    let out = execgate(&[
        "serve",
        "--listen",
        sock.to_str().expect("utf8"),
        "--policy",
        dir.path().to_str().expect("utf8"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("1 of 1 policy tests failed: execgate.test_ls_denied"), "{err}");
    assert!(!sock.exists(), "a refused policy must stop start-up before the socket exists");
}
