//! Rego policy (regorus): loading a policy set, judging an input, reloading.
//!
//! The decision is the set `data.execgate.deny`: an exec is allowed iff it is
//! empty. `data.execgate.warn` is recorded, never enforced. Anything that is not
//! a clean evaluation — an error, a timeout, an undefined `deny` — is a denial.

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Value};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The rule whose (set) value decides.
const DENY_RULE: &str = "data.execgate.deny";
/// Advisory messages.
const WARN_RULE: &str = "data.execgate.warn";
/// The optional policy on every other route: its (set) value decides.
const REQUEST_DENY_RULE: &str = "data.execgate.request.deny";
/// The routes (operation ids) the request policy judges; undefined: all.
const REQUEST_ROUTES_RULE: &str = "data.execgate.request.routes";
/// Longest a single evaluation may run.
const EVAL_LIMIT: Duration = Duration::from_millis(250);
/// A reload loads the policy files only once two reads this far apart agree:
/// a file rewritten in place is read whole, not half-written.
const SETTLE: Duration = Duration::from_millis(300);
/// Reads a reload makes before it gives up on files that keep changing.
const SETTLE_READS: usize = 10;

/// The default pack in `policies/`, compiled into the binary.
const BUILTIN: &[(&str, &str)] = &[
    ("builtin:policies/execgate.rego", include_str!("../policies/execgate.rego")),
    ("builtin:policies/execgate_test.rego", include_str!("../policies/execgate_test.rego")),
];

/// One Rego module or data document of a policy set.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Source {
    name: String,
    text: String,
}

/// A compiled policy set, ready to judge.
pub struct PolicySet {
    engine: Engine,
    has_warn: bool,
    request: Option<RequestRules>,
    hash: String,
    names: Vec<String>,
}

/// What a set says about requests other than exec and attach: present only
/// when it defines `data.execgate.request.deny`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RequestRules {
    /// The operation ids it judges (`data.execgate.request.routes`); `None`: every request.
    routes: Option<BTreeSet<String>>,
}

/// What the policy said about one input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Reasons to refuse; empty means allowed.
    pub deny: Vec<String>,
    /// Advisory messages.
    pub warn: Vec<String>,
    /// SHA-256 of the policy set that decided.
    pub policy_hash: String,
}

impl Decision {
    /// Whether the exec may go ahead.
    pub fn allowed(&self) -> bool {
        self.deny.is_empty()
    }
}

/// The outcome of one `test_*` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    /// `package.rule`.
    pub name: String,
    /// Passed (evaluated to `true`).
    pub passed: bool,
    /// Why it failed, when it did.
    pub detail: Option<String>,
}

impl PolicySet {
    /// Loads `paths` (files, or directories of `*.rego` and `data.json`), or the
    /// built-in pack when `paths` is empty. Test files are left out.
    pub fn load(paths: &[PathBuf]) -> Result<Self> {
        let sources = collect(paths)?;
        Self::compile(sources.into_iter().filter(|s| !is_test(&s.name)).collect())
    }

    fn compile(sources: Vec<Source>) -> Result<Self> {
        let mut engine = Engine::new();
        engine.set_strict_builtin_errors(true);
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit: EVAL_LIMIT,
            check_interval: NonZeroU32::MIN,
        });
        let mut hasher = Sha256::new();
        let mut names = Vec::new();
        for source in &sources {
            hasher.update(source.name.as_bytes());
            hasher.update([0]);
            hasher.update(source.text.as_bytes());
            hasher.update([0]);
            names.push(source.name.clone());
            if source.name.ends_with(".json") {
                let value = Value::from_json_str(&source.text)
                    .map_err(|e| anyhow::anyhow!("{}: invalid JSON data: {e}", source.name))?;
                engine
                    .add_data(value)
                    .map_err(|e| anyhow::anyhow!("{}: cannot merge data: {e}", source.name))?;
            } else {
                engine
                    .add_policy(source.name.clone(), source.text.clone())
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .with_context(|| format!("failed to compile policy {}", source.name))?;
            }
        }
        // An evaluation now both warms the engine (clones of a warm engine are
        // cheap) and proves `deny` exists: a set without it would allow nothing
        // silently, or everything.
        engine.set_input(Value::new_object());
        engine.eval_rule(DENY_RULE.to_owned()).map_err(|e| anyhow::anyhow!("{e}")).with_context(|| {
            format!("the policy set must define {DENY_RULE} (package execgate, `deny contains msg if …`)")
        })?;
        let has_warn = engine.eval_rule(WARN_RULE.to_owned()).is_ok();
        let request = match engine.eval_rule(REQUEST_DENY_RULE.to_owned()) {
            Err(_) => None,
            Ok(_) => Some(RequestRules { routes: request_routes(&mut engine)? }),
        };
        let hash = format!("sha256:{:x}", hasher.finalize());
        Ok(PolicySet { engine, has_warn, request, hash, names })
    }

    /// SHA-256 over every module and data file of the set.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Names of the loaded modules and data files.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether requests on the route named `operation` (an operation id of
    /// the Engine API, `None` when the request matches none) are judged by
    /// `data.execgate.request.deny`.
    pub fn judges_request(&self, operation: Option<&str>) -> bool {
        match &self.request {
            None => false,
            Some(RequestRules { routes: None }) => true,
            Some(RequestRules { routes: Some(routes) }) => operation.is_some_and(|op| routes.contains(op)),
        }
    }

    /// Whether the set has a request policy at all.
    pub fn has_request_policy(&self) -> bool {
        self.request.is_some()
    }

    /// Whether the request policy names the routes it judges (then every
    /// decision on them is recorded, allowed ones too).
    pub fn request_routes_listed(&self) -> bool {
        matches!(self.request, Some(RequestRules { routes: Some(_) }))
    }

    /// Judges an exec or attach `input` by `data.execgate.deny`. Never fails:
    /// whatever goes wrong becomes a denial reason.
    pub fn decide(&self, input: &serde_json::Value) -> Decision {
        self.decide_by(input, DENY_RULE, self.has_warn.then_some(WARN_RULE))
    }

    /// Judges a request `input` by `data.execgate.request.deny`; a set without
    /// a request policy denies (it should not have been asked).
    pub fn decide_request(&self, input: &serde_json::Value) -> Decision {
        self.decide_by(input, REQUEST_DENY_RULE, None)
    }

    fn decide_by(&self, input: &serde_json::Value, deny_rule: &str, warn_rule: Option<&str>) -> Decision {
        let mut engine = self.engine.clone();
        let decide = |engine: &mut Engine| -> Result<(Vec<String>, Vec<String>), String> {
            let input =
                Value::from_json_str(&input.to_string()).map_err(|e| format!("cannot convert input: {e}"))?;
            engine.set_input(input);
            let deny = engine.eval_rule(deny_rule.to_owned()).map_err(|e| format!("{e}"))?;
            let deny = messages(&deny).ok_or_else(|| format!("{deny_rule} is not a set (got {deny})"))?;
            let warn = match warn_rule {
                Some(rule) => {
                    let warn = engine.eval_rule(rule.to_owned()).map_err(|e| format!("{e}"))?;
                    messages(&warn).unwrap_or_default()
                }
                None => Vec::new(),
            };
            Ok((deny, warn))
        };
        match decide(&mut engine) {
            Ok((deny, warn)) => Decision { deny, warn, policy_hash: self.hash.clone() },
            Err(err) => Decision {
                deny: vec![format!("policy evaluation failed (fail closed): {err}")],
                warn: Vec::new(),
                policy_hash: self.hash.clone(),
            },
        }
    }
}

/// The routes a request policy lists, if it lists them; a `routes` that is
/// not a set of strings is an error at load, not a policy that judges nothing.
fn request_routes(engine: &mut Engine) -> Result<Option<BTreeSet<String>>> {
    let Ok(routes) = engine.eval_rule(REQUEST_ROUTES_RULE.to_owned()) else {
        return Ok(None);
    };
    if routes == Value::Undefined {
        return Ok(None);
    }
    let set = routes
        .as_set()
        .map_err(|_| anyhow::anyhow!("{REQUEST_ROUTES_RULE} must be a set of operation ids, not {routes}"))?;
    set.iter()
        .map(|v| {
            v.as_string().map(|s| s.to_string()).map_err(|_| {
                anyhow::anyhow!(
                    "{REQUEST_ROUTES_RULE} must be a set of operation ids (strings), not {routes}"
                )
            })
        })
        .collect::<Result<BTreeSet<_>>>()
        .map(Some)
}

/// The strings of a set value; other members are shown as JSON. `None` when the
/// value is not a set (an undefined `deny` included).
fn messages(value: &Value) -> Option<Vec<String>> {
    let set = value.as_set().ok()?;
    Some(
        set.iter()
            .map(|v| match v.as_string() {
                Ok(s) => s.to_string(),
                Err(_) => v.to_json_str().unwrap_or_else(|_| format!("{v}")),
            })
            .collect(),
    )
}

fn is_test(name: &str) -> bool {
    name.ends_with("_test.rego")
}

/// Runs every `test_*` rule of `paths` (or of the built-in pack), test files included.
pub fn run_tests(paths: &[PathBuf]) -> Result<Vec<TestOutcome>> {
    tests_of(collect(paths)?)
}

/// Compiles `sources`, test files included, and runs their `test_*` rules.
fn tests_of(sources: Vec<Source>) -> Result<Vec<TestOutcome>> {
    let mut tests = BTreeSet::new();
    for source in sources.iter().filter(|s| s.name.ends_with(".rego")) {
        let package =
            package_of(&source.text).with_context(|| format!("{}: no `package` declaration", source.name))?;
        for rule in test_rules(&source.text) {
            tests.insert(format!("{package}.{rule}"));
        }
    }
    let set = PolicySet::compile(sources)?;
    let mut outcomes = Vec::new();
    for name in tests {
        let mut engine = set.engine.clone();
        engine.set_input(Value::new_object());
        let (passed, detail) = match engine.eval_rule(format!("data.{name}")) {
            Ok(Value::Bool(true)) => (true, None),
            Ok(Value::Undefined) => (false, Some("undefined (a condition did not hold)".to_owned())),
            Ok(other) => (false, Some(format!("evaluated to {other}, not true"))),
            Err(err) => (false, Some(format!("error: {err}"))),
        };
        outcomes.push(TestOutcome { name, passed, detail });
    }
    Ok(outcomes)
}

/// Compiles the set of `sources` to serve (test files left out) and, when the
/// sources hold tests, requires every one to pass: a policy set whose own
/// tests fail is not what its author meant to deploy.
fn checked(sources: Vec<Source>) -> Result<PolicySet, ReloadError> {
    let has_tests = sources.iter().any(|s| is_test(&s.name));
    let set = PolicySet::compile(sources.iter().filter(|s| !is_test(&s.name)).cloned().collect())
        .map_err(ReloadError::Failed)?;
    if has_tests {
        let outcomes = tests_of(sources).map_err(ReloadError::Failed)?;
        let failed: Vec<String> = outcomes
            .iter()
            .filter(|o| !o.passed)
            .map(|o| format!("{}: {}", o.name, o.detail.as_deref().unwrap_or("failed")))
            .collect();
        if !failed.is_empty() {
            return Err(ReloadError::Rejected(format!(
                "{} of {} policy tests failed: {}",
                failed.len(),
                outcomes.len(),
                failed.join("; ")
            )));
        }
    }
    Ok(set)
}

/// Reads the sources of `paths` until two reads [`SETTLE`] apart agree.
fn read_settled(paths: &[PathBuf]) -> Result<Vec<Source>, ReloadError> {
    let mut last = collect(paths).map_err(ReloadError::Failed)?;
    for _ in 1..SETTLE_READS {
        std::thread::sleep(SETTLE);
        let now = collect(paths).map_err(ReloadError::Failed)?;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
    Err(ReloadError::Rejected(format!(
        "the policy files were still changing after {} reads {SETTLE:?} apart; write new policies beside \
         the old ones and rename them into place",
        SETTLE_READS
    )))
}

/// Why a reload left the last good policy set in force.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The files could not be read or compiled.
    #[error("{0:#}")]
    Failed(anyhow::Error),
    /// The set compiled, but is not one to deploy: its tests fail, or its
    /// files kept changing.
    #[error("{0}")]
    Rejected(String),
}

fn package_of(text: &str) -> Option<String> {
    text.lines().find_map(|l| l.trim().strip_prefix("package ").map(|p| p.trim().to_owned()))
}

/// Top-level rules named `test_…` (declared at the start of a line).
fn test_rules(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with("test_"))
        .filter_map(|l| {
            let end = l.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
            Some(l[..end].to_owned())
        })
        .collect()
}

/// Reads the sources of `paths`, or the built-in pack. Directories contribute
/// their `*.rego` files and `data.json` (not subdirectories).
fn collect(paths: &[PathBuf]) -> Result<Vec<Source>> {
    if paths.is_empty() {
        return Ok(BUILTIN
            .iter()
            .map(|(name, text)| Source { name: (*name).to_owned(), text: (*text).to_owned() })
            .collect());
    }
    let files = files(paths)?;
    if !files.iter().any(|f| f.extension().is_some_and(|x| x == "rego")) {
        bail!(
            "no .rego files in {}",
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    files
        .into_iter()
        .map(|file| {
            let meta =
                std::fs::metadata(&file).with_context(|| format!("failed to read {}", file.display()))?;
            check_owner(&file, &meta)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("failed to read policy file {}", file.display()))?;
            Ok(Source { name: file.display().to_string(), text })
        })
        .collect()
}

/// The files `paths` name: each file, and each directory's `*.rego` and
/// `data.json` (not subdirectories), in name order.
fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("failed to read policy path {}", path.display()))?;
        check_owner(path, &meta)?;
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("failed to list policy directory {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "rego")
                        || p.file_name().is_some_and(|n| n == "data.json")
                })
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Refuses policy files others could have written, as sshd refuses such keys:
/// whoever can edit the policy decides who may exec.
fn check_owner(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != me {
        bail!(
            "refusing policy {}: owned by uid {}, not root or uid {me}; chown it",
            path.display(),
            meta.uid()
        );
    }
    if meta.mode() & 0o022 != 0 {
        bail!(
            "refusing policy {}: writable by group or others (mode {:04o}); chmod go-w it",
            path.display(),
            meta.mode() & 0o7777
        );
    }
    Ok(())
}

/// The policy set in force, swapped whole on reload.
pub struct Policies {
    paths: Vec<PathBuf>,
    current: RwLock<Arc<PolicySet>>,
    /// Whether the set in force has a request policy: read on every request
    /// that is not an exec or attach, so one without pays nothing more.
    judges_requests: AtomicBool,
}

impl Policies {
    /// Loads the set from `paths` (empty: built-in pack); its tests, if it
    /// has any, must pass.
    pub fn load(paths: Vec<PathBuf>) -> Result<Self> {
        let set = checked(collect(&paths)?)?;
        let judges_requests = AtomicBool::new(set.has_request_policy());
        Ok(Policies { paths, current: RwLock::new(Arc::new(set)), judges_requests })
    }

    /// Whether the set in force has a request policy (a cheap check).
    pub fn judges_requests(&self) -> bool {
        self.judges_requests.load(Ordering::Acquire)
    }

    /// The set in force now.
    pub fn current(&self) -> Arc<PolicySet> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// What the policy files look like on disk now (names, sizes, mtimes): a
    /// change means they were edited. `None` for the built-in pack or when the
    /// files cannot be listed (a reload then says why).
    pub fn fingerprint(&self) -> Option<Vec<(PathBuf, u64, std::time::SystemTime)>> {
        if self.paths.is_empty() {
            return None;
        }
        let listed = files(&self.paths).ok()?;
        Some(
            listed
                .into_iter()
                .filter_map(|f| {
                    let meta = std::fs::metadata(&f).ok()?;
                    Some((f, meta.len(), meta.modified().ok()?))
                })
                .collect(),
        )
    }

    /// Reads the files once they have settled, compiles them, runs their
    /// tests and swaps the set in. Otherwise the last good set stays in force
    /// and the error says why. Blocks for at least [`SETTLE`].
    pub fn reload(&self) -> Result<Arc<PolicySet>, ReloadError> {
        let set = Arc::new(checked(read_settled(&self.paths)?)?);
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        *current = set.clone();
        self.judges_requests.store(set.has_request_policy(), Ordering::Release);
        drop(current);
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set_from(text: &str) -> Result<PolicySet> {
        PolicySet::compile(vec![Source { name: "t.rego".into(), text: text.into() }])
    }

    fn sources(texts: &[&str]) -> Result<PolicySet> {
        let sources =
            texts.iter().enumerate().map(|(i, t)| Source { name: format!("t{i}.rego"), text: (*t).into() });
        PolicySet::compile(sources.collect())
    }

    const EXEC: &str = "package execgate\nimport rego.v1\ndeny contains \"no\" if input.x\n";

    #[test]
    fn the_request_policy_is_off_unless_defined_and_judges_only_the_routes_it_lists() {
        let none = sources(&[EXEC]).expect("compiles");
        assert!(!none.has_request_policy());
        assert!(!none.judges_request(Some("ContainerCreate")));
        assert!(!PolicySet::load(&[]).expect("builtin").has_request_policy(), "the default pack has none");

        let all = sources(&[EXEC, "package execgate.request\nimport rego.v1\ndeny contains \"no plugins\" if input.route == \"PluginPull\"\n"])
            .expect("compiles");
        assert!(all.judges_request(Some("ContainerList")) && all.judges_request(None));
        assert!(!all.request_routes_listed());
        let pull = serde_json::json!({"action": "request", "route": "PluginPull"});
        assert_eq!(all.decide_request(&pull).deny, ["no plugins"]);
        assert!(all.decide_request(&serde_json::json!({"route": "ContainerList"})).allowed());
        assert!(all.decide(&serde_json::json!({"x": false})).allowed(), "exec decisions use their own rule");

        let listed = sources(&[
            EXEC,
            "package execgate.request\nimport rego.v1\nroutes := {\"ContainerCreate\", \"PluginPull\"}\ndeny contains \"x\" if false\n",
        ])
        .expect("compiles");
        assert!(listed.request_routes_listed());
        assert!(listed.judges_request(Some("PluginPull")));
        assert!(!listed.judges_request(Some("ContainerList")) && !listed.judges_request(None));

        let bad = sources(&[
            EXEC,
            "package execgate.request\nimport rego.v1\nroutes := {1}\ndeny contains \"x\" if false\n",
        ]);
        assert!(bad.is_err(), "routes must be strings");
    }

    #[test]
    fn builtin_pack_loads_and_its_tests_pass() {
        let set = PolicySet::load(&[]).expect("builtin pack");
        assert!(set.hash().starts_with("sha256:"));
        let outcomes = run_tests(&[]).expect("tests");
        assert!(outcomes.len() >= 5, "{outcomes:?}");
        for outcome in outcomes {
            assert!(outcome.passed, "{outcome:?}");
        }
    }

    #[test]
    fn errors_and_undefined_deny() {
        // A rule that errors at evaluation (strict built-ins) denies.
        let set = set_from("package execgate\nimport rego.v1\ndeny contains msg if { msg := sprintf(\"%d\", [input.x / 0]) }\n")
            .expect("compiles");
        let d = set.decide(&json!({"x": 1}));
        assert!(!d.allowed());
        // A non-set deny denies.
        let set = set_from(
            "package execgate\nimport rego.v1\ndeny := 1 if input.x == 2\ndeny := true if input.x != 2\n",
        )
        .expect("compiles");
        assert!(!set.decide(&json!({"x": 2})).allowed());
        // A set without deny is refused at load.
        assert!(set_from("package execgate\nallow := true\n").is_err());
        assert!(set_from("package other\nimport rego.v1\ndeny contains 1 if false\n").is_err());
        // A syntax error names the file.
        let err = set_from("package execgate\ndeny contains msg if {").err().expect("syntax error");
        assert!(format!("{err:#}").contains("t.rego"), "{err:#}");
    }

    #[test]
    fn deny_and_warn_messages() {
        let set = set_from(
            "package execgate\nimport rego.v1\ndeny contains \"no\" if input.a\nwarn contains \"careful\" if input.b\n",
        )
        .expect("compiles");
        assert_eq!(set.decide(&json!({"a": false, "b": true})).warn, vec!["careful".to_owned()]);
        let d = set.decide(&json!({"a": true}));
        assert_eq!(d.deny, vec!["no".to_owned()]);
        assert!(set.decide(&json!({})).allowed());
    }

    #[test]
    fn test_rule_names_are_found() {
        let names = test_rules(
            "package x\ntest_a if true\ntest_b_2 := true\n  test_indented if true\nnot_test if true\ntest_a if false\n",
        );
        assert_eq!(names.into_iter().collect::<Vec<_>>(), vec!["test_a", "test_b_2"]);
    }
}
