//! `execgate audit show` over audit trails written by real execs: an ambiguous
//! `--exec` prefix is refused, a session shows its create record and why it was
//! denied, and nothing a container wrote reaches the terminal unescaped.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{
    Container, Gate, audit_records as records, create_exec_direct, ok_stdout, read_response, start_request,
};

fn show(dir: &Path, exec: Option<&str>) -> Output {
    let mut args = vec!["audit", "show", dir.to_str().expect("utf8")];
    if let Some(exec) = exec {
        args.extend(["--exec", exec]);
    }
    Command::new(env!("CARGO_BIN_EXE_execgate")).args(&args).output().expect("run execgate")
}

/// `audit show` that must succeed; its stdout.
fn shown(dir: &Path, exec: Option<&str>) -> String {
    let out = show(dir, exec);
    assert!(out.status.success(), "audit show {exec:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("audit show prints UTF-8")
}

/// The exec id of the started exec whose command contains `marker`, once its
/// `exec.end` is written.
fn ended(dir: &Path, marker: &str) -> String {
    common::exec_end_of(dir, marker)["exec_id"].as_str().expect("exec id").to_owned()
}

/// Control characters other than line breaks (C0, DEL, C1) in `text`.
fn controls(text: &str) -> Vec<char> {
    text.chars().filter(|c| c.is_control() && *c != '\n').collect()
}

#[test]
fn an_ambiguous_exec_prefix_is_refused_with_the_ids_it_matches() {
    let gate = Gate::start();
    let c = Container::run("showambig", &[]);
    ok_stdout(&gate.run(&["exec", &c.name, "echo", "ambig-one"]));
    ok_stdout(&gate.run(&["exec", &c.name, "echo", "ambig-two"]));
    let one = ended(&gate.audit, "ambig-one");
    let two = ended(&gate.audit, "ambig-two");
    // The longest prefix both ids share (often empty) matches both.
    let common: String = one.chars().zip(two.chars()).take_while(|(a, b)| a == b).map(|(a, _)| a).collect();
    let out = show(&gate.audit, Some(&common));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an ambiguous prefix must fail: {}", String::from_utf8_lossy(&out.stdout));
    assert!(err.contains("ambiguous") && err.contains(&one) && err.contains(&two), "{err}");
    // One more character names one session, and only that one.
    let text = shown(&gate.audit, Some(&one[..common.len() + 1]));
    assert!(text.contains("ambig-one") && !text.contains("ambig-two"), "{text}");
}

#[test]
fn a_session_shows_its_create_record_and_why_it_was_denied() {
    let gate = Gate::start();
    let c = Container::run("showcreate", &[]);
    ok_stdout(&gate.run(&["exec", &c.name, "echo", "create-marker"]));
    let id = ended(&gate.audit, "create-marker");
    let create_seq = records(&gate.audit)
        .iter()
        .find(|r| r["event"] == "exec.start" && r["exec_id"] == id.as_str())
        .and_then(|r| r["created_seq"].as_u64())
        .expect("created_seq");
    let text = shown(&gate.audit, Some(&id[..12]));
    assert!(
        text.lines().any(|l| l.starts_with(&format!("#{create_seq} "))
            && l.contains("exec.create allow: echo create-marker")),
        "{text}"
    );

    // Denied at create: no exec id, in the list with its reasons.
    assert!(!gate.run(&["exec", "-u", "root", &c.name, "echo", "root-marker"]).status.success());
    // Denied at start: an exec made as root behind execgate's back.
    let root = create_exec_direct(&c.name, r#"{"AttachStdout":true,"User":"0:0","Cmd":["id","-u"]}"#);
    let mut stream = UnixStream::connect(&gate.socket).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    stream.write_all(&start_request("/v1.41", &root, "{}", true)).expect("write");
    let (head, _) = read_response(&mut stream);
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");

    let session = shown(&gate.audit, Some(&root));
    assert!(session.contains("exec.start deny: id -u"), "{session}");
    assert!(
        session.lines().any(|l| l.starts_with("    reason: ") && l.contains("resolves to uid 0")),
        "{session}"
    );
    assert!(session.contains("no exec.create record"), "{session}");

    let list = shown(&gate.audit, None);
    let lines: Vec<&str> = list.lines().collect();
    for (marker, decision) in [("root-marker", "denied at create"), ("id -u", "denied at start")] {
        let at = lines
            .iter()
            .position(|l| l.contains(decision) && l.ends_with(marker))
            .unwrap_or_else(|| panic!("no {decision} row for {marker}: {list}"));
        let next = lines.get(at + 1).copied().unwrap_or("");
        assert!(next.starts_with("    reasons: ") && next.contains("resolves to uid 0"), "{list}");
    }
}

#[test]
fn what_a_session_wrote_is_escaped_before_it_reaches_the_terminal() {
    let gate = Gate::start();
    let c = Container::run("showescape", &[]);
    // Clear screen, set the window title, ring, overwrite the line, a C1 CSI
    // (as a raw byte: not UTF-8), and an argument that is itself an escape.
    let script = r#"printf '\033[2J\033]0;pwned\007hi\rgone\n\233\n'; printf '\033[31merr\n' >&2"#;
    let out = gate.run(&["exec", &c.name, "sh", "-c", script, "esc-marker\x1b[8m"]);
    ok_stdout(&out);
    let id = ended(&gate.audit, "esc-marker");

    let session = shown(&gate.audit, Some(&id));
    assert_eq!(controls(&session), Vec::<char>::new(), "{session:?}");
    assert!(session.contains("\\x1b[2J\\x1b]0;pwned\\x07hi\\rgone\n"), "{session}");
    assert!(session.contains("\\x9b"), "{session}");
    assert!(session.contains("stderr | \\x1b[31merr\n"), "{session}");
    assert!(session.contains("esc-marker\\x1b[8m"), "{session}");

    let list = shown(&gate.audit, None);
    assert_eq!(controls(&list), Vec::<char>::new(), "{list:?}");
    assert!(list.contains("esc-marker\\x1b[8m"), "{list}");
}
