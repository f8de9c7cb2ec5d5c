//! Container create, old-API start and update bodies, read as the daemon reads
//! them: the values dockerd will apply, for the fields a lockdown policy needs
//! (`input.body` of a request judgement).
//!
//! The rules are those of Go's `encoding/json` decoding into moby's structs
//! (docs/attach-and-routes.md §3–§5), kept exactly for every field exposed here:
//!
//! - keys match a field exactly or under `bytes.EqualFold` (`privileged`,
//!   `ſ` for `s`, the Kelvin sign for `k`); keys that match no field are
//!   skipped (their syntax still checked);
//! - keys apply in document order, and a value decodes **into what is already
//!   there**: a repeated object merges into the struct or map (a struct or map
//!   element of a list too), a repeated list overwrites its elements in place
//!   and keeps the old element wherever the new one is `null` (Go reuses the
//!   slice's backing array — even past its current length), `[]` and `null`
//!   start afresh;
//! - `null` leaves a bool, string or number as it was, and sets a pointer,
//!   list or map to nil (a `null` map value or list element is the zero value);
//! - a wrong JSON type for a field is an error (the daemon answers 400);
//! - `StrSlice` fields (`Cmd`, `Entrypoint`, `CapAdd`, `CapDrop`) take a list
//!   or a single string, and always start afresh.
//!
//! What is not modelled is refused or left to the daemon, never guessed:
//! - a body the daemon refuses for a field not exposed here (say `"Dns":1`) is
//!   `Ok` here and refused there: no values are applied, so nothing judged is
//!   wrong;
//! - bodies Go accepts but `serde_json` does not are refused here: invalid
//!   UTF-8 and lone `\ud800` surrogates (Go substitutes U+FFFD) and `-0` for
//!   an integer.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::gojson;

/// Which daemon's decoding rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Daemon {
    /// dockerd 20.10: the create body is a `ContainerConfigWrapper`, so the
    /// HostConfig fields are also read at the top level and used when
    /// `HostConfig` is absent or `null`; data after the first JSON value is
    /// ignored.
    Docker20,
    /// dockerd 28.x: the create body is a `CreateRequest` (no top-level
    /// HostConfig fields); data after the first value is refused unless it
    /// starts (after white space) with `}` or `]` (Go's `Decoder.More`).
    Docker28,
}

// ---------------------------------------------------------------------------
// Decoding into an existing value, as Go does

/// A value Go decodes in place: the JSON value updates `self`.
trait GoDecode: Default {
    fn decode_into<'de, D: Deserializer<'de>>(&mut self, deserializer: D) -> Result<(), D::Error>;
}

/// A seed that decodes the next value into `&mut T`.
struct Place<'a, T>(&'a mut T);

impl<'de, T: GoDecode> DeserializeSeed<'de> for Place<'_, T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.0.decode_into(deserializer)
    }
}

/// Bools, strings and numbers: a value replaces, `null` keeps.
macro_rules! go_scalar {
    ($($t:ty),*) => {$(
        impl GoDecode for $t {
            fn decode_into<'de, D: Deserializer<'de>>(&mut self, deserializer: D) -> Result<(), D::Error> {
                if let Some(value) = <Option<$t> as serde::Deserialize>::deserialize(deserializer)? {
                    *self = value;
                }
                Ok(())
            }
        }
    )*};
}
go_scalar!(bool, String, i64, u16);

/// A Go pointer (`*bool`, `*Driver`) or a map's nil-ness: `null` sets nil, a
/// value decodes into the pointee (allocated first if nil).
impl<T: GoDecode> GoDecode for Option<T> {
    fn decode_into<'de, D: Deserializer<'de>>(&mut self, deserializer: D) -> Result<(), D::Error> {
        struct V<'a, T>(&'a mut Option<T>);
        impl<'de, T: GoDecode> Visitor<'de> for V<'_, T> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value or null")
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
                *self.0 = None;
                Ok(())
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
                self.visit_none()
            }
            fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
                self.0.get_or_insert_with(T::default).decode_into(deserializer)
            }
        }
        deserializer.deserialize_option(V(self))
    }
}

/// A Go `map[string]V` that is not nil: entries are added to it, each value
/// decoded into a fresh zero `V` (so `null` stores the zero value).
impl<V: GoDecode> GoDecode for BTreeMap<String, V> {
    fn decode_into<'de, D: Deserializer<'de>>(&mut self, deserializer: D) -> Result<(), D::Error> {
        struct Entries<'a, V>(&'a mut BTreeMap<String, V>);
        impl<'de, V: GoDecode> Visitor<'de> for Entries<'_, V> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
                while let Some(key) = map.next_key::<String>()? {
                    let mut value = V::default();
                    map.next_value_seed(Place(&mut value))?;
                    self.0.insert(key, value);
                }
                Ok(())
            }
        }
        deserializer.deserialize_map(Entries(self))
    }
}

/// A Go slice (`[]string`, `[]mount.Mount`) with the elements its backing
/// array still holds past its length. Go decodes each array element into the
/// slice's existing element (a `null` element keeps it; an object merges into
/// it), growing the length into the old backing array before allocating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoSlice<T> {
    /// The slice; `None` is nil.
    items: Option<Vec<T>>,
    /// Elements beyond the length that the backing array still holds.
    spare: Vec<T>,
}

impl<T> Default for GoSlice<T> {
    fn default() -> Self {
        GoSlice { items: None, spare: Vec::new() }
    }
}

impl<T> GoSlice<T> {
    /// The elements, `None` for a nil slice.
    pub fn get(&self) -> Option<&[T]> {
        self.items.as_deref()
    }

    /// A copy as `Option<Vec<T>>`.
    pub fn to_option(&self) -> Option<Vec<T>>
    where
        T: Clone,
    {
        self.items.clone()
    }

    /// The elements, or none for a nil slice.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.get().unwrap_or_default().iter()
    }
}

impl<T: Serialize> Serialize for GoSlice<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.items.serialize(serializer)
    }
}

impl<T: GoDecode> GoDecode for GoSlice<T> {
    fn decode_into<'de, D: Deserializer<'de>>(&mut self, deserializer: D) -> Result<(), D::Error> {
        struct Slice<'a, T>(&'a mut GoSlice<T>);
        impl<'de, T: GoDecode> Visitor<'de> for Slice<'_, T> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array or null")
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
                *self.0 = GoSlice::default();
                Ok(())
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
                self.visit_none()
            }
            fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
                deserializer.deserialize_seq(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
                let slice = self.0;
                let mut items = slice.items.take().unwrap_or_default();
                let mut spare = std::mem::take(&mut slice.spare);
                spare.reverse(); // pop() takes the next element of the backing array
                let mut i = 0;
                loop {
                    if i == items.len() {
                        items.push(spare.pop().unwrap_or_default());
                    }
                    if seq.next_element_seed(Place(&mut items[i]))?.is_none() {
                        break;
                    }
                    i += 1;
                }
                // items[i] is the element peeked at for an element that was
                // not there; it and everything after stay in the backing array.
                let mut rest = items.split_off(i);
                rest.extend(spare.into_iter().rev());
                if i == 0 {
                    // `[]`: Go makes a new empty slice.
                    *slice = GoSlice { items: Some(Vec::new()), spare: Vec::new() };
                } else {
                    *slice = GoSlice { items: Some(items), spare: rest };
                }
                Ok(())
            }
        }
        deserializer.deserialize_option(Slice(self))
    }
}

/// moby's `strslice.StrSlice`: a JSON array of strings or a single string;
/// each value replaces the whole list (its `UnmarshalJSON` starts afresh);
/// `null` is nil.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StrSlice(pub Option<Vec<String>>);

impl StrSlice {
    /// The strings (none for nil).
    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.0.as_deref().unwrap_or_default().iter()
    }
}

impl GoDecode for StrSlice {
    fn decode_into<'de, D: Deserializer<'de>>(&mut self, deserializer: D) -> Result<(), D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Option<Vec<String>>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, an array of strings or null")
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
                deserializer.deserialize_any(self)
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(Some(vec![value.to_owned()]))
            }
            fn visit_string<E: serde::de::Error>(self, value: String) -> Result<Self::Value, E> {
                Ok(Some(vec![value]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<Option<String>>()? {
                    out.push(item.unwrap_or_default());
                }
                Ok(Some(out))
            }
        }
        self.0 = deserializer.deserialize_option(V)?;
        Ok(())
    }
}

/// A JSON object with fields matched as Go matches them.
trait GoStruct: Default {
    /// Whether `key` selects one of the fields.
    fn has_field(key: &str) -> bool;
    /// Decodes the current entry's value into the field `key` selects;
    /// `false` (nothing read) when it selects none.
    fn decode_field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;
}

/// A struct value: an object merges into it, `null` leaves it.
macro_rules! go_struct {
    ($ty:ident { $($name:literal => $($field:ident).+),* $(,)? }) => {
        impl GoStruct for $ty {
            fn has_field(key: &str) -> bool {
                false $(|| gojson::key_matches(key, $name))*
            }
            fn decode_field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
                $(
                    if gojson::key_matches(key, $name) {
                        map.next_value_seed(Place(&mut self.$($field).+))?;
                        return Ok(true);
                    }
                )*
                Ok(false)
            }
        }
        impl GoDecode for $ty {
            fn decode_into<'de, D: Deserializer<'de>>(&mut self, deserializer: D) -> Result<(), D::Error> {
                deserializer.deserialize_option(StructVisitor(self))
            }
        }
    };
}

struct StructVisitor<'a, T>(&'a mut T);

impl<'de, T: GoStruct> Visitor<'de> for StructVisitor<'_, T> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object or null")
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if !self.0.decode_field(&key, &mut map)? {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The views

/// The `Config` part of a create body (its fields sit at the top level).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigView {
    /// The image as given (name, tag, digest or id).
    pub image: String,
    /// User spec; empty means the image's user.
    pub user: String,
    /// The command; `null` (and `[]` with no `Entrypoint`) means the image's.
    pub cmd: StrSlice,
    /// The entrypoint; `null` (or `[]`) means the image's; `[""]` means none
    /// (the daemon stores it as null after merging the image's config).
    pub entrypoint: StrSlice,
    /// Labels given (the image's are added by the daemon where not given).
    pub labels: Option<BTreeMap<String, String>>,
    /// Allocate a TTY.
    pub tty: bool,
    /// Keep stdin open (an attach may then write to PID 1).
    pub open_stdin: bool,
    /// `NAME=value` entries (the image's are added by the daemon for names not given).
    pub env: GoSlice<String>,
}

go_struct!(ConfigView {
    "Image" => image,
    "User" => user,
    "Cmd" => cmd,
    "Entrypoint" => entrypoint,
    "Labels" => labels,
    "Tty" => tty,
    "OpenStdin" => open_stdin,
    "Env" => env,
});

/// `VolumeOptions.DriverConfig` of a mount.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DriverView {
    /// The volume driver; empty means the default (`local`).
    pub name: String,
    /// Driver options (`local`: `type`, `o`, `device`).
    pub options: Option<BTreeMap<String, String>>,
}

go_struct!(DriverView { "Name" => name, "Options" => options });

/// `VolumeOptions` of a mount.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VolumeOptionsView {
    /// The driver and its options, used when the volume is created.
    #[serde(rename = "DriverConfig")]
    pub driver_config: Option<DriverView>,
}

go_struct!(VolumeOptionsView { "DriverConfig" => driver_config });

/// One entry of `HostConfig.Mounts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountView {
    /// `bind`, `volume`, `tmpfs`, `npipe`, `cluster`, `image` (case-sensitive).
    pub r#type: String,
    /// A host path (bind) or volume name (volume).
    pub source: String,
    /// The path in the container.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
    /// Volume options (for `volume` mounts).
    pub volume_options: Option<VolumeOptionsView>,
}

go_struct!(MountView {
    "Type" => r#type,
    "Source" => source,
    "Target" => target,
    "ReadOnly" => read_only,
    "VolumeOptions" => volume_options,
});

/// One entry of `HostConfig.Devices`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceView {
    /// The host device.
    pub path_on_host: String,
    /// Where it appears in the container.
    pub path_in_container: String,
    /// Device cgroup permissions (`rwm`).
    pub cgroup_permissions: String,
}

go_struct!(DeviceView {
    "PathOnHost" => path_on_host,
    "PathInContainer" => path_in_container,
    "CgroupPermissions" => cgroup_permissions,
});

/// The HostConfig the daemon applies, for the fields a lockdown policy needs,
/// plus derived fields (snake_case) computed from them the way the daemon
/// reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostConfigView {
    /// All capabilities and devices, no masked paths.
    #[serde(rename = "Privileged")]
    pub privileged: bool,
    /// Capabilities added, as given (see `cap_add_normalized`).
    #[serde(rename = "CapAdd")]
    pub cap_add: StrSlice,
    /// Capabilities dropped, as given.
    #[serde(rename = "CapDrop")]
    pub cap_drop: StrSlice,
    /// `""`, `host`, `container:X` (case-sensitive).
    #[serde(rename = "PidMode")]
    pub pid_mode: String,
    /// `""` (the daemon's default), `none`, `private`, `shareable`, `host`, `container:X`.
    #[serde(rename = "IpcMode")]
    pub ipc_mode: String,
    /// `""` (the default network), `bridge`, `host`, `none`, `container:X`, a network name.
    #[serde(rename = "NetworkMode")]
    pub network_mode: String,
    /// `""` or `host`.
    #[serde(rename = "UsernsMode")]
    pub userns_mode: String,
    /// `""` or `host`.
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    /// `""` (the daemon's default), `host`, `private`.
    #[serde(rename = "CgroupnsMode")]
    pub cgroupns_mode: String,
    /// `""` or `container:X` (join X's cgroup).
    #[serde(rename = "Cgroup")]
    pub cgroup: String,
    /// `src:dst[:mode]` entries; an absolute `src` is a host bind.
    #[serde(rename = "Binds")]
    pub binds: GoSlice<String>,
    /// Mounts (bind, volume, tmpfs, …).
    #[serde(rename = "Mounts")]
    pub mounts: GoSlice<MountView>,
    /// `name[:ro|rw]`: every mount of each named container, host binds included.
    #[serde(rename = "VolumesFrom")]
    pub volumes_from: GoSlice<String>,
    /// Host devices.
    #[serde(rename = "Devices")]
    pub devices: GoSlice<DeviceView>,
    /// Device cgroup rules (`c 1:3 rwm`, `a *:* rwm`).
    #[serde(rename = "DeviceCgroupRules")]
    pub device_cgroup_rules: GoSlice<String>,
    /// `seccomp=unconfined`, `apparmor=unconfined`, `label=disable`, …
    #[serde(rename = "SecurityOpt")]
    pub security_opt: GoSlice<String>,
    /// `null`: the daemon's default list; `[]`: nothing masked.
    #[serde(rename = "MaskedPaths")]
    pub masked_paths: GoSlice<String>,
    /// `null`: the daemon's default list; `[]`: nothing read-only.
    #[serde(rename = "ReadonlyPaths")]
    pub readonly_paths: GoSlice<String>,
    /// Namespaced sysctls.
    #[serde(rename = "Sysctls")]
    pub sysctls: Option<BTreeMap<String, String>>,
    /// OCI runtime; `""` is the daemon's default.
    #[serde(rename = "Runtime")]
    pub runtime: String,
    /// Run an init as PID 1; `null`: the daemon's default.
    #[serde(rename = "Init")]
    pub init: Option<bool>,

    /// Derived: every host path a mount would bind — each `Binds` entry with
    /// an absolute source (split on `:` as moby's Linux parser does), each
    /// `Mounts` entry of type `bind`, and each `volume` mount whose driver is
    /// `local` (or the default) with an `o` option listing `bind` or `rbind`
    /// (its `device` option) — each cleaned like Go's `path.Clean`. Symlinks
    /// are not resolved (the daemon follows them when it mounts).
    pub bind_sources: Vec<String>,
    /// Derived: the `device` option of every `volume` mount with the `local`
    /// (or default) driver, whatever its `o`: a host block device or path
    /// mounted into the container. (A named volume that already exists keeps
    /// its own options; these apply only when the mount creates it.)
    pub local_volume_devices: Vec<String>,
    /// Derived: `CapAdd` as the daemon reads it: Go's Unicode `ToUpper`, and
    /// `CAP_` prefixed unless `ALL` or already there (`ſys_admin` →
    /// `CAP_SYS_ADMIN`).
    pub cap_add_normalized: Vec<String>,
    /// Derived: the `X` of every `container:X` in `PidMode`, `IpcMode`,
    /// `NetworkMode` and `Cgroup`, as given (a name, id or id prefix), in
    /// that order, without repeats.
    pub shares_namespace_with: Vec<String>,
}

go_struct!(HostConfigView {
    "Privileged" => privileged,
    "CapAdd" => cap_add,
    "CapDrop" => cap_drop,
    "PidMode" => pid_mode,
    "IpcMode" => ipc_mode,
    "NetworkMode" => network_mode,
    "UsernsMode" => userns_mode,
    "UTSMode" => uts_mode,
    "CgroupnsMode" => cgroupns_mode,
    "Cgroup" => cgroup,
    "Binds" => binds,
    "Mounts" => mounts,
    "VolumesFrom" => volumes_from,
    "Devices" => devices,
    "DeviceCgroupRules" => device_cgroup_rules,
    "SecurityOpt" => security_opt,
    "MaskedPaths" => masked_paths,
    "ReadonlyPaths" => readonly_paths,
    "Sysctls" => sysctls,
    "Runtime" => runtime,
    "Init" => init,
});

impl HostConfigView {
    /// Fills in the derived fields from the decoded ones.
    fn derive(&mut self) {
        let mut binds = Vec::new();
        for bind in self.binds.iter() {
            let parts: Vec<&str> = bind.splitn(4, ':').collect();
            if parts.len() >= 2 && parts[0].starts_with('/') {
                binds.push(clean_path(parts[0]));
            }
        }
        let mut devices = Vec::new();
        for mount in self.mounts.iter() {
            match mount.r#type.as_str() {
                "bind" => binds.push(clean_path(&mount.source)),
                "volume" => {
                    let Some(driver) = mount.volume_options.as_ref().and_then(|v| v.driver_config.as_ref())
                    else {
                        continue;
                    };
                    let Some(options) = driver.options.as_ref() else { continue };
                    if !matches!(driver.name.as_str(), "" | "local") {
                        continue;
                    }
                    let Some(device) = options.get("device") else { continue };
                    devices.push(device.clone());
                    let bind =
                        options.get("o").is_some_and(|o| o.split(',').any(|f| f == "bind" || f == "rbind"));
                    if bind {
                        binds.push(clean_path(device));
                    }
                }
                _ => {}
            }
        }
        self.bind_sources = binds;
        self.local_volume_devices = devices;
        self.cap_add_normalized = self.cap_add.iter().map(|c| normalize_capability(c)).collect();
        let mut shared = Vec::new();
        for mode in [&self.pid_mode, &self.ipc_mode, &self.network_mode, &self.cgroup] {
            if let Some(("container", target)) = mode.split_once(':')
                && !shared.iter().any(|s: &String| s == target)
            {
                shared.push(target.to_owned());
            }
        }
        self.shares_namespace_with = shared;
    }
}

/// A capability as moby's `NormalizeLegacyCapabilities` reads it (without
/// its validity check): Go's `strings.ToUpper`, then `CAP_` unless `ALL`.
pub fn normalize_capability(cap: &str) -> String {
    let upper = go_to_upper(cap);
    if upper == "ALL" || upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") }
}

/// Go's `strings.ToUpper`: each rune by its simple (one-rune) upper-case
/// mapping. Rust's `to_uppercase` is the full mapping (`ß` → `SS`); where it
/// gives more than one rune Go's simple mapping is not ASCII (or none), so
/// the rune is kept — which only matters for non-ASCII results, and no
/// capability name has one.
fn go_to_upper(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// Go's `path.Clean`.
pub fn clean_path(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let bytes = path.as_bytes();
    let rooted = bytes[0] == b'/';
    let n = bytes.len();
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let (mut r, mut dotdot) = (0, 0);
    if rooted {
        out.push(b'/');
        r = 1;
        dotdot = 1;
    }
    while r < n {
        if bytes[r] == b'/' || (bytes[r] == b'.' && (r + 1 == n || bytes[r + 1] == b'/')) {
            // An empty or `.` element.
            r += 1;
        } else if bytes[r] == b'.' && bytes[r + 1] == b'.' && (r + 2 == n || bytes[r + 2] == b'/') {
            r += 2;
            if out.len() > dotdot {
                let mut w = out.len() - 1;
                while w > dotdot && out[w] != b'/' {
                    w -= 1;
                }
                out.truncate(w);
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if (rooted && out.len() != 1) || (!rooted && !out.is_empty()) {
                out.push(b'/');
            }
            while r < n && bytes[r] != b'/' {
                out.push(bytes[r]);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        return ".".to_owned();
    }
    // Only ASCII bytes were removed or added at '/' boundaries: still UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// What a create body asks the daemon for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CreateView {
    /// The container config (the top-level fields).
    #[serde(rename = "Config")]
    pub config: ConfigView,
    /// The HostConfig the daemon applies; `null`: none was given (all defaults).
    #[serde(rename = "HostConfig")]
    pub host_config: Option<HostConfigView>,
    /// Whether a non-null `NetworkingConfig` was given (its contents are not read here).
    pub networking_config_present: bool,
}

// ---------------------------------------------------------------------------
// The top-level wrappers

/// The fields of a create (or 20.10 old start) body that sit at the top level.
#[derive(Default)]
struct Wrapper {
    daemon: Option<Daemon>,
    /// `*container.Config`: allocated by the first Config key.
    config: Option<ConfigView>,
    /// `HostConfig`.
    inner: Option<HostConfigView>,
    /// 20.10's embedded `*container.HostConfig`: allocated by the first
    /// top-level HostConfig key (even one whose value is `null`).
    top: Option<HostConfigView>,
    /// `NetworkingConfig`, as nil or not.
    networking: Option<()>,
}

/// `NetworkingConfig`: its syntax is checked, its contents skipped.
impl GoDecode for () {
    fn decode_into<'de, D: Deserializer<'de>>(&mut self, deserializer: D) -> Result<(), D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(())
            }
        }
        deserializer.deserialize_map(V)
    }
}

impl Wrapper {
    /// The HostConfig the daemon ends up with (`getHostConfig` in 20.10).
    fn host_config(&self) -> Option<HostConfigView> {
        let mut hc = match self.daemon {
            Some(Daemon::Docker20) => self.inner.clone().or_else(|| self.top.clone()),
            _ => self.inner.clone(),
        };
        if let Some(hc) = hc.as_mut() {
            hc.derive();
        }
        hc
    }
}

struct WrapperSeed<'a>(&'a mut Wrapper);

impl<'de> DeserializeSeed<'de> for WrapperSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for WrapperSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a container config object")
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let w = self.0;
        let docker20 = w.daemon == Some(Daemon::Docker20);
        while let Some(key) = map.next_key::<String>()? {
            // Field names are distinct under folding across Config, the
            // wrapper and HostConfig (with Resources), so order is immaterial.
            if gojson::key_matches(&key, "HostConfig") {
                map.next_value_seed(Place(&mut w.inner))?;
            } else if gojson::key_matches(&key, "NetworkingConfig") {
                map.next_value_seed(Place(&mut w.networking))?;
            } else if ConfigView::has_field(&key) {
                w.config.get_or_insert_with(ConfigView::default).decode_field(&key, &mut map)?;
            } else if docker20 && HostConfigView::has_field(&key) {
                w.top.get_or_insert_with(HostConfigView::default).decode_field(&key, &mut map)?;
            } else {
                if docker20 && !is_config_key(&key) && !is_wrapper_key(&key) && is_host_config_key(&key) {
                    // A HostConfig field not exposed here still allocates 20.10's
                    // embedded HostConfig.
                    w.top.get_or_insert_with(HostConfigView::default);
                }
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Every JSON name of moby's `container.Config` (20.10 and 28.5).
const CONFIG_KEYS: &[&str] = &[
    "Hostname",
    "Domainname",
    "User",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "ExposedPorts",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Env",
    "Cmd",
    "Healthcheck",
    "ArgsEscaped",
    "Image",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "NetworkDisabled",
    "MacAddress",
    "OnBuild",
    "Labels",
    "StopSignal",
    "StopTimeout",
    "Shell",
];

/// Every JSON name of moby 20.10's `container.HostConfig`, its embedded
/// `Resources` included (the fields 20.10 also reads at the top level).
const HOST_CONFIG_KEYS: &[&str] = &[
    "Binds",
    "ContainerIDFile",
    "LogConfig",
    "NetworkMode",
    "PortBindings",
    "RestartPolicy",
    "AutoRemove",
    "VolumeDriver",
    "VolumesFrom",
    "CapAdd",
    "CapDrop",
    "CgroupnsMode",
    "Dns",
    "DnsOptions",
    "DnsSearch",
    "ExtraHosts",
    "GroupAdd",
    "IpcMode",
    "Cgroup",
    "Links",
    "OomScoreAdj",
    "PidMode",
    "Privileged",
    "PublishAllPorts",
    "ReadonlyRootfs",
    "SecurityOpt",
    "StorageOpt",
    "Tmpfs",
    "UTSMode",
    "UsernsMode",
    "ShmSize",
    "Sysctls",
    "Runtime",
    "ConsoleSize",
    "Isolation",
    "CpuShares",
    "Memory",
    "NanoCpus",
    "CgroupParent",
    "BlkioWeight",
    "BlkioWeightDevice",
    "BlkioDeviceReadBps",
    "BlkioDeviceWriteBps",
    "BlkioDeviceReadIOps",
    "BlkioDeviceWriteIOps",
    "CpuPeriod",
    "CpuQuota",
    "CpuRealtimePeriod",
    "CpuRealtimeRuntime",
    "CpusetCpus",
    "CpusetMems",
    "Devices",
    "DeviceCgroupRules",
    "DeviceRequests",
    "KernelMemory",
    "KernelMemoryTCP",
    "MemoryReservation",
    "MemorySwap",
    "MemorySwappiness",
    "OomKillDisable",
    "PidsLimit",
    "Ulimits",
    "CpuCount",
    "CpuPercent",
    "IOMaximumIOps",
    "IOMaximumBandwidth",
    "Mounts",
    "MaskedPaths",
    "ReadonlyPaths",
    "Init",
];

fn is_config_key(key: &str) -> bool {
    CONFIG_KEYS.iter().any(|name| gojson::key_matches(key, name))
}

fn is_host_config_key(key: &str) -> bool {
    HOST_CONFIG_KEYS.iter().any(|name| gojson::key_matches(key, name))
}

/// The 20.10 wrapper's own fields.
fn is_wrapper_key(key: &str) -> bool {
    ["HostConfig", "NetworkingConfig", "Cpuset"].iter().any(|name| gojson::key_matches(key, name))
}

/// Decodes the first JSON value of `body` into `seed`, then applies the
/// daemon's rule for what follows it.
fn decode_first<F>(body: &[u8], daemon: Daemon, decode: F) -> Result<(), String>
where
    F: FnOnce(&mut serde_json::Deserializer<serde_json::de::SliceRead<'_>>) -> Result<(), serde_json::Error>,
{
    // Where the first value ends (Go's Decoder reads exactly one value).
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<IgnoredAny>();
    match values.next() {
        None => return Err("invalid JSON: got EOF while reading request body".to_owned()),
        Some(Err(e)) => return Err(format!("invalid JSON: {e}")),
        Some(Ok(_)) => {}
    }
    let end = values.byte_offset();
    let (first, rest) = body.split_at(end);
    if daemon == Daemon::Docker28 {
        // `Decoder.More`: more content unless the next non-space byte is `}` or `]`.
        let next = rest.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
        if next.is_some_and(|b| *b != b'}' && *b != b']') {
            return Err("unexpected content after JSON".to_owned());
        }
    }
    let mut de = serde_json::Deserializer::from_slice(first);
    decode(&mut de).map_err(|e| format!("invalid JSON: {e}"))?;
    de.end().map_err(|e| format!("invalid JSON: {e}"))
}

/// Decodes a `POST /containers/create` body as `daemon` does: the container
/// config and the HostConfig it will apply. An empty body, `null`, a
/// non-object, or an object with no Config field is refused, as the daemon
/// refuses it (`config cannot be empty`).
pub fn decode_create(body: &[u8], daemon: Daemon) -> Result<CreateView, String> {
    let mut w = Wrapper { daemon: Some(daemon), ..Wrapper::default() };
    decode_first(body, daemon, |de| WrapperSeed(&mut w).deserialize(de))?;
    let host_config = w.host_config();
    let Some(config) = w.config else {
        return Err("Config cannot be empty in order to create a container".to_owned());
    };
    Ok(CreateView { config, host_config, networking_config_present: w.networking.is_some() })
}

/// Decodes the body of an old-API start (`POST /v1.23/containers/{id}/start`,
/// dockerd 20.10 only) as 20.10 does: the same wrapper as create, so the bare
/// HostConfig fields at the top level or `{"HostConfig":{…}}` (which wins).
///
/// `Some`: the HostConfig that **replaces** the container's stored one
/// wholesale (and persists). `None`: the daemon applies none (`null`, `{}`,
/// only unknown or Config keys) and starts the container as it is.
///
/// The daemon decodes the body only when its Content-Length is above 7 or it
/// is chunked, and only below API 1.24; the caller decides that.
pub fn decode_start_host_config(body: &[u8]) -> Result<Option<HostConfigView>, String> {
    let mut w = Wrapper { daemon: Some(Daemon::Docker20), ..Wrapper::default() };
    decode_first(body, Daemon::Docker20, |de| WrapperSeed(&mut w).deserialize(de))?;
    Ok(w.host_config())
}

/// `RestartPolicy` of an update.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicyView {
    /// `no`, `always`, `unless-stopped`, `on-failure`.
    pub name: String,
    /// Retries for `on-failure`.
    pub maximum_retry_count: i64,
}

go_struct!(RestartPolicyView { "Name" => name, "MaximumRetryCount" => maximum_retry_count });

/// What a `POST /containers/{id}/update` body changes. The daemon applies a
/// resource only when it is non-zero (zero: unchanged), and the restart
/// policy only when its name is not empty. `Devices`, `DeviceRequests` and
/// `DeviceCgroupRules` in an update body are decoded and dropped, so they are
/// not here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UpdateView {
    #[serde(rename = "BlkioWeight")]
    pub blkio_weight: u16,
    #[serde(rename = "CpuShares")]
    pub cpu_shares: i64,
    #[serde(rename = "NanoCpus")]
    pub nano_cpus: i64,
    #[serde(rename = "CpuPeriod")]
    pub cpu_period: i64,
    #[serde(rename = "CpuQuota")]
    pub cpu_quota: i64,
    #[serde(rename = "CpuRealtimePeriod")]
    pub cpu_realtime_period: i64,
    #[serde(rename = "CpuRealtimeRuntime")]
    pub cpu_realtime_runtime: i64,
    #[serde(rename = "CpusetCpus")]
    pub cpuset_cpus: String,
    #[serde(rename = "CpusetMems")]
    pub cpuset_mems: String,
    #[serde(rename = "Memory")]
    pub memory: i64,
    #[serde(rename = "MemorySwap")]
    pub memory_swap: i64,
    #[serde(rename = "MemoryReservation")]
    pub memory_reservation: i64,
    /// Ignored by 28.x at API 1.42 and later.
    #[serde(rename = "KernelMemory")]
    pub kernel_memory: i64,
    /// `null`: unchanged; 0 (from any value ≤ 0): unlimited. Ignored below API 1.40.
    #[serde(rename = "PidsLimit")]
    pub pids_limit: Option<i64>,
    /// `null`: unchanged (the daemon applies a policy only with a name).
    #[serde(rename = "RestartPolicy")]
    pub restart_policy: Option<RestartPolicyView>,
}

/// The update body as decoded, before the daemon's adjustments.
#[derive(Default)]
struct UpdateBody {
    view: UpdateView,
    restart_policy: RestartPolicyView,
    // Decoded (and type-checked) by the daemon, then dropped.
    devices: GoSlice<DeviceView>,
    device_cgroup_rules: GoSlice<String>,
}

go_struct!(UpdateBody {
    "BlkioWeight" => view.blkio_weight,
    "CpuShares" => view.cpu_shares,
    "NanoCpus" => view.nano_cpus,
    "CpuPeriod" => view.cpu_period,
    "CpuQuota" => view.cpu_quota,
    "CpuRealtimePeriod" => view.cpu_realtime_period,
    "CpuRealtimeRuntime" => view.cpu_realtime_runtime,
    "CpusetCpus" => view.cpuset_cpus,
    "CpusetMems" => view.cpuset_mems,
    "Memory" => view.memory,
    "MemorySwap" => view.memory_swap,
    "MemoryReservation" => view.memory_reservation,
    "KernelMemory" => view.kernel_memory,
    "PidsLimit" => view.pids_limit,
    "RestartPolicy" => restart_policy,
    "Devices" => devices,
    "DeviceCgroupRules" => device_cgroup_rules,
});

/// Decodes a `POST /containers/{id}/update` body as `daemon` does. 28.x
/// accepts an empty body (Content-Length 0) as no change; 20.10 refuses it.
pub fn decode_update(body: &[u8], daemon: Daemon) -> Result<UpdateView, String> {
    if body.is_empty() && daemon == Daemon::Docker28 {
        return Ok(UpdateView::default());
    }
    let mut update = UpdateBody::default();
    decode_first(body, daemon, |de| StructVisitorSeed(&mut update).deserialize(de))?;
    let mut view = update.view;
    if let Some(limit) = view.pids_limit.as_mut() {
        *limit = (*limit).max(0);
    }
    if !update.restart_policy.name.is_empty() {
        view.restart_policy = Some(update.restart_policy);
    }
    Ok(view)
}

struct StructVisitorSeed<'a, T>(&'a mut T);

impl<'de, T: GoStruct> DeserializeSeed<'de> for StructVisitorSeed<'_, T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(StructVisitor(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::Daemon::{Docker20, Docker28};
    use super::*;
    use serde_json::{Value, json};

    fn create(body: &str, daemon: Daemon) -> CreateView {
        decode_create(body.as_bytes(), daemon).unwrap_or_else(|e| panic!("{daemon:?} {body}: {e}"))
    }

    /// `input.body` as policy sees it.
    fn view(body: &str, daemon: Daemon) -> Value {
        serde_json::to_value(create(body, daemon)).expect("json")
    }

    fn hc(body: &str, daemon: Daemon) -> Value {
        view(body, daemon)["HostConfig"].clone()
    }

    const BOTH: [Daemon; 2] = [Docker20, Docker28];

    #[test]
    fn keys_fold_like_go() {
        for (body, path, want) in [
            (r#"{"Image":"i","HostConfig":{"privileged":true}}"#, "Privileged", json!(true)),
            (r#"{"Image":"i","hostconfig":{"PRIVILEGED":true}}"#, "Privileged", json!(true)),
            (r#"{"Image":"i","HOSTCONFIG":{"UſernſMode":"host"}}"#, "UsernsMode", json!("host")),
            (r#"{"Image":"i","HostConfig":{"Mas\u212AedPaths":[]}}"#, "MaskedPaths", json!([])),
            (r#"{"Image":"i","HostConfig":{"\u0050idMode":"host"}}"#, "PidMode", json!("host")),
            (r#"{"Image":"i","HostConfig":{"bindſ":["/:/h"]}}"#, "Binds", json!(["/:/h"])),
            (r#"{"Image":"i","HostConfig":{"Privileged ":true}}"#, "Privileged", json!(false)),
            (r#"{"Image":"i","HostConfig":{"Prıvileged":true}}"#, "Privileged", json!(false)),
            (
                r#"{"Image":"i","HostConfig":{"Devices":[{"pathonhost":"/dev/sda"}]}}"#,
                "Devices",
                json!([{"PathOnHost":"/dev/sda","PathInContainer":"","CgroupPermissions":""}]),
            ),
        ] {
            for daemon in BOTH {
                assert_eq!(hc(body, daemon)[path], want, "{daemon:?} {body}");
            }
        }
        let v = view(r#"{"image":"busybox","uſer":"root","TTY":true,"openſtdin":true,"cmd":"sh"}"#, Docker28);
        assert_eq!(v["Config"]["Image"], "busybox");
        assert_eq!(v["Config"]["User"], "root");
        assert_eq!(v["Config"]["Tty"], true);
        assert_eq!(v["Config"]["OpenStdin"], true);
        assert_eq!(v["Config"]["Cmd"], json!(["sh"]));
    }

    #[test]
    fn duplicates_merge_and_last_leaf_wins() {
        for (body, path, want) in [
            (
                r#"{"Image":"i","HostConfig":{"Privileged":true},"HostConfig":{"PidMode":"host"}}"#,
                "Privileged",
                json!(true),
            ),
            (
                r#"{"Image":"i","HostConfig":{"Privileged":true},"HostConfig":{"PidMode":"host"}}"#,
                "PidMode",
                json!("host"),
            ),
            (r#"{"Image":"i","HostConfig":{"PidMode":"host","pidmode":""}}"#, "PidMode", json!("")),
            (
                r#"{"Image":"i","HostConfig":{"Sysctls":{"a":"1"},"sysctls":{"b":"2"}}}"#,
                "Sysctls",
                json!({"a":"1","b":"2"}),
            ),
            (r#"{"Image":"i","HostConfig":{"Sysctls":{"a":"1","a":null}}}"#, "Sysctls", json!({"a":""})),
            (
                r#"{"Image":"i","HostConfig":{"Binds":["/a:/a","/b:/b"],"Binds":["/c:/c"]}}"#,
                "Binds",
                json!(["/c:/c"]),
            ),
            // A null element keeps the slice's old element, even past its length.
            (
                r#"{"Image":"i","HostConfig":{"Binds":["/a:/a","/b:/b"],"Binds":[null]}}"#,
                "Binds",
                json!(["/a:/a"]),
            ),
            (
                r#"{"Image":"i","HostConfig":{"Binds":["/a:/a","/b:/b"],"Binds":["/c:/c"],"Binds":["/d:/d",null,null]}}"#,
                "Binds",
                json!(["/d:/d", "/b:/b", ""]),
            ),
            (
                r#"{"Image":"i","HostConfig":{"Binds":["/a:/a"],"Binds":[],"Binds":[null]}}"#,
                "Binds",
                json!([""]),
            ),
            (
                r#"{"Image":"i","HostConfig":{"Binds":["/a:/a"],"Binds":null,"Binds":[null]}}"#,
                "Binds",
                json!([""]),
            ),
            // Struct elements merge into the old element.
            (
                r#"{"Image":"i","HostConfig":{"Mounts":[{"Type":"bind","Source":"/","Target":"/h"}],"Mounts":[{"Target":"/x"}]}}"#,
                "Mounts",
                json!([{"Type":"bind","Source":"/","Target":"/x","ReadOnly":false,"VolumeOptions":null}]),
            ),
            (
                r#"{"Image":"i","HostConfig":{"Devices":[{"PathOnHost":"/dev/sda"}],"Devices":[{"PathInContainer":"/dev/x"}]}}"#,
                "Devices",
                json!([{"PathOnHost":"/dev/sda","PathInContainer":"/dev/x","CgroupPermissions":""}]),
            ),
            // StrSlice starts afresh every time.
            (r#"{"Image":"i","HostConfig":{"CapAdd":["A","B"],"CapAdd":[null]}}"#, "CapAdd", json!([""])),
        ] {
            for daemon in BOTH {
                assert_eq!(hc(body, daemon)[path], want, "{daemon:?} {body}");
            }
        }
        let v = view(
            r#"{"Image":"i","Labels":{"a":"1"},"labels":{"b":"2"},"Env":["A=1","B=2"],"env":["C=3"]}"#,
            Docker20,
        );
        assert_eq!(v["Config"]["Labels"], json!({"a":"1","b":"2"}));
        assert_eq!(v["Config"]["Env"], json!(["C=3"]));
    }

    #[test]
    fn nulls() {
        for (body, path, want) in [
            (
                r#"{"Image":"i","HostConfig":{"Privileged":true,"Privileged":null}}"#,
                "Privileged",
                json!(true),
            ),
            (r#"{"Image":"i","HostConfig":{"PidMode":"host","PidMode":null}}"#, "PidMode", json!("host")),
            (r#"{"Image":"i","HostConfig":{"CapAdd":["X"],"CapAdd":null}}"#, "CapAdd", Value::Null),
            (r#"{"Image":"i","HostConfig":{"MaskedPaths":null}}"#, "MaskedPaths", Value::Null),
            (r#"{"Image":"i","HostConfig":{"MaskedPaths":[]}}"#, "MaskedPaths", json!([])),
            (r#"{"Image":"i","HostConfig":{"Init":true,"Init":null}}"#, "Init", Value::Null),
            (r#"{"Image":"i","HostConfig":{"Init":false}}"#, "Init", json!(false)),
            (r#"{"Image":"i","HostConfig":{"Sysctls":{"a":"1"},"Sysctls":null}}"#, "Sysctls", Value::Null),
            (
                r#"{"Image":"i","HostConfig":{"Mounts":[{"Type":"volume","VolumeOptions":{"DriverConfig":{"Name":"local"}}}],"Mounts":[{"VolumeOptions":{"DriverConfig":null}}]}}"#,
                "Mounts",
                json!([{"Type":"volume","Source":"","Target":"","ReadOnly":false,"VolumeOptions":{"DriverConfig":null}}]),
            ),
            (
                r#"{"Image":"i","HostConfig":{"Devices":[{"PathOnHost":"/dev/sda"}],"Devices":[null]}}"#,
                "Devices",
                json!([{"PathOnHost":"/dev/sda","PathInContainer":"","CgroupPermissions":""}]),
            ),
        ] {
            for daemon in BOTH {
                assert_eq!(hc(body, daemon)[path], want, "{daemon:?} {body}");
            }
        }
        for daemon in BOTH {
            let v = view(r#"{"Image":"i","HostConfig":{"Privileged":true},"HostConfig":null}"#, daemon);
            assert_eq!(v["HostConfig"], Value::Null, "{daemon:?}");
            let v = view(r#"{"Image":"i","HostConfig":null,"HostConfig":{"PidMode":"host"}}"#, daemon);
            assert_eq!(v["HostConfig"]["Privileged"], false);
            assert_eq!(v["HostConfig"]["PidMode"], "host");
            assert_eq!(
                view(r#"{"Image":"i","NetworkingConfig":{}}"#, daemon)["networking_config_present"],
                true
            );
            assert_eq!(
                view(r#"{"Image":"i","NetworkingConfig":{},"networkingconfig":null}"#, daemon)["networking_config_present"],
                false
            );
        }
    }

    #[test]
    fn strslice_takes_a_string_or_a_list() {
        for (body, cap_add, cmd) in [
            (r#"{"Cmd":"sh","HostConfig":{"CapAdd":"SYS_ADMIN"}}"#, json!(["SYS_ADMIN"]), json!(["sh"])),
            (r#"{"Cmd":["a",null],"HostConfig":{"CapAdd":""}}"#, json!([""]), json!(["a", ""])),
            (r#"{"Cmd":[],"HostConfig":{"CapAdd":[]}}"#, json!([]), json!([])),
            (r#"{"Cmd":null,"HostConfig":{}}"#, Value::Null, Value::Null),
        ] {
            for daemon in BOTH {
                let v = view(body, daemon);
                assert_eq!(v["HostConfig"]["CapAdd"], cap_add, "{daemon:?} {body}");
                assert_eq!(v["Config"]["Cmd"], cmd, "{daemon:?} {body}");
            }
        }
    }

    #[test]
    fn docker20_reads_top_level_host_config_fields() {
        let top =
            r#"{"Image":"i","Privileged":true,"PidMode":"host","Binds":["/:/host"],"CapAdd":"SYS_ADMIN"}"#;
        let v = hc(top, Docker20);
        assert_eq!(v["Privileged"], true);
        assert_eq!(v["PidMode"], "host");
        assert_eq!(v["Binds"], json!(["/:/host"]));
        assert_eq!(v["bind_sources"], json!(["/"]));
        assert_eq!(v["cap_add_normalized"], json!(["CAP_SYS_ADMIN"]));
        assert_eq!(hc(top, Docker28), Value::Null, "28.x ignores them");
        // With HostConfig present the top level is ignored; with null it applies.
        let present = r#"{"Image":"i","Privileged":true,"HostConfig":{}}"#;
        assert_eq!(hc(present, Docker20)["Privileged"], false);
        let null = r#"{"Image":"i","HostConfig":{"PidMode":"host"},"Privileged":true,"HostConfig":null}"#;
        assert_eq!(hc(null, Docker20)["Privileged"], true);
        assert_eq!(hc(null, Docker20)["PidMode"], "");
        assert_eq!(hc(null, Docker28), Value::Null);
        // A top-level key with a null value (or one not exposed) still selects
        // the top-level HostConfig: present, all defaults.
        assert_eq!(hc(r#"{"Image":"i","Privileged":null}"#, Docker20)["Privileged"], false);
        assert_eq!(hc(r#"{"Image":"i","Dns":["1.1.1.1"]}"#, Docker20)["Privileged"], false);
        assert_eq!(hc(r#"{"Image":"i","Cpuset":"0"}"#, Docker20), Value::Null);
        assert_eq!(hc(r#"{"Image":"i"}"#, Docker20), Value::Null);
    }

    #[test]
    fn trailing_data() {
        let body = r#"{"Image":"i","HostConfig":{"Privileged":true}}"#;
        for (tail, ok20, ok28) in [
            ("", true, true),
            (" \n\t", true, true),
            ("x", true, false),
            (" {\"Image\":\"j\"}", true, false),
            ("}", true, true),
            (" ]garbage", true, true),
            ("\u{0}", true, false),
        ] {
            let text = format!("{body}{tail}");
            for (daemon, ok) in [(Docker20, ok20), (Docker28, ok28)] {
                let got = decode_create(text.as_bytes(), daemon);
                assert_eq!(got.is_ok(), ok, "{daemon:?} {text:?}: {got:?}");
                if let Ok(v) = got {
                    assert!(v.host_config.is_some_and(|h| h.privileged));
                }
            }
        }
    }

    #[test]
    fn refusals() {
        for body in [
            "",
            "  ",
            "null",
            "{}",
            "[]",
            "\"x\"",
            r#"{"HostConfig":{"Privileged":true}}"#,
            r#"{"Image":"i","HostConfig":{"Privileged":1}}"#,
            r#"{"Image":"i","HostConfig":{"Privileged":"true"}}"#,
            r#"{"Image":"i","HostConfig":{"PidMode":1}}"#,
            r#"{"Image":"i","HostConfig":{"CapAdd":1}}"#,
            r#"{"Image":"i","HostConfig":{"CapAdd":[1]}}"#,
            r#"{"Image":"i","HostConfig":{"Binds":"/:/h"}}"#,
            r#"{"Image":"i","HostConfig":{"Binds":[1]}}"#,
            r#"{"Image":"i","HostConfig":{"Mounts":["x"]}}"#,
            r#"{"Image":"i","HostConfig":{"Mounts":{}}}"#,
            r#"{"Image":"i","HostConfig":{"Sysctls":[]}}"#,
            r#"{"Image":"i","HostConfig":{"Init":"yes"}}"#,
            r#"{"Image":"i","HostConfig":[]}"#,
            r#"{"Image":"i","HostConfig":true}"#,
            r#"{"Image":"i","NetworkingConfig":1}"#,
            r#"{"Image":"i","Labels":{"a":1}}"#,
            r#"{"Image":"i","Tty":"true"}"#,
            r#"{"Image":"i","Unknown":tru}"#,
            r#"{"Image":"i",}"#,
            r#"{"Image":"i""#,
            r#"{"Image":"\ud800"}"#,
        ] {
            for daemon in BOTH {
                assert!(decode_create(body.as_bytes(), daemon).is_err(), "{daemon:?} {body}");
            }
        }
        // Only 20.10 reads (and type-checks) top-level HostConfig fields.
        let top = r#"{"Image":"i","Privileged":1}"#;
        assert!(decode_create(top.as_bytes(), Docker20).is_err());
        assert!(decode_create(top.as_bytes(), Docker28).is_ok());
        // Unknown keys are skipped, whatever their value.
        let v = view(r#"{"Image":"i","X":{"a":[1,null]},"HostConfig":{"Y":1}}"#, Docker28);
        assert_eq!(v["Config"]["Image"], "i");
    }

    #[test]
    fn derived_fields() {
        let body = r#"{"Image":"i","HostConfig":{
            "Binds":["/var/run/../run//docker.sock/:/s","named:/n","/etc:/e:ro","/a:/b:rw:x","rel/x:/r","/only"],
            "Mounts":[
                {"Type":"bind","Source":"//tmp/./x/","Target":"/x"},
                {"Type":"Bind","Source":"/nope","Target":"/y"},
                {"Type":"volume","Source":"v","Target":"/v","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"ro,bind","device":"/etc/../"}}}},
                {"Type":"volume","Target":"/w","VolumeOptions":{"DriverConfig":{"Options":{"o":"rbind","device":"/root"}}}},
                {"Type":"volume","Target":"/z","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"ext4","device":"/dev/sda1"}}}},
                {"Type":"volume","Target":"/q","VolumeOptions":{"DriverConfig":{"Name":"other","Options":{"o":"bind","device":"/"}}}}
            ],
            "CapAdd":["ſys_admin","cap_net_raw","all","CAP_SYS_PTRACE","ıpc_lock"],
            "PidMode":"container:abc","IpcMode":"container:abc","NetworkMode":"container:def:x","Cgroup":"container:ghi",
            "UTSMode":"container:no"}}"#;
        let v = hc(body, Docker28);
        assert_eq!(v["bind_sources"], json!(["/var/run/docker.sock", "/etc", "/a", "/tmp/x", "/", "/root"]));
        assert_eq!(v["local_volume_devices"], json!(["/etc/../", "/root", "/dev/sda1"]));
        assert_eq!(
            v["cap_add_normalized"],
            json!(["CAP_SYS_ADMIN", "CAP_NET_RAW", "ALL", "CAP_SYS_PTRACE", "CAP_IPC_LOCK"])
        );
        assert_eq!(v["shares_namespace_with"], json!(["abc", "def:x", "ghi"]));
        assert_eq!(
            hc(r#"{"Image":"i","HostConfig":{"PidMode":"Container:x"}}"#, Docker28)["shares_namespace_with"],
            json!([])
        );
    }

    #[test]
    fn go_path_clean() {
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("//", "/"),
            ("/../..", "/"),
            ("/var/run/../run//docker.sock/", "/var/run/docker.sock"),
            ("/a/./b/", "/a/b"),
            ("a/../..", ".."),
            ("../../a", "../../a"),
            ("a/b/../../c", "c"),
            ("/tmp/ünï/../x", "/tmp/x"),
            ("./", "."),
            ("/..a/b..", "/..a/b.."),
        ] {
            assert_eq!(clean_path(input), want, "{input}");
        }
    }

    #[test]
    fn go_upper_case() {
        assert_eq!(normalize_capability("ſys_admin"), "CAP_SYS_ADMIN");
        assert_eq!(normalize_capability("cap_chown"), "CAP_CHOWN");
        assert_eq!(normalize_capability("All"), "ALL");
        assert_eq!(normalize_capability("ß"), "CAP_ß", "Go has no simple upper case for ß");
        assert_eq!(
            normalize_capability("\u{212A}ill"),
            "CAP_\u{212A}ILL",
            "the Kelvin sign is upper case already"
        );
    }

    #[test]
    fn old_start_bodies() {
        let start =
            |body: &str| decode_start_host_config(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
        let v = start(r#"{"PidMode":"host","Binds":["/etc:/hostetc"]}"#).expect("a HostConfig");
        assert_eq!(v.pid_mode, "host");
        assert_eq!(v.bind_sources, vec!["/etc"]);
        let v = start(r#"{"HostConfig":{"PidMode":"host"},"Privileged":true}"#).expect("a HostConfig");
        assert_eq!(v.pid_mode, "host");
        assert!(!v.privileged, "the inner HostConfig wins");
        assert!(start(r#"{"HostConfig":null,"Privileged":true}"#).expect("top").privileged);
        for none in ["null", "{}", r#"{"Image":"x","Tty":true}"#, r#"{"Unknown":1}"#, r#"{"Cpuset":"0"}"#] {
            assert_eq!(start(none), None, "{none}");
        }
        assert_eq!(start(r#"{"X":1}trailing"#), None, "20.10 ignores trailing data");
        for bad in ["", "[]", r#"{"Privileged":1}"#, r#"{"HostConfig":{"CapAdd":2}}"#] {
            assert!(decode_start_host_config(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn update_bodies() {
        let update = |body: &str, daemon| {
            decode_update(body.as_bytes(), daemon).unwrap_or_else(|e| panic!("{daemon:?} {body}: {e}"))
        };
        assert_eq!(update("", Docker28), UpdateView::default());
        assert!(decode_update(b"", Docker20).is_err());
        for daemon in BOTH {
            assert_eq!(update("null", daemon), UpdateView::default());
            let v = update(
                r#"{"memory":1048576,"Memory":null,"PidsLimit":-1,"RestartPolicy":{"Name":"always"},"restartpolicy":{"MaximumRetryCount":3},"CpuShares":512,"Devices":[{"PathOnHost":"/dev/sda"}]}"#,
                daemon,
            );
            assert_eq!(v.memory, 1_048_576);
            assert_eq!(v.pids_limit, Some(0));
            assert_eq!(v.cpu_shares, 512);
            assert_eq!(
                v.restart_policy,
                Some(RestartPolicyView { name: "always".to_owned(), maximum_retry_count: 3 })
            );
            assert_eq!(update(r#"{"RestartPolicy":{"MaximumRetryCount":3}}"#, daemon).restart_policy, None);
            assert_eq!(update(r#"{"PidsLimit":5,"PidsLimit":null}"#, daemon).pids_limit, None);
            for bad in [
                r#"{"Memory":"1g"}"#,
                r#"{"Memory":1.5}"#,
                r#"{"BlkioWeight":70000}"#,
                r#"{"BlkioWeight":-1}"#,
                r#"{"Memory":9223372036854775808}"#,
                r#"{"Devices":1}"#,
                r#"{"DeviceCgroupRules":"a"}"#,
                r#"{"RestartPolicy":"always"}"#,
                "[]",
            ] {
                assert!(decode_update(bad.as_bytes(), daemon).is_err(), "{daemon:?} {bad}");
            }
        }
        assert!(decode_update(br#"{"Memory":1}x"#, Docker20).is_ok());
        assert!(decode_update(br#"{"Memory":1}x"#, Docker28).is_err());
        assert!(decode_update(b" ", Docker28).is_err(), "white space is not an empty body");
    }

    #[test]
    fn policy_sees_docker_names() {
        let v = view(r#"{"Image":"i","HostConfig":{"Privileged":true}}"#, Docker28);
        let host: Vec<&String> = v["HostConfig"].as_object().expect("object").keys().collect();
        for name in
            ["Privileged", "CapAdd", "PidMode", "Binds", "Mounts", "MaskedPaths", "UTSMode", "bind_sources"]
        {
            assert!(host.iter().any(|k| *k == name), "{name} in {host:?}");
        }
        assert_eq!(v["Config"]["Env"], Value::Null);
        assert_eq!(v["networking_config_present"], false);
    }
}
