//! The passwd/group reader against runc 1.1.5's own Go code: the oracle of
//! `tests/user_oracle.rs` (`tests/oracle/build.sh` builds it), kept running
//! beside the fuzzer and asked about every input.
//!
//! Input (`arbitrary`): as the `user` target's, without the extra entry (a
//! spec, `--group-add` arguments, a passwd and a group file, each with an
//! optional run of one byte spliced in).
//!
//! Properties: `exec_user` gives runc's `GetExecUserPath` answer (uid, gid,
//! supplementary gids as runc 1.1.5 reads them, home) or its class of error;
//! `additional_groups` as runc 1.1.5 reads the group file gives
//! `GetAdditionalGroupsPath`'s gids (as `uint32`, a set) or its class of error.
//!
//! The oracle is looked for at `$EXECGATE_USERSPEC_ORACLE`, else
//! `${EXECGATE_TESTBED_ROOT:-/opt/execgate-testbed}/bin/userspec-oracle`.
#![no_main]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use execgate::gate::user::{self, Files, LastLine, UserError};
use execgate_fuzz::checks::File;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

#[derive(Debug, Arbitrary)]
struct Input {
    spec: String,
    args: Vec<String>,
    passwd: Option<File>,
    group: Option<File>,
}

struct Oracle {
    /// Kept for the fuzzer's life: the oracle ends when its stdin closes.
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

fn oracle() -> &'static Mutex<Oracle> {
    static ORACLE: OnceLock<Mutex<Oracle>> = OnceLock::new();
    ORACLE.get_or_init(|| {
        let path = std::env::var_os("EXECGATE_USERSPEC_ORACLE").map(PathBuf::from).unwrap_or_else(|| {
            let root =
                std::env::var_os("EXECGATE_TESTBED_ROOT").unwrap_or_else(|| "/opt/execgate-testbed".into());
            PathBuf::from(root).join("bin/userspec-oracle")
        });
        let mut child = Command::new(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run the oracle {} (tests/oracle/build.sh): {e}", path.display())
            });
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Mutex::new(Oracle { _child: child, stdin, stdout })
    })
}

fn ask(case: &Value) -> Value {
    let mut oracle = oracle().lock().unwrap_or_else(|p| p.into_inner());
    let mut line = case.to_string();
    line.push('\n');
    oracle.stdin.write_all(line.as_bytes()).and_then(|()| oracle.stdin.flush()).expect("write to the oracle");
    let mut answer = String::new();
    oracle.stdout.read_line(&mut answer).expect("read the oracle");
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("the oracle answered {answer:?}: {e}"))
}

fn b64(bytes: Option<&[u8]>) -> Value {
    bytes.map_or(Value::Null, |b| json!(B64.encode(b)))
}

fn class(e: UserError) -> String {
    match e {
        UserError::NoUser(_) => "no-user",
        UserError::NoGroup(_) => "no-group",
        UserError::Range(_) => "range",
        UserError::LongLine => "too-long",
    }
    .to_owned()
}

fn refused(answer: &Value) -> Option<String> {
    (answer["ok"] != json!(true)).then(|| answer["class"].as_str().unwrap_or("?").to_owned())
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else { return };
    let passwd = input.passwd.as_ref().map(File::bytes);
    let group = input.group.as_ref().map(File::bytes);

    let answer = ask(&json!({
        "passwd": b64(passwd.as_deref()),
        "group": b64(group.as_deref()),
        "spec": B64.encode(input.spec.as_bytes()),
    }));
    let want = match refused(&answer) {
        Some(class) => Err(class),
        None => {
            let int = |v: &Value| v.as_i64().expect("an integer id");
            let sgids: Vec<i64> =
                answer["sgids"].as_array().map(|a| a.iter().map(int).collect()).unwrap_or_default();
            let home = B64.decode(answer["home"].as_str().unwrap_or_default()).expect("home in base64");
            Ok((int(&answer["uid"]), int(&answer["gid"]), sgids, home))
        }
    };
    let files = Files { passwd: passwd.as_deref(), group: group.as_deref() };
    let got = user::exec_user(&input.spec, &files).map(|u| (u.uid, u.gid, u.sgids, u.home)).map_err(class);
    assert_eq!(got, want, "exec_user({:?}) differs from runc 1.1.5", input.spec);

    let args: Vec<Value> = input.args.iter().map(|a| json!(B64.encode(a.as_bytes()))).collect();
    let answer = ask(&json!({"mode": "groups", "group": b64(group.as_deref()), "args": args}));
    let want = match refused(&answer) {
        Some(class) => Err(class),
        None => {
            let gids = answer["gids"].as_array().expect("gids");
            let mut gids: Vec<u32> = gids.iter().map(|v| v.as_i64().expect("a gid") as u32).collect();
            gids.sort_unstable();
            gids.dedup();
            Ok(gids)
        }
    };
    let got = user::additional_groups(&input.args, group.as_deref(), LastLine::Lost).map_err(class);
    assert_eq!(got, want, "additional_groups({:?}) differs from runc 1.1.5", input.args);
});
