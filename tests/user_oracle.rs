//! Differential test of the user resolver against the runtime's own Go code:
//! every case — a passwd file, a group file (either may be missing) and a user
//! spec — goes through runc 1.1.5's `libcontainer/user.GetExecUserPath`, called
//! as dockerd 20.10 calls it (the oracle built by `tests/oracle/build.sh`), and
//! through `execgate::gate::user::exec_user`; the uid, gid, supplementary gids
//! and home, or the class of error, must be the same for every case.
//!
//! A second corpus does the same for `execgate::gate::user::additional_groups`
//! against runc 1.1.5's `GetAdditionalGroupsPath(args, group)` (a container's
//! `--group-add`, and an exec's supplementary gids re-resolved by runc < 1.3):
//! names, numbers that are also names, duplicates, taken gids, signs, leading
//! zeros and overflow in the arguments, missing files, and lines around the
//! 4 KiB chunks. The answers compare as sets of `uint32` (Go returns a map's
//! keys, as `int`; the daemon and runc's `setgroups` truncate), and execgate's
//! must also be sorted and free of repeats, as it promises. One difference is
//! allowed: a last group line runc 1.1.5 loses is read by execgate (as newer
//! readers do), so there the oracle is asked about the same file with a
//! newline added; the run counts where runc 1.1.5's own answer then falls
//! outside execgate's (a line named `0` with gid 1000 moves gid 0 to 1000).
//!
//! The corpora are generated from a fixed seed, so a failure reproduces. They
//! covers every rune Go's `bytes.TrimSpace` trims (and look-alikes it does
//! not), invalid UTF-8 and NUL in names, duplicates, comments, CRLF, numeric
//! names, signs, leading zeros, ids past int32 and int64, empty and `user:group`
//! specs, missing files, and lines around the runtime's buffer sizes (4 KiB for
//! group, 64 KiB for passwd).
//!
//! The oracle is required: build it with `tests/oracle/build.sh` (the testbed
//! script does). It is looked for at `$EXECGATE_USERSPEC_ORACLE`, else
//! `${EXECGATE_TESTBED_ROOT:-/opt/execgate-testbed}/bin/userspec-oracle`.
//!
//! Longer runs: `EXECGATE_ORACLE_CASES` sets the number of generated cases
//! of each corpus (default 20000) and `EXECGATE_ORACLE_SEED` the seed, e.g.
//!
//! ```text
//! tests/oracle/build.sh && EXECGATE_ORACLE_CASES=1000000 cargo test --test user_oracle -- --nocapture
//! ```
//!
//! (about seven minutes on two cores for a million cases of each; the default
//! run takes under ten seconds).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::Rng;
use execgate::gate::user::{self, Files, UserError};
use serde_json::Value;

/// Every rune `unicode.IsSpace` accepts (what `bytes.TrimSpace` trims).
const GO_SPACES: [&str; 25] = [
    "\t", "\n", "\u{b}", "\u{c}", "\r", " ", "\u{85}", "\u{a0}", "\u{1680}", "\u{2000}", "\u{2001}",
    "\u{2002}", "\u{2003}", "\u{2004}", "\u{2005}", "\u{2006}", "\u{2007}", "\u{2008}", "\u{2009}",
    "\u{200a}", "\u{2028}", "\u{2029}", "\u{202f}", "\u{205f}", "\u{3000}",
];

/// Bytes that look like spaces but are not Go spaces: other format characters,
/// the ASCII separators, NUL, and broken or Latin-1 encodings of real spaces.
const NOT_SPACES: [&[u8]; 16] = [
    "\u{200b}".as_bytes(),
    "\u{feff}".as_bytes(),
    "\u{180e}".as_bytes(),
    "\u{2060}".as_bytes(),
    b"\x1c",
    b"\x1f",
    b"\0",
    b"\x85",
    b"\xa0",
    b"\xc2",
    b"\xe3\x80",
    b"\xe3\x80\x80\x80",
    b"\xe2\x80",
    b"\xed\xa0\x80",
    b"\xc0\xa0",
    b"\xff",
];

/// Names for entries and specs; some only fit in files (not UTF-8).
const NAMES: [&[u8]; 24] = [
    b"root",
    b"app",
    b"app",
    b"nobody",
    b"daemon",
    b"wheel",
    b"0",
    b"1000",
    b"+0",
    b"-0",
    b"007",
    b"#app",
    b"",
    "\u{fffd}".as_bytes(),
    b"\xff",
    b"app\0",
    b"\0",
    b"APP",
    b"app x",
    "\u{e4}pp".as_bytes(),
    b"a\xe4pp",
    "app\u{3000}x".as_bytes(),
    b"99999999999999999999",
    b"x:y",
];

/// Numeric fields and spec parts, as Go's `strconv.Atoi` may or may not read them.
const NUMBERS: [&str; 44] = [
    "0",
    "0",
    "1000",
    "1000",
    "10",
    "65534",
    "+0",
    "-0",
    "+1000",
    "-1000",
    "-1",
    "007",
    "0000000000000000000000001000",
    "00000000000000000000",
    "2147483647",
    "2147483648",
    "-2147483648",
    "-2147483649",
    "4294967295",
    "4294967296",
    "4294968296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "18446744073709552616",
    "99999999999999999999",
    "-99999999999999999999",
    "99999999999999999999x",
    "9x9999999999999999999",
    "1x",
    "",
    "abc",
    " 1",
    "1 ",
    "0x10",
    "1_000",
    "+",
    "-",
    "+-1",
    "1e3",
    "\u{661}",
];

/// One case, as both sides see it.
struct Case {
    passwd: Option<Vec<u8>>,
    group: Option<Vec<u8>>,
    spec: String,
}

impl Case {
    fn json(&self) -> String {
        let file = |f: &Option<Vec<u8>>| f.as_ref().map_or(Value::Null, |b| Value::String(B64.encode(b)));
        serde_json::json!({
            "passwd": file(&self.passwd),
            "group": file(&self.group),
            "spec": B64.encode(self.spec.as_bytes()),
        })
        .to_string()
    }

    fn describe(&self) -> String {
        format!("spec {:?}\n  passwd {}\n  group  {}", self.spec, show(&self.passwd), show(&self.group))
    }
}

/// A file for a failure message.
fn show(file: &Option<Vec<u8>>) -> String {
    match file {
        None => "<missing>".to_owned(),
        Some(b) if b.len() > 600 => format!(
            "{} bytes: {:?} … {:?}",
            b.len(),
            b[..300].escape_ascii().to_string(),
            b[b.len() - 100..].escape_ascii().to_string()
        ),
        Some(b) => format!("{:?}", b.escape_ascii().to_string()),
    }
}

/// A whitespace-ish decoration: mostly Go spaces, sometimes a look-alike.
fn decoration(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(2) {
        if rng.chance(75) {
            out.extend_from_slice(rng.pick(&GO_SPACES).as_bytes());
        } else {
            out.extend_from_slice(rng.pick(&NOT_SPACES));
        }
    }
    out
}

fn name(rng: &mut Rng, spec_user: &str) -> Vec<u8> {
    if !spec_user.is_empty() && rng.chance(35) {
        return spec_user.as_bytes().to_vec();
    }
    rng.pick(&NAMES).to_vec()
}

fn number(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(10) {
        return (rng.next() % 70000).to_string().into_bytes();
    }
    rng.pick(&NUMBERS).as_bytes().to_vec()
}

/// Surrounds (or pierces) a line with decorations.
fn decorate(rng: &mut Rng, mut line: Vec<u8>) -> Vec<u8> {
    if rng.chance(20) {
        let mut front = decoration(rng);
        front.extend_from_slice(&line);
        line = front;
    }
    if rng.chance(15) {
        line.extend_from_slice(&decoration(rng));
    }
    if rng.chance(4) && !line.is_empty() {
        let at = rng.below(line.len());
        let piece = decoration(rng);
        line.splice(at..at, piece);
    }
    line
}

fn passwd_line(rng: &mut Rng, spec_user: &str) -> Vec<u8> {
    let mut fields = vec![
        name(rng, spec_user),
        b"x".to_vec(),
        if spec_user.parse::<i64>().is_ok() && rng.chance(30) {
            spec_user.as_bytes().to_vec()
        } else {
            number(rng)
        },
        number(rng),
        b"gecos".to_vec(),
        rng.pick(&["/home/app", "/", "", "/root", "/h\u{3000}"]).as_bytes().to_vec(),
        b"/bin/sh".to_vec(),
    ];
    let count = match rng.below(10) {
        0 => 1 + rng.below(6),
        1 => 8 + rng.below(2),
        _ => 7,
    };
    fields.resize(count, b"extra".to_vec());
    decorate(rng, fields.join(&b':'))
}

fn group_line(rng: &mut Rng, spec_user: &str, spec_group: &str) -> Vec<u8> {
    let group_name =
        if !spec_group.is_empty() && rng.chance(35) { spec_group.as_bytes().to_vec() } else { name(rng, "") };
    let gid = if spec_group.parse::<i64>().is_ok() && rng.chance(30) {
        spec_group.as_bytes().to_vec()
    } else {
        number(rng)
    };
    let mut members = Vec::new();
    for _ in 0..rng.below(4) {
        members.push(match rng.below(4) {
            0 => Vec::new(),
            1 | 2 => name(rng, spec_user),
            _ => rng.pick(&NAMES).to_vec(),
        });
    }
    let mut fields = vec![group_name, b"x".to_vec(), gid, members.join(&b',')];
    let count = match rng.below(10) {
        0 => 1 + rng.below(3),
        1 => 5,
        _ => 4,
    };
    fields.resize(count, b"extra".to_vec());
    decorate(rng, fields.join(&b':'))
}

/// Lengths around the runtime's buffers: group's `bufio.Reader` (4 KiB
/// chunks) and passwd's `bufio.Scanner` (lines under 64 KiB).
const LONG: [usize; 16] = [
    4094, 4095, 4096, 4097, 8191, 8192, 8193, 12288, 65533, 65534, 65535, 65536, 65537, 66000, 70000, 131072,
];

/// A line of exactly `len` bytes (before its ending) that is also an entry.
fn long_line(rng: &mut Rng, spec_user: &str, len: usize) -> Vec<u8> {
    let mut line = match rng.below(3) {
        0 => format!("{spec_user}:x:0:0:"),
        1 => format!("wheel:x:10:{spec_user},"),
        _ => "pad:x:1:1:".to_owned(),
    }
    .into_bytes();
    let fill = if rng.chance(50) { b'y' } else { b' ' };
    line.resize(len, fill);
    if rng.chance(25) {
        line.pop();
        line.push(b'\r');
    }
    line
}

fn file(rng: &mut Rng, spec_user: &str, mut line: impl FnMut(&mut Rng) -> Vec<u8>) -> Option<Vec<u8>> {
    if rng.chance(5) {
        return None;
    }
    let mut out = Vec::new();
    let lines = rng.below(8);
    for i in 0..lines {
        let text = match rng.below(20) {
            0 => decoration(rng),
            1 => [b"#".as_slice(), &line(rng)].concat(),
            2 => {
                let bare = name(rng, spec_user);
                decorate(rng, bare)
            }
            3 if rng.chance(3) => {
                let len = LONG[rng.below(LONG.len())];
                long_line(rng, spec_user, len)
            }
            _ => line(rng),
        };
        out.extend_from_slice(&text);
        let last = i + 1 == lines;
        match rng.below(10) {
            _ if last && rng.chance(20) => {}
            0 => out.extend_from_slice(b"\r\n"),
            1 => out.extend_from_slice(b"\n\n"),
            _ => out.push(b'\n'),
        }
    }
    Some(out)
}

fn spec_part(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => String::new(),
        1..=4 => {
            let name = rng.pick(&NAMES);
            // A JSON body can only carry UTF-8: the daemon's spec is valid UTF-8.
            String::from_utf8_lossy(name).into_owned()
        }
        5..=8 => String::from_utf8_lossy(&number(rng)).into_owned(),
        _ => {
            let pieces = ["app", " ", "\u{b}", "\u{3000}", "0", "\u{fffd}", "\0", "#", "+"];
            (0..1 + rng.below(3)).map(|_| rng.pick(&pieces)).collect()
        }
    }
}

fn random_case(rng: &mut Rng) -> Case {
    let user_part = spec_part(rng);
    let mut spec = user_part.clone();
    let mut group_part = String::new();
    if rng.chance(45) {
        group_part = spec_part(rng);
        spec = format!("{spec}:{group_part}");
        if rng.chance(10) {
            spec.push_str(":x");
        }
    }
    let passwd = file(rng, &user_part, |rng| passwd_line(rng, &user_part));
    let group = file(rng, &user_part, |rng| group_line(rng, &user_part, &group_part));
    Case { passwd, group, spec }
}

/// Cases written out: the reported bypasses, each space at each place, the
/// buffer boundaries.
fn targeted_cases() -> Vec<Case> {
    let real = b"app:x:1000:1000::/home/app:/bin/sh\n".as_slice();
    let case = |passwd: &[u8], group: Option<&[u8]>, spec: &str| Case {
        passwd: Some(passwd.to_vec()),
        group: group.map(<[u8]>::to_vec),
        spec: spec.to_owned(),
    };
    let mut cases = vec![
        case(&[b"\x0bapp:x:0:0::/:/bin/sh\n", real].concat(), None, "app"),
        case(&[b"app\x0b\n", real].concat(), None, "app"),
        case(b"\xff:x:1000:1000::/:/bin/sh\n\xef\xbf\xbd:x:0:0::/:/bin/sh\n", None, "\u{fffd}"),
        case(b"", None, ""),
        case(b"toor:x:0:5::/:\nroot:x:0:0::/root:\n", Some(b"g:x:7:toor\n"), ""),
    ];
    let mut spaces: Vec<&[u8]> = GO_SPACES.iter().map(|s| s.as_bytes()).collect();
    spaces.extend(NOT_SPACES);
    for space in spaces {
        for (before, after) in [(space, &b""[..]), (&b""[..], space), (space, space)] {
            let line = [before, b"app", after].concat();
            let entry = [before, b"app:x:0:0::/:/bin/sh", after].concat();
            for first in [&line, &entry] {
                let passwd = [first.as_slice(), b"\n", real].concat();
                cases.push(case(&passwd, None, "app"));
                let group = [before, b"wheel:x:0:app", after, b"\n"].concat();
                cases.push(case(real, Some(&group), "app"));
                cases.push(case(real, Some(&group), "app:wheel"));
            }
            // Inside a name.
            let passwd = [b"a", space, b"pp:x:0:0\n", real].concat();
            cases.push(case(&passwd, None, "app"));
            // In numeric fields.
            let passwd = [b"app:x:", space, b"0:0\n"].concat();
            cases.push(case(&passwd, None, "app"));
            let passwd = [b"app:x:0", space, b":0\n"].concat();
            cases.push(case(&passwd, None, "app"));
        }
    }
    for len in LONG {
        for ending in [&b"\n"[..], b"\r\n", b""] {
            let mut line = b"app:x:0:0:".to_vec();
            line.resize(len, b'y');
            cases.push(case(&[real, &line, ending].concat(), None, "app"));
            cases.push(case(&[&line, ending, real].concat(), None, "1000"));
            let mut gline = b"wheel:x:0:app,".to_vec();
            gline.resize(len, b'y');
            cases.push(case(real, Some(&[&gline, ending].concat()), "app"));
            cases.push(case(real, Some(&[b"g:x:1:app\n", &gline[..], ending].concat()), "app"));
            // A `\r` landing on the 4 KiB chunk boundary.
            if let Some(last) = gline.last_mut() {
                *last = b'\r';
            }
            cases.push(case(real, Some(&[&gline, ending].concat()), "app"));
            cases.push(case(real, Some(&[&gline, b"\nh:x:2:app".as_slice(), ending].concat()), "app"));
        }
    }
    for text in NUMBERS {
        let spec_forms = [text.to_owned(), format!("app:{text}"), format!("{text}:{text}")];
        for spec in spec_forms {
            let passwd = format!("app:x:{text}:{text}:::\n");
            let group = format!("g:x:{text}:app\n");
            cases.push(case(passwd.as_bytes(), Some(group.as_bytes()), &spec));
            cases.push(Case { passwd: None, group: None, spec: spec.clone() });
        }
    }
    cases
}

fn oracle_path() -> PathBuf {
    if let Some(path) = std::env::var_os("EXECGATE_USERSPEC_ORACLE") {
        return PathBuf::from(path);
    }
    let root = std::env::var_os("EXECGATE_TESTBED_ROOT").unwrap_or_else(|| "/opt/execgate-testbed".into());
    PathBuf::from(root).join("bin/userspec-oracle")
}

/// Runs every case (a JSON line) through the oracle, in one process, streaming.
fn ask_oracle(input: &[String]) -> Vec<Value> {
    let path = oracle_path();
    assert!(
        path.is_file(),
        "the Go oracle {} is missing: build it with tests/oracle/build.sh (installs golang-go and \
         golang-github-opencontainers-runc-dev when absent) — this test never skips",
        path.display()
    );
    let mut child = Command::new(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run the oracle {}: {e}", path.display()));
    let mut stdin = child.stdin.take().expect("oracle stdin");
    let answers = std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            let mut out = std::io::BufWriter::new(&mut stdin);
            for line in input {
                out.write_all(line.as_bytes())
                    .and_then(|()| out.write_all(b"\n"))
                    .expect("write to the oracle");
            }
            out.flush().expect("flush to the oracle");
        });
        let stdout = BufReader::new(child.stdout.take().expect("oracle stdout"));
        let answers: Vec<Value> = stdout
            .lines()
            .map(|line| {
                serde_json::from_str(&line.expect("read the oracle")).expect("the oracle answers JSON")
            })
            .collect();
        writer.join().expect("writer thread");
        answers
    });
    let status = child.wait().expect("oracle exit");
    assert!(status.success(), "the oracle failed: {status}");
    assert_eq!(answers.len(), input.len(), "the oracle answered fewer cases than it was given");
    answers
}

/// The oracle's answer in execgate's terms: ids, or an error class.
fn expected(answer: &Value) -> Result<(i64, i64, Vec<i64>, Vec<u8>), String> {
    if answer["ok"] != Value::Bool(true) {
        return Err(answer["class"].as_str().unwrap_or("?").to_owned());
    }
    let int = |v: &Value| v.as_i64().expect("an integer id");
    let sgids = answer["sgids"].as_array().map(|a| a.iter().map(int).collect()).unwrap_or_default();
    let home = B64.decode(answer["home"].as_str().unwrap_or_default()).expect("home in base64");
    Ok((int(&answer["uid"]), int(&answer["gid"]), sgids, home))
}

fn actual(
    case: &Case,
    lost_tails: &std::sync::atomic::AtomicUsize,
) -> Result<(i64, i64, Vec<i64>, Vec<u8>), String> {
    let files = Files { passwd: case.passwd.as_deref(), group: case.group.as_deref() };
    let got = user::exec_user(&case.spec, &files).map_err(|e| {
        match e {
            UserError::NoUser(_) => "no-user",
            UserError::NoGroup(_) => "no-group",
            UserError::Range(_) => "range",
            UserError::LongLine => "too-long",
        }
        .to_owned()
    })?;
    // What the daemon runs is the uint32 truncation, which `resolve` reports,
    // with the supplementary groups of either lineage.
    let resolved = user::resolve(&case.spec, &files).expect("resolve agrees with exec_user");
    let groups: Vec<u32> = got.sgids.iter().chain(&got.lost_sgid).map(|&g| g as u32).collect();
    assert_eq!(
        (resolved.uid, resolved.gid, resolved.is_root, resolved.groups),
        (got.uid as u32, got.gid as u32, got.uid as u32 == 0, groups),
        "{}",
        case.describe()
    );
    if got.lost_sgid.is_some() {
        assert!(
            lost_tail(case.group.as_deref()),
            "a lost last group line where runc reads it whole:\n{}",
            case.describe()
        );
        lost_tails.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    Ok((got.uid, got.gid, got.sgids, got.home))
}

/// Whether runc 1.1.5 loses the last line of a group file, worked out apart
/// from the resolver: a last line with no newline is read in 4096-byte chunks
/// (4095 when a chunk would end in `\r`, which goes to the next one), and it is
/// lost when the end of the file falls exactly after a chunk.
fn lost_tail(group: Option<&[u8]>) -> bool {
    let Some(group) = group else { return false };
    if group.ends_with(b"\n") {
        return false;
    }
    let mut rest = group.rsplit(|&b| b == b'\n').next().unwrap_or_default();
    let mut chunks = 0;
    while rest.len() >= 4096 {
        let chunk = if rest[4095] == b'\r' { 4095 } else { 4096 };
        rest = &rest[chunk..];
        chunks += 1;
    }
    chunks > 0 && rest.is_empty()
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

#[test]
fn resolver_matches_runc() {
    let count = env_number("EXECGATE_ORACLE_CASES", 20_000);
    let seed = env_number("EXECGATE_ORACLE_SEED", 0x5EED_0FE8_EC0A_7E00);
    let started = Instant::now();
    let mut rng = Rng(seed);
    let mut cases = targeted_cases();
    let targeted = cases.len();
    // In batches, so a long run does not hold a million cases in memory.
    let batch = 50_000;
    let mut generated = 0;
    let mut total = 0;
    let mut mismatches = Vec::new();
    let mut mismatch_count = 0;
    let lost_tails = std::sync::atomic::AtomicUsize::new(0);
    loop {
        while generated < count && cases.len() < batch {
            cases.push(random_case(&mut rng));
            generated += 1;
        }
        if cases.is_empty() {
            break;
        }
        // execgate's answers are worked out while the oracle works on its own.
        let (answers, ours) = std::thread::scope(|scope| {
            let ours = scope.spawn(|| cases.iter().map(|case| actual(case, &lost_tails)).collect::<Vec<_>>());
            let input: Vec<String> = cases.iter().map(Case::json).collect();
            let answers = ask_oracle(&input);
            (answers, ours.join().expect("execgate's side panicked"))
        });
        for ((case, answer), got) in cases.iter().zip(&answers).zip(ours) {
            let want = expected(answer);
            if want != got {
                mismatch_count += 1;
                if mismatches.len() < 20 {
                    mismatches.push(format!(
                        "{}\n  runc:     {want:?} ({})\n  execgate: {got:?}",
                        case.describe(),
                        answer["error"].as_str().unwrap_or("")
                    ));
                }
            }
        }
        total += cases.len();
        cases.clear();
    }
    eprintln!(
        "user oracle: {total} cases ({targeted} targeted, {generated} generated from seed {seed:#x}) in {:.1?}; \
         {} with a last group line only newer daemons read",
        started.elapsed(),
        lost_tails.into_inner()
    );
    assert!(
        mismatches.is_empty(),
        "{mismatch_count} of {total} cases differ from runc:\n{}",
        mismatches.join("\n")
    );
}

/// One `additional_groups` case: the container's group file (maybe missing)
/// and the groups asked for.
struct GroupsCase {
    group: Option<Vec<u8>>,
    args: Vec<String>,
}

impl GroupsCase {
    /// The oracle's input for these args against `group` (the case's file, or
    /// that file as a newer reader sees it).
    fn json(&self, group: Option<&[u8]>) -> String {
        // Written out by hand (base64 needs no escaping): serde_json is slow
        // on long strings in a debug build.
        let group = group.map_or_else(|| "null".to_owned(), |b| format!("\"{}\"", B64.encode(b)));
        let args: Vec<String> =
            self.args.iter().map(|a| format!("\"{}\"", B64.encode(a.as_bytes()))).collect();
        format!(r#"{{"mode":"groups","group":{group},"args":[{}]}}"#, args.join(","))
    }

    fn describe(&self) -> String {
        format!("args {:?}\n  group  {}", self.args, show(&self.group))
    }

    /// The group file as runc after 1.1.5 reads it: with its last line, which
    /// a newline keeps from being lost.
    fn kept_tail(&self) -> Option<Vec<u8>> {
        self.group.as_ref().map(|g| [g.as_slice(), b"\n"].concat())
    }
}

/// Group names, gid fields and arguments, drawn from one pool so that they
/// meet: names that are numbers, numbers `Atoi` reads but `Itoa` does not
/// write back, numbers past every range.
const GROUP_TOKENS: [&str; 58] = [
    "root",
    "app",
    "app",
    "wheel",
    "audio",
    "docker",
    "",
    "#app",
    "APP",
    "app x",
    "\u{e4}pp",
    "app\0",
    "0",
    "0",
    "5",
    "5",
    "10",
    "1000",
    "1000",
    "4242",
    "65534",
    "05",
    "+5",
    "-5",
    "-0",
    "+0",
    "00",
    "01000",
    "+1000",
    "0000000000000000000000005",
    "-1",
    "2147483647",
    "2147483648",
    "-2147483648",
    "-2147483649",
    "4294967295",
    "4294967296",
    "4294967297",
    "4294968296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "99999999999999999999",
    "-99999999999999999999",
    "18446744073709551616",
    "1x",
    "x1",
    "0x10",
    "1e3",
    "1_000",
    "\u{661}",
    " 5",
    "5 ",
    "+",
    "-",
    "+-5",
    "5\u{3000}",
];

/// Small gids that collide often.
fn small_gid(rng: &mut Rng) -> String {
    let gids = [0, 0, 1, 5, 5, 7, 10, 27, 29, 1000, 1000, 1001, 4242, 65534];
    gids[rng.below(gids.len())].to_string()
}

fn group_name_field(rng: &mut Rng) -> Vec<u8> {
    match rng.below(20) {
        0..=8 => rng.pick(&GROUP_TOKENS).as_bytes().to_vec(),
        9..=15 => small_gid(rng).into_bytes(),
        16 => b"\xff".to_vec(),
        _ => rng.pick(&NAMES).to_vec(),
    }
}

fn gid_field(rng: &mut Rng) -> Vec<u8> {
    match rng.below(10) {
        0..=4 => small_gid(rng).into_bytes(),
        5..=8 => rng.pick(&GROUP_TOKENS).as_bytes().to_vec(),
        _ => number(rng),
    }
}

/// The lengths of long group lines: around the 4 KiB chunks.
const GROUP_LONG: [usize; 10] = [4094, 4095, 4096, 4096, 4097, 8191, 8192, 8192, 8193, 12288];

/// A group file, and the (name, gid) fields of its lines for the args to pick
/// from (comments and lines hidden by spaces included: they must not match).
fn groups_file(rng: &mut Rng, fields: &mut Vec<(Vec<u8>, Vec<u8>)>) -> Option<Vec<u8>> {
    if rng.chance(6) {
        return None;
    }
    let mut out = Vec::new();
    let lines = rng.below(9);
    // Sometimes the file ends on a line runc 1.1.5 loses (or just misses losing).
    let lost_end = rng.chance(6);
    for i in 0..lines {
        let last = i + 1 == lines;
        let (name, gid) = (group_name_field(rng), gid_field(rng));
        fields.push((name.clone(), gid.clone()));
        let members: &[u8] = rng.pick(&[&b""[..], b"app", b"app,root", b","]);
        let mut parts = vec![name, b"x".to_vec(), gid, members.to_vec()];
        let count = match rng.below(12) {
            0 => 1 + rng.below(3),
            1 => 5,
            _ => 4,
        };
        parts.resize(count, b"extra".to_vec());
        let mut line = parts.join(&b':');
        let long = (last && lost_end) || rng.chance(3);
        match rng.below(20) {
            _ if long => {
                let len = GROUP_LONG[rng.below(GROUP_LONG.len())];
                if line.len() < len {
                    if count == 4 {
                        line.push(b',');
                    }
                    line.resize(len, if rng.chance(80) { b'y' } else { b' ' });
                    if rng.chance(20) {
                        *line.last_mut().expect("a long line") = b'\r';
                    }
                }
            }
            0 => line = decoration(rng),
            1 => line.insert(0, b'#'),
            2 | 3 => line = decorate(rng, line),
            _ => {}
        }
        out.extend_from_slice(&line);
        match rng.below(20) {
            _ if last && (lost_end || rng.chance(20)) => {}
            0 | 1 => out.extend_from_slice(b"\r\n"),
            2 => out.extend_from_slice(b"\n\n"),
            _ => out.push(b'\n'),
        }
    }
    Some(out)
}

/// An argument: mostly a name or gid of the file (as written, or as Go's
/// `Itoa` writes the number back), else anything from the pool.
fn groups_arg(rng: &mut Rng, fields: &[(Vec<u8>, Vec<u8>)], before: &[String]) -> String {
    let field = (!fields.is_empty()).then(|| &fields[rng.below(fields.len())]);
    match (rng.below(40), field) {
        (0..=17, Some((name, _))) => String::from_utf8_lossy(name).into_owned(),
        (18..=26, Some((_, gid))) => {
            let gid = String::from_utf8_lossy(gid).into_owned();
            match gid.parse::<i64>() {
                Ok(n) if rng.chance(60) => n.to_string(),
                _ => gid,
            }
        }
        (27..=30, _) if !before.is_empty() => before[rng.below(before.len())].clone(),
        (31, _) => format!("{}{}", rng.pick(&GO_SPACES), rng.pick(&GROUP_TOKENS)),
        (32, _) => (rng.next() % 70000).to_string(),
        (33..=35, _) => small_gid(rng),
        _ => rng.pick(&GROUP_TOKENS).to_owned(),
    }
}

fn random_groups_case(rng: &mut Rng) -> GroupsCase {
    let mut fields = Vec::new();
    let group = groups_file(rng, &mut fields);
    let count = if rng.chance(10) { rng.below(12) } else { rng.below(6) };
    let mut args = Vec::new();
    for _ in 0..count {
        let arg = groups_arg(rng, &fields, &args);
        args.push(arg);
    }
    GroupsCase { group, args }
}

/// Cases written out: the remap, taken gids, every token against entries named
/// and numbered after it, spaces, comments, and the 4 KiB chunk boundaries.
fn targeted_groups_cases() -> Vec<GroupsCase> {
    let case = |group: Option<&[u8]>, args: &[&str]| GroupsCase {
        group: group.map(<[u8]>::to_vec),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
    };
    let remap: &[u8] = b"root:x:0:\n1000:x:0:\n4242:x:27:\ng1000:x:1000:\naudio:x:29:\n";
    let mut cases = vec![
        case(Some(remap), &["1000", "4242"]),
        case(Some(remap), &["audio", "29"]),
        case(Some(remap), &["1000", "0", "1000", "g1000"]),
        case(Some(remap), &["0", "1000"]),
        case(Some(remap), &[]),
        case(None, &[]),
        case(None, &["5000"]),
        case(None, &["ghosts"]),
        case(Some(b""), &["ghosts"]),
        case(Some(b"a:x:5:\na:x:6:\n"), &["a", "a"]),
        case(Some(b"a:x:5:\na:x:6:\n"), &["a", "a", "a"]),
        case(Some(b"a:x:5:\na:x:5:\na:x:6:\n"), &["a", "a"]),
        case(Some(b"a:x:5:\nb:x:5:\n"), &["5", "5", "5"]),
        case(Some(b"a:x:5:\n5:x:6:\n"), &["5", "5", "5"]),
        case(Some(b"5:x:6:\na:x:5:\n"), &["5", "a", "5"]),
        case(Some(b"0:x:5:\n"), &["0", "5"]),
        case(Some(b"0:x:5:\n5:x:0:\n"), &["0", "5"]),
        case(Some(b"#a:x:5:\n  a:x:6:  \n"), &["a", "#a"]),
        case(Some(b"a:x:5:\r\nb:x:6:\r\n"), &["a", "b"]),
        case(Some(b"a:x:-1:\nb:x:4294967295:\nc:x:5:\n"), &["a", "b", "c"]),
        case(Some(b"a:x:-1:\n"), &["-1"]),
        case(Some(b"a:x:99999999999999999999:\n"), &["9223372036854775807", "a"]),
        case(Some(b"a:x:4294967296:\n"), &["a", "0"]),
        case(Some(b"a\n:x:7\n"), &["a", "", "0", "7"]),
    ];
    for token in GROUP_TOKENS.iter().chain(&NUMBERS) {
        let files = [
            None,
            Some(format!("g:x:{token}:\n")),
            Some(format!("{token}:x:7:\n")),
            Some(format!("{token}:x:0:\n{token}:x:{token}:\n5:x:{token}:\n")),
        ];
        for file in files {
            let group = file.as_ref().map(String::as_bytes);
            cases.push(case(group, &[token]));
            cases.push(case(group, &[token, token]));
            cases.push(case(group, &[token, "5", "0", token]));
        }
    }
    let mut spaces: Vec<&[u8]> = GO_SPACES.iter().map(|s| s.as_bytes()).collect();
    spaces.extend(NOT_SPACES);
    for space in spaces {
        for (before, after) in [(space, &b""[..]), (&b""[..], space), (space, space)] {
            let group = [before, b"app:x:7:", after, b"\napp:x:8:\n"].concat();
            cases.push(case(Some(&group), &["app", "app", "7", "8"]));
            let group = [b"app:x:", before, b"7", after, b":\n"].concat();
            cases.push(case(Some(&group), &["app", "7"]));
        }
        let arg = format!("{}app", String::from_utf8_lossy(space));
        cases.push(case(Some(b"app:x:7:\n"), &[&arg]));
    }
    for len in GROUP_LONG {
        for ending in [&b"\n"[..], b"\r\n", b""] {
            for head in ["wheel:x:10:app,", "0:x:1000:", "1000:x:0:", "wheel:x:10", "5:x:5:"] {
                let mut line = head.as_bytes().to_vec();
                line.resize(len, b'y');
                let lines = [
                    [&line, ending].concat(),
                    [b"wheel:x:11:\n", &line[..], ending].concat(),
                    [b"a:x:5:\n", &line[..], ending].concat(),
                ];
                // A `\r` landing on the chunk boundary.
                let mut cr = line.clone();
                *cr.last_mut().expect("a long line") = b'\r';
                for group in lines.iter().chain([&[&cr, ending].concat()]) {
                    for args in [&["wheel"][..], &["10"], &["wheel", "wheel"], &["0"], &["1000"], &["5", "a"]]
                    {
                        cases.push(case(Some(group), args));
                    }
                }
            }
        }
    }
    cases
}

/// The oracle's gids in execgate's terms: as the daemon's `uint32`, a sorted set.
fn expected_groups(answer: &Value) -> Result<Vec<u32>, String> {
    if answer["ok"] != Value::Bool(true) {
        return Err(answer["class"].as_str().unwrap_or("?").to_owned());
    }
    let gids = answer["gids"].as_array().expect("gids in a groups answer");
    let mut gids: Vec<u32> = gids.iter().map(|v| v.as_i64().expect("an integer gid") as u32).collect();
    gids.sort_unstable();
    gids.dedup();
    Ok(gids)
}

fn actual_groups(case: &GroupsCase) -> Result<Vec<u32>, String> {
    user::additional_groups(&case.args, case.group.as_deref(), user::LastLine::Kept).map_err(|e| {
        match e {
            UserError::NoUser(_) => "no-user",
            UserError::NoGroup(_) => "no-group",
            UserError::Range(_) => "range",
            UserError::LongLine => "too-long",
        }
        .to_owned()
    })
}

#[test]
fn additional_groups_match_runc() {
    let count = env_number("EXECGATE_ORACLE_CASES", 20_000);
    // Its own stream, so this corpus does not repeat the other's choices.
    let seed = env_number("EXECGATE_ORACLE_SEED", 0x5EED_0FE8_EC0A_7E00) ^ 0x6A09_E667_F3BC_C908;
    let started = Instant::now();
    let mut rng = Rng(seed);
    let mut cases = targeted_groups_cases();
    let targeted = cases.len();
    let batch = 50_000;
    let mut generated = 0;
    let mut total = 0;
    let mut mismatches = Vec::new();
    let mut mismatch_count = 0;
    let mut lost_tails = 0;
    // Lost-line cases where runc 1.1.5's own answer is not within execgate's.
    let mut not_within = Vec::new();
    let mut not_within_count = 0;
    // Cases where execgate's answer is runc's set, but not sorted or with
    // gids repeated (two Go ints the same as `uint32`).
    let mut unsorted = Vec::new();
    let mut unsorted_count = 0;
    let mut outcomes = std::collections::BTreeMap::new();
    loop {
        while generated < count && cases.len() < batch {
            cases.push(random_groups_case(&mut rng));
            generated += 1;
        }
        if cases.is_empty() {
            break;
        }
        let (answers, ours) = std::thread::scope(|scope| {
            let ours = scope.spawn(|| cases.iter().map(actual_groups).collect::<Vec<_>>());
            // Each case as runc 1.1.5 reads it; where it loses the last line,
            // also as newer readers (and execgate) read it.
            let mut input = Vec::with_capacity(cases.len());
            for case in &cases {
                input.push(case.json(case.group.as_deref()));
                if lost_tail(case.group.as_deref()) {
                    input.push(case.json(case.kept_tail().as_deref()));
                }
            }
            let answers = ask_oracle(&input);
            (answers, ours.join().expect("execgate's side panicked"))
        });
        let mut answers = answers.iter();
        for (case, got) in cases.iter().zip(ours) {
            let runc = answers.next().expect("an answer per case");
            let mut answer = runc;
            if lost_tail(case.group.as_deref()) {
                lost_tails += 1;
                answer = answers.next().expect("an answer for the kept last line");
                let old = expected_groups(runc);
                let within = match (&old, &got) {
                    (Ok(old), Ok(got)) => old.iter().all(|g| got.contains(g)),
                    (Err(_), _) => true,
                    (Ok(_), Err(_)) => false,
                };
                if !within {
                    not_within_count += 1;
                    if not_within.len() < 5 {
                        not_within.push(format!(
                            "{}\n  runc 1.1.5: {old:?}\n  execgate:   {got:?}",
                            case.describe()
                        ));
                    }
                }
            }
            let want = expected_groups(answer);
            *outcomes.entry(want.as_ref().map_or_else(Clone::clone, |_| "ok".to_owned())).or_insert(0) += 1;
            // Sets first: Go's order is a map's.
            let as_set = |r: &Result<Vec<u32>, String>| {
                r.clone().map(|mut gids| {
                    gids.sort_unstable();
                    gids.dedup();
                    gids
                })
            };
            if as_set(&got) == want && got != want {
                unsorted_count += 1;
                if unsorted.len() < 5 {
                    unsorted.push(format!(
                        "{}
  runc:     {want:?}
  execgate: {got:?}",
                        case.describe()
                    ));
                }
            }
            if want != as_set(&got) {
                mismatch_count += 1;
                if mismatches.len() < 20 {
                    mismatches.push(format!(
                        "{}\n  runc:     {want:?} ({})\n  execgate: {got:?}",
                        case.describe(),
                        answer["error"].as_str().unwrap_or("")
                    ));
                }
            }
        }
        assert!(answers.next().is_none(), "more answers than questions");
        total += cases.len();
        cases.clear();
    }
    eprintln!(
        "additional groups oracle: {total} cases ({targeted} targeted, {generated} generated from seed {seed:#x}) \
         in {:.1?}; {lost_tails} with a last group line only newer readers keep, {not_within_count} of them \
         where runc 1.1.5's own answer is not within execgate's; runc's answers: {outcomes:?}",
        started.elapsed()
    );
    for example in &not_within {
        eprintln!("  lost last line, runc 1.1.5 not within execgate's answer:\n  {example}");
    }
    assert!(
        mismatches.is_empty(),
        "{mismatch_count} of {total} cases differ from runc:\n{}",
        mismatches.join("\n")
    );
    assert!(
        unsorted.is_empty(),
        "{unsorted_count} of {total} answers are runc's set but not sorted and free of repeats, as \
         additional_groups promises:\n{}",
        unsorted.join("\n")
    );
}
