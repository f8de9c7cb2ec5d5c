//! Property tests for the parsers of untrusted input: route classification,
//! the Go-exact create and start decoders, the stream demuxer and recorder
//! split, the passwd/group reader and `audit verify`'s log reader.
//!
//! They check the same properties as the fuzz targets in `fuzz/` (the checks
//! and the reference models are that crate's, included here by path), on
//! inputs proptest builds from the parsers' own vocabulary: route segments and
//! escapes, JSON objects with Go spellings of the daemon's keys, framed
//! streams, passwd and group lines, hash-chained logs with one tampering.
//! The fuzz targets search further; these run in every `cargo test`.

#[path = "../fuzz/src/checks.rs"]
mod checks;
#[path = "../fuzz/src/reference.rs"]
mod reference;

use checks::{Built, Entry, File, Record, Tamper, UserInput};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

// Route classification.

fn path() -> impl Strategy<Value = String> {
    let token = select(vec![
        "/v1.41",
        "/v1.041",
        "/v4.0.0-dev",
        "/v.",
        "/v",
        "/libpod",
        "/containers/",
        "/containers",
        "/exec/",
        "/exec",
        "/start",
        "/resize",
        "/attach",
        "/json",
        "web",
        "a/b",
        "/",
        "//",
        "%2F",
        "%2f",
        "%65",
        "%76",
        "%0A",
        "%ff",
        "%e2%80",
        "%",
        "%zz",
        "%6",
        "\n",
        "é",
        "?",
    ]);
    let piece = prop_oneof![4 => token.prop_map(str::to_owned), 1 => "[ -~]{0,4}", 1 => any::<String>()];
    vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn routes_classify_as_the_daemons_router_does(
        method in select(vec!["POST", "GET", "PUT", "post"]),
        path in path(),
    ) {
        checks::route(method, &path);
    }
}

// The Go-exact decoders.

/// A field's JSON type, for values that mostly fit it.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Str,
    Bool,
    Pair,
    Strings,
    Uint16,
}

impl Kind {
    /// Values of this type, and `null`.
    fn values(self) -> Vec<&'static str> {
        match self {
            Kind::Str => vec!["null", "\"\"", "\"app\"", "\"\\u00e9\\n\""],
            Kind::Bool => vec!["null", "true", "false"],
            Kind::Pair => vec!["null", "[]", "[24,80]", "[null,80]", "[24,80,3]", "[1]"],
            Kind::Strings => vec!["null", "[]", "[\"a\",null]", "[\"id\",\"-u\"]"],
            Kind::Uint16 => vec!["null", "0", "24", "1000", "65535", "65536", "-1", "1.5", "\"80\"", "[]"],
        }
    }
}

/// Values of the wrong type for most fields.
const WRONG: [&str; 8] = ["0", "\"true\"", "\"id\"", "[1]", "[-1]", "[1e2]", "{}", "-0"];

/// A field's name spelled any way Go accepts it: case, `ſ` for s, the Kelvin
/// sign for k.
fn spelled(field: &'static str) -> impl Strategy<Value = String> {
    any::<u64>().prop_map(move |bits| {
        field
            .chars()
            .enumerate()
            .map(|(i, c)| match (c.to_ascii_lowercase(), bits >> (i % 64) & 1, bits >> ((i + 7) % 64) & 1) {
                ('s', 1, 1) => '\u{17F}',
                ('k', 1, 1) => '\u{212A}',
                (_, 1, _) => c.to_ascii_uppercase(),
                (_, _, _) => c.to_ascii_lowercase(),
            })
            .collect::<String>()
    })
}

fn json_value() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        select(vec![
            "null",
            "true",
            "false",
            "0",
            "-0",
            "1",
            "65536",
            "-1",
            "1.5",
            "1e400",
            "18446744073709551616",
            "\"\"",
            "\"\\u0000\"",
            "\"\\ud800\"",
            "\"é\"",
            "tru",
        ])
        .prop_map(str::to_owned),
        "[a-z]{0,6}".prop_map(|s| format!("\"{s}\"")),
    ];
    scalar.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(|items| format!("[{}]", items.join(","))),
            vec(("[a-z]{0,3}", inner), 0..3).prop_map(|entries| {
                let entries: Vec<String> = entries.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", entries.join(","))
            }),
        ]
    })
}

/// One object entry: a field spelled some way with a value mostly of its
/// type, or a key that selects no field.
fn body_entry(fields: Vec<(&'static str, Kind)>) -> impl Strategy<Value = (String, String)> {
    let field = select(fields).prop_flat_map(|(name, kind)| {
        let value = prop_oneof![
            16 => select(kind.values()).prop_map(str::to_owned),
            1 => select(&WRONG[..]).prop_map(str::to_owned),
            1 => json_value(),
        ];
        (spelled(name), value)
    });
    let other =
        select(vec!["Container", "Privileged ", "ıser", "Üser", "Stdin", "OutputCapacity", "hh", "", "x"]);
    prop_oneof![8 => field, 1 => (other.prop_map(str::to_owned), json_value())]
}

/// A body: an object of such entries, sometimes spoiled. Each body uses a
/// few of the fields, so duplicate keys are common.
fn body(fields: &'static [(&'static str, Kind)]) -> impl Strategy<Value = Vec<u8>> {
    let some = proptest::sample::subsequence(fields, 1..=2);
    let object = some.prop_flat_map(|some| vec(body_entry(some), 0..6)).prop_map(|entries| {
        let entries: Vec<String> = entries
            .into_iter()
            .map(|(k, v)| format!("{}:{v}", serde_json::to_string(&k).expect("key")))
            .collect();
        format!("{{{}}}", entries.join(","))
    });
    let spoil = prop_oneof![12 => Just(""), 1 => select(vec![" ", "x", ",", "}"])];
    prop_oneof![
        8 => (object, spoil).prop_map(|(o, s)| format!("{o}{s}").into_bytes()),
        1 => select(vec!["", " \n", "null", "[]", "\"x\"", "{", "{}{}"]).prop_map(|s| s.as_bytes().to_vec()),
        1 => vec(any::<u8>(), 0..32),
    ]
}

const CREATE_FIELDS: &[(&str, Kind)] = &[
    ("User", Kind::Str),
    ("Privileged", Kind::Bool),
    ("Tty", Kind::Bool),
    ("ConsoleSize", Kind::Pair),
    ("AttachStdin", Kind::Bool),
    ("AttachStderr", Kind::Bool),
    ("AttachStdout", Kind::Bool),
    ("Detach", Kind::Bool),
    ("DetachKeys", Kind::Str),
    ("Env", Kind::Strings),
    ("WorkingDir", Kind::Str),
    ("Cmd", Kind::Strings),
];
const START_FIELDS: &[(&str, Kind)] = &[
    ("Detach", Kind::Bool),
    ("Tty", Kind::Bool),
    ("ConsoleSize", Kind::Pair),
    ("h", Kind::Uint16),
    ("w", Kind::Uint16),
];

proptest! {
    // Cheap, and the Go rules hide in combinations (a duplicate key, then null).
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn create_bodies_decode_as_go_decodes_them(body in body(CREATE_FIELDS)) {
        checks::create(&body);
    }

    #[test]
    fn start_bodies_decode_as_go_decodes_them(body in body(START_FIELDS)) {
        checks::start(&body);
    }
}

// The stream demuxer and the recorder's split.

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..24),
        "[a-zé€😀\n]{0,8}".prop_map(String::into_bytes),
        select(vec![&b"\xe2\x82"[..], b"\xac", b"\xff", b"\0\0\0\0\0\0\0\0\0"]).prop_map(<[u8]>::to_vec),
    ]
}

proptest! {
    #[test]
    fn streams_demux_the_same_however_they_are_cut(
        frames in vec((0u8..5, payload()), 0..8),
        tail in vec(any::<u8>(), 0..12),
        cuts in vec(any::<u16>(), 0..6),
    ) {
        let frames: Vec<(u8, &[u8])> = frames.iter().map(|(s, p)| (*s, p.as_slice())).collect();
        let mut bytes = reference::stream::frame(&frames);
        bytes.extend_from_slice(&tail);
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| usize::from(c) % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        checks::demux(&bytes, &cuts);
    }
}

// The passwd/group reader.

fn word() -> impl Strategy<Value = String> {
    let token = select(vec![
        "root",
        "app",
        "wheel",
        "0",
        "1000",
        "-1",
        "+5",
        "010",
        "x",
        "",
        "#c",
        " app",
        "app\u{a0}",
        "\u{85}",
        "\u{b}",
        "\u{3000}",
        "4294967296",
        "99999999999999999999",
        "a,b",
        "app,z",
        ",",
        "\r",
    ]);
    prop_oneof![4 => token.prop_map(str::to_owned), 1 => "[a-z0-9 #,]{0,6}"]
}

fn file() -> impl Strategy<Value = File> {
    let line = (vec(word(), 0..8), select(vec!["\n", "\r\n", ""])).prop_map(|(f, end)| f.join(":") + end);
    let run = prop_oneof![
        3 => Just(None),
        1 => (any::<u16>(), select(vec![b'x', b'\n', b'\r', b' ', b',']), 4000u16..4200, any::<bool>())
            .prop_map(|(at, byte, count, long)| Some(((at, byte, count), long))),
    ];
    (vec(line, 0..6), run).prop_map(|(lines, run)| File {
        bytes: lines.concat().into_bytes(),
        run: run.map(|(r, _)| r),
        long: run.is_some_and(|(_, long)| long),
    })
}

fn entry() -> impl Strategy<Value = Entry> {
    let id = prop_oneof![-2i64..70000, any::<i64>()];
    (
        prop_oneof![word(), any::<String>()],
        id.clone(),
        id.clone(),
        vec(any::<u8>(), 0..12),
        prop_oneof![word(), any::<String>()],
        id,
        vec(word(), 0..3),
        any::<(u8, u8, u8)>(),
    )
        .prop_map(|(name, uid, gid, home, group, group_gid, others, pad)| Entry {
            name,
            uid,
            gid,
            home,
            group,
            group_gid,
            others,
            pad,
        })
}

proptest! {
    #[test]
    fn passwd_and_group_files_read_consistently(
        user in word(),
        group_part in proptest::option::of(word()),
        args in vec(word(), 0..4),
        passwd in proptest::option::of(file()),
        group in proptest::option::of(file()),
        entry in entry(),
    ) {
        let spec = match group_part {
            Some(g) => format!("{user}:{g}"),
            None => user,
        };
        checks::user(&UserInput { spec, args, passwd, group, entry });
    }
}

// `audit verify`'s log reader.

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        2 => Just(Tamper::None),
        1 => (any::<u8>(), any::<u16>(), any::<u8>()).prop_map(|(line, at, mask)| Tamper::Flip { line, at, mask }),
        1 => any::<u8>().prop_map(|line| Tamper::Delete { line }),
        1 => any::<u8>().prop_map(|line| Tamper::Swap { line }),
        1 => any::<u8>().prop_map(|line| Tamper::Repeat { line }),
        1 => any::<u16>().prop_map(|bytes| Tamper::Cut { bytes }),
        1 => Just(Tamper::AnchorPastHead),
        1 => any::<u8>().prop_map(|line| Tamper::AnchorWrongHash { line }),
        1 => (any::<u8>(), "[a-z]{0,4}").prop_map(|(line, value)| Tamper::Edit { line, value }),
    ]
}

fn built() -> impl Strategy<Value = Built> {
    let record = (any::<u8>(), vec((any::<u8>(), "[a-z\"\\\\é]{0,6}"), 0..3), any::<bool>(), any::<bool>())
        .prop_map(|(event, fields, new_file, anchored)| Record { event, fields, new_file, anchored });
    let first_seq = prop_oneof![1u64..4, 0u64..100, (u64::MAX - 4)..=u64::MAX, any::<u64>()];
    (first_seq, any::<[u8; 32]>(), vec(record, 1..8), tamper())
        .prop_map(|(first_seq, before, records, tamper)| Built { first_seq, before, records, tamper })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn logs_verify_exactly_when_untampered(built in built()) {
        checks::verify_built(&built);
    }

    #[test]
    fn any_log_files_verify_without_panic(
        files in vec(vec(prop_oneof![9 => any::<u8>(), 1 => Just(b'\n')], 0..64), 0..3),
        anchors in proptest::option::of(vec(any::<u8>(), 0..32)),
    ) {
        let files: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
        checks::verify_raw(&files, anchors.as_deref());
    }
}
