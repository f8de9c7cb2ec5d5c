//! The properties each fuzz target checks, as functions of plain inputs, so
//! the fuzz targets (`fuzz/fuzz_targets/`) and the property tests
//! (`tests/properties.rs`, which includes this file by path) check the same
//! things. Each panics when a property fails.

#![allow(dead_code)]

use std::collections::HashMap;

use arbitrary::Arbitrary;
use execgate::audit::chain::{hash, hex};
use execgate::daemon::inspect::segment;
use execgate::fuzzing::{self, Demux, Report, Route, Stream};
use execgate::gate::create::ExecConfig;
use execgate::gate::start::StartConfig;
use execgate::gate::user::{self, ExecUser, Files, LastLine, UserError};
use serde_json::{Map, Value};

use crate::reference;

/// Route classification (`route::classify`) against the daemon's router:
/// - the same request always classifies the same way;
/// - a path Go's `url.PathUnescape` refuses is refused for every method, and
///   only those are;
/// - a non-POST is never an exec route; a GET is the WebSocket attach exactly
///   where the daemon routes one;
/// - a POST the daemon's patterns route to an exec, resize or attach is
///   classified exactly so (name, version, `/libpod`); where execgate sees an
///   exec route the daemon does not, the name holds a newline (Go's `.` stops
///   there; execgate errs towards "this is an exec");
/// - the path spelled with every byte percent-encoded classifies the same;
/// - the path execgate forwards (the prefix again, the name as a segment)
///   classifies back to the same route.
pub fn route(method: &str, path: &str) {
    let Some(got) = fuzzing::route(method, path) else { return };
    assert_eq!(fuzzing::route(method, path), Some(got.clone()), "classification is stable");
    let post = method == "POST";
    let Some(want) = reference::route::classify(post, path) else {
        assert!(got.is_err(), "{path:?}: Go refuses this escape, execgate read it as {got:?}");
        assert!(fuzzing::route("GET", path).expect("GET").is_err());
        return;
    };
    let got = got.unwrap_or_else(|e| panic!("{path:?}: Go accepts it, execgate refused: {e}"));
    if !post {
        // Only the WebSocket attach is a route to execgate among the others.
        if method == "GET" && want != Route::Other {
            assert_eq!(got, want, "{method} {path:?}");
        } else if got != Route::Other {
            assert!(
                method == "GET" && matches!(got, Route::AttachWebsocket { .. }),
                "{method} {path:?}: {got:?}"
            );
            let name = reference::route::name(&got).expect("a named route");
            assert!(name.contains('\n'), "{path:?}: execgate sees {got:?}, the daemon's router does not");
        }
        return;
    }
    if want != Route::Other {
        assert_eq!(got, want, "{path:?}");
    } else if got != Route::Other {
        let name = reference::route::name(&got).expect("a named route");
        assert!(
            name.contains('\n'),
            "{path:?}: execgate sees {got:?}, the daemon's router sees no exec route"
        );
    }
    let decoded = reference::route::unescape(path).expect("decodes");
    let spelled = reference::route::escape_all(&decoded);
    assert_eq!(fuzzing::route("POST", &spelled).expect("POST"), Ok(got.clone()), "{path:?} as {spelled:?}");
    let rebuilt = match &got {
        Route::ExecCreate { container, prefix } => {
            Some(format!("{}/containers/{}/exec", prefix.path(), segment(container)))
        }
        Route::ExecStart { exec_id, prefix } => {
            Some(format!("{}/exec/{}/start", prefix.path(), segment(exec_id)))
        }
        Route::Attach { container, prefix } => {
            Some(format!("{}/containers/{}/attach", prefix.path(), segment(container)))
        }
        _ => None,
    };
    if let Some(rebuilt) = rebuilt {
        assert_eq!(
            fuzzing::route("POST", &rebuilt).expect("POST"),
            Ok(got),
            "{path:?} forwarded as {rebuilt:?}"
        );
    }
}

fn lossy(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

/// The ignored keys as a record lists them: the first 32, each cut to 128 characters.
fn listed(ignored: &[String]) -> Vec<String> {
    ignored.iter().take(32).map(|k| k.chars().take(128).collect()).collect()
}

/// The exec create decoder (`ExecConfig::decode`) against the reference
/// (entries in document order, Go's case folding, last duplicate wins, `null`
/// keeps a bool or string and nils a list): the same refusals, the same
/// canonical body, the same ignored keys; a body it accepts is valid JSON;
/// the canonical body decodes to the same config with nothing ignored, and
/// encodes to the same bytes again.
pub fn create(body: &[u8]) {
    let (got, (canonical, ignored)) = match (ExecConfig::decode(body), reference::gojson::create(body)) {
        (Err(_), Err(_)) => return,
        (Ok(got), Err(e)) => {
            panic!("{:?}: execgate accepts {got:?}, the reference refuses: {e}", lossy(body))
        }
        (Err(e), Ok(want)) => {
            panic!("{:?}: the reference accepts {want:?}, execgate refuses: {e}", lossy(body))
        }
        (Ok(got), Ok(want)) => (got, want),
    };
    assert!(serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok(), "accepted, so valid JSON");
    let encoded = got.value.encode();
    let as_json: Value = serde_json::from_slice(&encoded).expect("canonical body is JSON");
    assert_eq!(as_json, canonical, "{:?}", lossy(body));
    assert_eq!(got.ignored.total, ignored.len(), "{:?}", lossy(body));
    assert_eq!(got.ignored.keys, listed(&ignored), "{:?}", lossy(body));
    let again = ExecConfig::decode(&encoded).expect("the canonical body decodes");
    assert_eq!(again.value, got.value, "canonical body of {:?}", lossy(body));
    assert!(again.ignored.is_empty());
    assert_eq!(again.value.encode(), encoded);
}

/// The exec start decoder (`StartConfig::decode`) against the reference
/// (Docker's `ExecStartCheck` plus Podman's `h`/`w` as `uint16`; an empty
/// body is a default start): the same refusals, canonical body and ignored
/// keys; a non-empty body it accepts is valid JSON; the canonical body
/// decodes to the same config with nothing ignored.
pub fn start(body: &[u8]) {
    let (got, (canonical, ignored)) = match (StartConfig::decode(body), reference::gojson::start(body)) {
        (Err(_), Err(_)) => return,
        (Ok(got), Err(e)) => {
            panic!("{:?}: execgate accepts {got:?}, the reference refuses: {e}", lossy(body))
        }
        (Err(e), Ok(want)) => {
            panic!("{:?}: the reference accepts {want:?}, execgate refuses: {e}", lossy(body))
        }
        (Ok(got), Ok(want)) => (got, want),
    };
    if !body.iter().all(u8::is_ascii_whitespace) {
        assert!(serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok(), "accepted, so valid JSON");
    }
    let encoded = serde_json::to_vec(&got.value).expect("serializes");
    let as_json: Value = serde_json::from_slice(&encoded).expect("canonical body is JSON");
    assert_eq!(as_json, canonical, "{:?}", lossy(body));
    assert_eq!(got.ignored.total, ignored.len(), "{:?}", lossy(body));
    assert_eq!(got.ignored.keys, listed(&ignored), "{:?}", lossy(body));
    let again = StartConfig::decode(&encoded).expect("the canonical body decodes");
    assert_eq!(again.value, got.value, "canonical body of {:?}", lossy(body));
    assert!(again.ignored.is_empty());
}

/// The stream demuxer (`docker_stream::Demux`) and the recorder's split behind it
/// (`recording::split_utf8`), for `bytes` also fed cut at `cuts` (sorted
/// offsets into `bytes`):
/// - the whole stream demuxes as the reference reads the framing;
/// - fed in chunks, or a byte at a time, it gives the same per-stream runs;
/// - what the recorder keeps of each stream (text, raw bytes, and what it
///   still holds back) is exactly that stream's bytes, in order; it holds
///   back at most an incomplete UTF-8 character.
pub fn demux(bytes: &[u8], cuts: &[usize]) {
    let whole = fuzzing::demux([bytes]);
    assert_eq!(whole, reference::stream::demux(bytes), "whole stream");
    let mut chunks = Vec::new();
    let mut from = 0;
    for &cut in cuts.iter().chain([&bytes.len()]) {
        chunks.push(&bytes[from..cut]);
        from = cut;
    }
    assert_eq!(fuzzing::demux(chunks.iter().copied()), whole, "cut at {cuts:?}");
    if bytes.len() <= 4096 {
        assert_eq!(fuzzing::demux(bytes.chunks(1)), whole, "a byte at a time");
    }

    let name = |stream: Stream| match stream {
        Stream::Stdin => "stdin",
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
        Stream::System => "system",
    };
    let mut demux = Demux::default();
    let mut carry: HashMap<&'static str, Vec<u8>> = HashMap::new();
    let mut kept: HashMap<&'static str, Vec<u8>> = HashMap::new();
    for chunk in &chunks {
        for (stream, part) in demux.feed(chunk) {
            let name = name(stream);
            let buf = carry.entry(name).or_default();
            buf.extend_from_slice(part);
            let (text, raw) = fuzzing::split_utf8(buf);
            assert!(buf.len() <= 3, "holds back {buf:?}");
            if !buf.is_empty() {
                assert!(std::str::from_utf8(buf).is_err_and(|e| e.error_len().is_none()), "{buf:?}");
            }
            let out = kept.entry(name).or_default();
            if let Some(text) = text {
                assert!(!text.is_empty(), "no empty text event");
                assert!(raw.is_none(), "text or raw, not both");
                out.extend_from_slice(text.as_bytes());
            }
            if let Some(raw) = raw {
                assert!(std::str::from_utf8(&raw).is_err(), "raw only when not UTF-8");
                out.extend_from_slice(&raw);
            }
        }
    }
    let mut want: HashMap<&'static str, Vec<u8>> = HashMap::new();
    for (stream, run) in &whole {
        want.entry(name(*stream)).or_default().extend_from_slice(run);
    }
    for (name, out) in &mut kept {
        out.extend_from_slice(&carry[name]);
    }
    assert_eq!(kept, want, "the recording keeps every byte of every stream");
}

/// A passwd or group file: its bytes, with a run of one byte spliced in at
/// `at`, so short inputs reach the runtime's line limits: `count` copies
/// (under 8448, past the group reader's 4 KiB and 8 KiB chunks), or when
/// `long` some 64 KiB (65280 to 65791, around the passwd scanner's limit).
#[derive(Debug, Clone, Arbitrary)]
pub struct File {
    pub bytes: Vec<u8>,
    pub run: Option<(u16, u8, u16)>,
    pub long: bool,
}

impl File {
    pub fn bytes(&self) -> Vec<u8> {
        let mut bytes = self.bytes.clone();
        if let Some((at, byte, count)) = self.run {
            let at = usize::from(at) % (bytes.len() + 1);
            let count = if self.long { 65280 + usize::from(count % 512) } else { usize::from(count % 8448) };
            bytes.splice(at..at, std::iter::repeat_n(byte, count));
        }
        bytes
    }
}

/// One more passwd entry, and a group it is a member of.
#[derive(Debug, Clone, Arbitrary)]
pub struct Entry {
    pub name: String,
    pub uid: i64,
    pub gid: i64,
    pub home: Vec<u8>,
    pub group: String,
    pub group_gid: i64,
    pub others: Vec<String>,
    /// Spaces around both lines: `count` of the `left`th and the `right`th
    /// rune Go's `bytes.TrimSpace` trims.
    pub pad: (u8, u8, u8),
}

/// The runes Go's `unicode.IsSpace` accepts, but the newline: Unicode
/// `White_Space`, as Rust's `char::is_whitespace` reads it.
fn spaces() -> &'static [char] {
    static SPACES: std::sync::OnceLock<Vec<char>> = std::sync::OnceLock::new();
    SPACES.get_or_init(|| {
        (0..=0x10FFFF).filter_map(char::from_u32).filter(|c| c.is_whitespace() && *c != '\n').collect()
    })
}

/// The `user` target's input.
#[derive(Debug, Clone, Arbitrary)]
pub struct UserInput {
    pub spec: String,
    pub args: Vec<String>,
    pub passwd: Option<File>,
    pub group: Option<File>,
    pub entry: Entry,
}

/// The passwd/group reader (`gate::user`):
/// - nothing panics;
/// - `resolve` is `exec_user` with the daemon's `uint32` conversion, both
///   lineages' supplementary groups, and the same refusals;
/// - a newline added to the group file changes nothing runc 1.1.5 reads and
///   turns the last line it loses into an ordinary one, for `exec_user` and
///   `additional_groups` alike;
/// - an entry put first round-trips its fields (see [`user_round_trip`]).
pub fn user(input: &UserInput) {
    let passwd = input.passwd.as_ref().map(File::bytes);
    let group = input.group.as_ref().map(File::bytes);
    user_consistent(&input.spec, passwd.as_deref(), group.as_deref());
    user_groups(&input.args, group.as_deref());
    user_round_trip(&input.entry, passwd.as_deref(), group.as_deref());
}

fn files<'a>(passwd: Option<&'a [u8]>, group: Option<&'a [u8]>) -> Files<'a> {
    Files { passwd, group }
}

fn user_consistent(spec: &str, passwd: Option<&[u8]>, group: Option<&[u8]>) {
    let got = user::exec_user(spec, &files(passwd, group));
    let resolved = user::resolve(spec, &files(passwd, group));
    match (&got, &resolved) {
        (Ok(u), Ok(r)) => {
            let groups: Vec<u32> = u.sgids.iter().chain(&u.lost_sgid).map(|&g| g as u32).collect();
            assert_eq!(
                (r.uid, r.gid, &r.groups, r.is_root),
                (u.uid as u32, u.gid as u32, &groups, u.uid as u32 == 0)
            );
            assert_eq!(r.name, u.name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()));
            assert_eq!(r.spec, spec);
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("exec_user {got:?} but resolve {resolved:?}"),
    }
    let Some(group) = group else { return };
    let mut ended = group.to_vec();
    ended.push(b'\n');
    let again = user::exec_user(spec, &files(passwd, Some(&ended)));
    let group_arg = spec.split(':').nth(1).unwrap_or_default();
    if group_arg.is_empty() {
        let want = got.map(|u| ExecUser {
            sgids: u.sgids.iter().chain(&u.lost_sgid).copied().collect(),
            lost_sgid: None,
            ..u
        });
        assert_eq!(again, want, "{spec:?} with a newline after the group file");
    } else if got.is_ok() {
        // A lost line only adds a last entry, after any that already matched.
        assert_eq!(again, got, "{spec:?} with a newline after the group file");
    }
}

fn user_groups(args: &[String], group: Option<&[u8]>) {
    let lost = user::additional_groups(args, group, LastLine::Lost);
    let kept = user::additional_groups(args, group, LastLine::Kept);
    for gids in [&lost, &kept].into_iter().flatten() {
        assert!(gids.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats: {gids:?}");
    }
    let Some(group) = group else {
        assert_eq!(lost, kept, "no file, nothing to lose");
        return;
    };
    let mut ended = group.to_vec();
    ended.push(b'\n');
    assert_eq!(user::additional_groups(args, Some(&ended), LastLine::Lost), kept, "{args:?}");
    assert_eq!(user::additional_groups(args, Some(&ended), LastLine::Kept), kept, "{args:?}");
}

/// A field fit for a line: no `:` or newline (nor `also`), no leading space
/// (Go's `unicode.IsSpace` is Unicode `White_Space`, as `char::is_whitespace`).
fn field(text: &str, also: &[char]) -> String {
    let text: String =
        text.chars().filter(|c| !matches!(c, ':' | '\n') && !also.contains(c)).take(64).collect();
    text.trim_start().to_owned()
}

/// An entry put first in the files round-trips its fields: looked up by name
/// or by uid it gives back its uid, gid, home and name; its group gives the
/// user that gid as the first supplementary one (none when the group line
/// starts with `#`, a comment), and `user:group` that gid as the primary
/// one; unless a passwd line anywhere is too long for the
/// runtime, which then refuses every spec.
pub fn user_round_trip(entry: &Entry, passwd: Option<&[u8]>, group: Option<&[u8]>) {
    let name = field(&entry.name, &[',']);
    let group_name = field(&entry.group, &[]);
    if name.is_empty() || name.parse::<i64>().is_ok() {
        return;
    }
    let home: Vec<u8> = entry.home.iter().copied().filter(|b| !matches!(b, b':' | b'\n')).take(64).collect();
    let (left, right, count) = entry.pad;
    let pad =
        |index: u8| spaces()[usize::from(index) % spaces().len()].to_string().repeat(usize::from(count % 4));
    let (left, right) = (pad(left), pad(right));
    let mut line = format!("{left}{name}:x:{}:{}:gecos:", entry.uid, entry.gid).into_bytes();
    line.extend_from_slice(&home);
    line.extend_from_slice(format!(":/bin/sh{right}\n").as_bytes());
    line.extend_from_slice(passwd.unwrap_or_default());
    // The name not last: the line's end is trimmed.
    let others = entry.others.iter().map(|o| field(o, &[',']));
    let members: Vec<String> = [name.clone()].into_iter().chain(others).chain(["z".to_owned()]).collect();
    let mut group_file =
        format!("{left}{group_name}:x:{}:{}{right}\n", entry.group_gid, members.join(",")).into_bytes();
    group_file.extend_from_slice(group.unwrap_or_default());
    let with = files(Some(&line), Some(&group_file));

    let too_long = user::exec_user("", &files(passwd, None)) == Err(UserError::LongLine);
    for spec in [name.clone(), entry.uid.to_string()] {
        let got = user::exec_user(&spec, &with);
        if too_long {
            assert_eq!(got, Err(UserError::LongLine), "{spec:?}");
            continue;
        }
        let got = got.unwrap_or_else(|e| panic!("{spec:?}: {e}"));
        assert_eq!((got.uid, got.gid, &got.home), (entry.uid, entry.gid, &home), "{spec:?}");
        assert_eq!(got.name.as_deref(), Some(name.as_bytes()), "{spec:?}");
        if group_name.starts_with('#') {
            // A comment in a group file is no entry at all.
            let without = user::exec_user(&spec, &files(Some(&line), group));
            assert_eq!(Ok(&got), without.as_ref(), "{spec:?}: a group line starting with # is a comment");
        } else {
            assert_eq!(got.sgids.first(), Some(&entry.group_gid), "{spec:?}: its group comes first");
        }
    }
    if too_long || group_name.starts_with('#') || group_name.is_empty() || group_name.parse::<i64>().is_ok() {
        return;
    }
    let spec = format!("{name}:{group_name}");
    let got = user::exec_user(&spec, &with).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
    assert_eq!((got.uid, got.gid, got.sgids.len()), (entry.uid, entry.group_gid, 0), "{spec:?}");
}

/// `audit verify` on any log files and anchor file: it never panics, and
/// when it accepts a log its report is what the files hold (see [`agrees`]).
pub fn verify_raw(files: &[&[u8]], anchors: Option<&[u8]>) {
    if let Ok(report) = fuzzing::verify_log(files, anchors) {
        agrees(&report, files);
    }
}

/// An accepted log's report against the files: one file each, one record a
/// non-empty line, the head seq and hash those of the last line.
fn agrees(report: &Report, files: &[&[u8]]) {
    let lines: Vec<&[u8]> =
        files.iter().flat_map(|f| f.split(|&b| b == b'\n')).filter(|l| !l.is_empty()).collect();
    assert_eq!(report.files, files.len());
    assert_eq!(report.records, lines.len() as u64);
    let last = lines.last().expect("an accepted log has records");
    assert_eq!(report.head, hex(&hash(last)));
    let record: Value = serde_json::from_slice(last).expect("an accepted record is JSON");
    assert_eq!(Some(report.head_seq), record["seq"].as_u64());
    assert!(files.iter().all(|f| f.is_empty() || f.ends_with(b"\n")));
}

/// One way to tamper with a built log.
#[derive(Debug, Clone, Arbitrary)]
pub enum Tamper {
    None,
    Flip {
        line: u8,
        at: u16,
        mask: u8,
    },
    Delete {
        line: u8,
    },
    Swap {
        line: u8,
    },
    Repeat {
        line: u8,
    },
    Cut {
        bytes: u16,
    },
    AnchorPastHead,
    AnchorWrongHash {
        line: u8,
    },
    /// A record rewritten as valid JSON, seq and prev kept: its `note` set to `value`.
    Edit {
        line: u8,
        value: String,
    },
}

/// One record of a built log.
#[derive(Debug, Clone, Arbitrary)]
pub struct Record {
    pub event: u8,
    pub fields: Vec<(u8, String)>,
    /// Opens a new file (the first record always does).
    pub new_file: bool,
    pub anchored: bool,
}

/// A log as the writer builds it, then tampered with.
#[derive(Debug, Clone, Arbitrary)]
pub struct Built {
    pub first_seq: u64,
    pub before: [u8; 32],
    pub records: Vec<Record>,
    pub tamper: Tamper,
}

const EVENTS: [&str; 5] = ["exec.create", "exec.start", "exec.end", "recording.checkpoint", "exec.denied"];
const KEYS: [&str; 4] = ["exec_id", "decision", "user", "note"];

/// `audit verify` on a log built as the writer builds it (seqs, hash chain,
/// a checkpoint opening each file) from up to 12 records, with anchors and
/// one tampering:
/// - an untampered log verifies, with every anchor checked, unless its seqs
///   wrap past `u64::MAX`;
/// - a tampered one does not, whenever tampering is detectable: any byte
///   changed, or a record rewritten as valid JSON with its seq and prev kept,
///   where the record has a successor or an anchor; a record deleted
///   from the middle, or the last one when it is anchored; two records
///   swapped; a record repeated; a tail cut mid-line; an anchor past the
///   head or with a wrong hash;
/// - whatever it accepts, its report agrees with the files.
pub fn verify_built(built: &Built) {
    let records: Vec<&Record> = built.records.iter().take(12).collect();
    if records.is_empty() {
        return;
    }
    let n = records.len();
    let starts: Vec<usize> = (1..n).filter(|&i| records[i].new_file).collect();
    let made: Vec<(String, Map<String, Value>)> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let event = if i == 0 || starts.contains(&i) {
                "audit.checkpoint"
            } else {
                EVENTS[r.event as usize % EVENTS.len()]
            };
            let fields = r
                .fields
                .iter()
                .take(4)
                .map(|(k, v)| (KEYS[*k as usize % KEYS.len()].to_owned(), Value::from(v.as_str())));
            (event.to_owned(), fields.collect())
        })
        .collect();
    let mut lines = reference::chain::build(built.first_seq, built.before, &made);
    let seq = |i: usize| built.first_seq.wrapping_add(i as u64);
    let wraps = built.first_seq.checked_add(n as u64 - 1).is_none();
    let anchored: Vec<usize> = (0..n).filter(|&i| records[i].anchored).collect();
    let mut anchors: Vec<String> =
        anchored.iter().map(|&i| reference::chain::anchor(seq(i), &lines[i])).collect();

    // Whether verify must refuse it (an untampered log must verify, below).
    let mut must_fail = wraps;
    let mut starts = starts;
    match built.tamper {
        Tamper::None | Tamper::Cut { .. } => {}
        Tamper::Flip { line, at, mask } => {
            let i = line as usize % n;
            let len = lines[i].len();
            lines[i][at as usize % len] ^= mask.max(1);
            // The last record has no successor to chain it; an anchor pins
            // it, unless it is also the first, whose seq may now claim that
            // older records (and their anchors) were removed by retention.
            must_fail |= i < n - 1 || (i > 0 && anchored.contains(&i));
        }
        Tamper::Edit { line, ref value } => {
            let i = line as usize % n;
            let mut record: Map<String, Value> = serde_json::from_slice(&lines[i]).expect("a built record");
            let value = match record.get("note") {
                Some(old) if old.as_str() == Some(value.as_str()) => format!("{value}!"),
                _ => value.clone(),
            };
            record.insert("note".into(), Value::from(value));
            lines[i] = serde_json::to_vec(&record).expect("json");
            must_fail |= i < n - 1 || (i > 0 && anchored.contains(&i));
        }
        Tamper::Delete { line } => {
            let i = line as usize % n;
            lines.remove(i);
            starts = starts.into_iter().filter(|&s| s != i).map(|s| if s > i { s - 1 } else { s }).collect();
            // Deleting the first record is what retention does; deleting an
            // end may remove the wrap.
            must_fail = (i > 0 && i < n - 1) || (i == n - 1 && anchored.contains(&i) && !wraps);
        }
        Tamper::Swap { line } => {
            if n < 2 {
                return;
            }
            let i = line as usize % (n - 1);
            lines.swap(i, i + 1);
            must_fail = true;
        }
        Tamper::Repeat { line } => {
            let i = line as usize % n;
            let copy = lines[i].clone();
            lines.insert(i + 1, copy);
            starts = starts.into_iter().map(|s| if s > i { s + 1 } else { s }).collect();
            must_fail = true;
        }
        Tamper::AnchorPastHead => {
            if seq(n - 1) == u64::MAX {
                return;
            }
            anchors.push(reference::chain::anchor(seq(n - 1) + 1, b"x"));
            must_fail = true;
        }
        Tamper::AnchorWrongHash { line } => {
            let i = line as usize % n;
            anchors.push(reference::chain::anchor(seq(i), b"not the record"));
            must_fail = true;
        }
    }
    let mut files = reference::chain::files(&lines, &starts);
    if let Tamper::Cut { bytes } = built.tamper {
        let last = files.last_mut().expect("a file");
        let cut = (bytes as usize % last.len()).max(1);
        last.truncate(last.len() - cut);
        // Cutting whole records off the tail may remove the wrap.
        must_fail = !last.is_empty() && !last.ends_with(b"\n");
    }
    let anchor_file = (!anchors.is_empty()).then(|| anchors.join("\n") + "\n");
    let refs: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
    let result = fuzzing::verify_log(&refs, anchor_file.as_deref().map(str::as_bytes));
    if let Ok(report) = &result {
        agrees(report, &refs);
    }
    if must_fail {
        assert!(result.is_err(), "{:?} verifies: {result:?}", built.tamper);
    }
    if matches!(built.tamper, Tamper::None) && !wraps {
        let report = result.unwrap_or_else(|e| panic!("an untampered log fails: {e}"));
        assert_eq!(report.records, n as u64);
        assert_eq!(report.anchors, anchored.len());
        assert_eq!(report.head_seq, seq(n - 1));
    }
}
