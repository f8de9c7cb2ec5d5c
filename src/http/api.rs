//! Which Engine API operation a request is, named by the API's `operationId`
//! (`ContainerCreate`, `PutContainerArchive`…), with its path parameter: what
//! the optional request policy sees as `input.route` and `input.params`.
//! Matched as the daemon's router matches: the percent-decoded path, an
//! optional `/v{version}` (and Podman's `/libpod`), then the route; names are
//! `.*` and may span slashes; the first route registered wins.

use hyper::Method;

use super::route::{Prefix, percent_decode, split_version};

/// One operation of the Engine API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The API's `operationId`.
    pub name: &'static str,
    /// The path parameter (`name` or `id`) and its value, for routes with one.
    pub param: Option<(&'static str, String)>,
    /// What came before the route proper.
    pub prefix: Prefix,
}

/// `(method, path before the parameter, path after it, operationId, parameter name)`;
/// a route without a parameter has an empty parameter name and is matched whole.
/// In the daemon's registration order where two could match.
const ROUTES: &[(&str, &str, &str, &str, &str)] = &[
    // Containers (`/containers/create` is registered before the `{name}` routes).
    ("POST", "/containers/create", "", "ContainerCreate", ""),
    ("POST", "/containers/prune", "", "ContainerPrune", ""),
    ("GET", "/containers/json", "", "ContainerList", ""),
    ("GET", "/containers/", "/json", "ContainerInspect", "name"),
    ("GET", "/containers/", "/top", "ContainerTop", "name"),
    ("GET", "/containers/", "/logs", "ContainerLogs", "name"),
    ("GET", "/containers/", "/changes", "ContainerChanges", "name"),
    ("GET", "/containers/", "/export", "ContainerExport", "name"),
    ("GET", "/containers/", "/stats", "ContainerStats", "name"),
    ("HEAD", "/containers/", "/archive", "ContainerArchiveInfo", "name"),
    ("GET", "/containers/", "/archive", "ContainerArchive", "name"),
    ("PUT", "/containers/", "/archive", "PutContainerArchive", "name"),
    ("POST", "/containers/", "/start", "ContainerStart", "name"),
    ("POST", "/containers/", "/stop", "ContainerStop", "name"),
    ("POST", "/containers/", "/restart", "ContainerRestart", "name"),
    ("POST", "/containers/", "/kill", "ContainerKill", "name"),
    ("POST", "/containers/", "/pause", "ContainerPause", "name"),
    ("POST", "/containers/", "/unpause", "ContainerUnpause", "name"),
    ("POST", "/containers/", "/update", "ContainerUpdate", "name"),
    ("POST", "/containers/", "/resize", "ContainerResize", "name"),
    ("POST", "/containers/", "/attach", "ContainerAttach", "name"),
    ("POST", "/containers/", "/exec", "ContainerExec", "name"),
    ("POST", "/containers/", "/rename", "ContainerRename", "name"),
    ("POST", "/containers/", "/wait", "ContainerWait", "name"),
    ("POST", "/containers/", "/copy", "ContainerCopy", "name"),
    ("DELETE", "/containers/", "", "ContainerDelete", "name"),
    // Exec.
    ("POST", "/exec/", "/start", "ExecStart", "id"),
    ("POST", "/exec/", "/resize", "ExecResize", "id"),
    ("GET", "/exec/", "/json", "ExecInspect", "id"),
    // Images.
    ("POST", "/images/create", "", "ImageCreate", ""),
    ("POST", "/images/load", "", "ImageLoad", ""),
    ("POST", "/images/prune", "", "ImagePrune", ""),
    ("GET", "/images/json", "", "ImageList", ""),
    ("GET", "/images/search", "", "ImageSearch", ""),
    ("GET", "/images/get", "", "ImageGetAll", ""),
    ("GET", "/images/", "/get", "ImageGet", "name"),
    ("GET", "/images/", "/history", "ImageHistory", "name"),
    ("GET", "/images/", "/json", "ImageInspect", "name"),
    ("POST", "/images/", "/push", "ImagePush", "name"),
    ("POST", "/images/", "/tag", "ImageTag", "name"),
    ("DELETE", "/images/", "", "ImageDelete", "name"),
    ("POST", "/build", "", "ImageBuild", ""),
    ("POST", "/build/prune", "", "BuildPrune", ""),
    ("POST", "/commit", "", "ImageCommit", ""),
    // Networks.
    ("GET", "/networks", "", "NetworkList", ""),
    ("POST", "/networks/create", "", "NetworkCreate", ""),
    ("POST", "/networks/prune", "", "NetworkPrune", ""),
    ("POST", "/networks/", "/connect", "NetworkConnect", "id"),
    ("POST", "/networks/", "/disconnect", "NetworkDisconnect", "id"),
    ("GET", "/networks/", "", "NetworkInspect", "id"),
    ("DELETE", "/networks/", "", "NetworkDelete", "id"),
    // Volumes.
    ("GET", "/volumes", "", "VolumeList", ""),
    ("POST", "/volumes/create", "", "VolumeCreate", ""),
    ("POST", "/volumes/prune", "", "VolumePrune", ""),
    ("GET", "/volumes/", "", "VolumeInspect", "name"),
    ("DELETE", "/volumes/", "", "VolumeDelete", "name"),
    // Plugins.
    ("GET", "/plugins", "", "PluginList", ""),
    ("GET", "/plugins/privileges", "", "GetPluginPrivileges", ""),
    ("POST", "/plugins/pull", "", "PluginPull", ""),
    ("POST", "/plugins/create", "", "PluginCreate", ""),
    ("GET", "/plugins/", "/json", "PluginInspect", "name"),
    ("POST", "/plugins/", "/enable", "PluginEnable", "name"),
    ("POST", "/plugins/", "/disable", "PluginDisable", "name"),
    ("POST", "/plugins/", "/upgrade", "PluginUpgrade", "name"),
    ("POST", "/plugins/", "/push", "PluginPush", "name"),
    ("POST", "/plugins/", "/set", "PluginSet", "name"),
    ("DELETE", "/plugins/", "", "PluginDelete", "name"),
    // System.
    ("GET", "/_ping", "", "SystemPing", ""),
    ("HEAD", "/_ping", "", "SystemPingHead", ""),
    ("GET", "/version", "", "SystemVersion", ""),
    ("GET", "/info", "", "SystemInfo", ""),
    ("GET", "/events", "", "SystemEvents", ""),
    ("GET", "/system/df", "", "SystemDataUsage", ""),
    ("POST", "/auth", "", "SystemAuth", ""),
    ("POST", "/session", "", "Session", ""),
    ("GET", "/distribution/", "/json", "DistributionInspect", "name"),
    // Swarm.
    ("POST", "/swarm/init", "", "SwarmInit", ""),
    ("POST", "/swarm/join", "", "SwarmJoin", ""),
    ("POST", "/services/create", "", "ServiceCreate", ""),
    ("POST", "/services/", "/update", "ServiceUpdate", "id"),
    ("POST", "/secrets/create", "", "SecretCreate", ""),
    ("POST", "/configs/create", "", "ConfigCreate", ""),
];

/// The operation `method` + raw `path` is, if the table knows it; `None` also
/// for a path the daemon would refuse to decode.
pub fn operation(method: &Method, path: &str) -> Option<Operation> {
    let decoded = percent_decode(path)?;
    let (version, rest) = split_version(&decoded);
    let libpod_rest = rest.strip_prefix("/libpod").filter(|r| r.starts_with('/'));
    let prefix = Prefix { version: version.map(str::to_owned), libpod: libpod_rest.is_some() };
    let rest = libpod_rest.unwrap_or(rest);
    ROUTES.iter().find_map(|&(m, before, after, name, param)| {
        if method.as_str() != m {
            return None;
        }
        if param.is_empty() {
            return (rest == before).then(|| Operation { name, param: None, prefix: prefix.clone() });
        }
        let value = rest.strip_prefix(before)?.strip_suffix(after)?;
        Some(Operation { name, param: Some((param, value.to_owned())), prefix: prefix.clone() })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(method: Method, path: &str) -> Option<(&'static str, Option<String>)> {
        operation(&method, path).map(|o| (o.name, o.param.map(|(_, v)| v)))
    }

    #[test]
    fn operations_are_named_as_the_api_names_them() {
        assert_eq!(op(Method::POST, "/v1.41/containers/create"), Some(("ContainerCreate", None)));
        assert_eq!(
            op(Method::POST, "/containers/create/start"),
            Some(("ContainerStart", Some("create".into())))
        );
        assert_eq!(
            op(Method::POST, "/v1.23/containers/web/start"),
            Some(("ContainerStart", Some("web".into())))
        );
        assert_eq!(
            op(Method::PUT, "/containers/a%2Fb/archive"),
            Some(("PutContainerArchive", Some("a/b".into())))
        );
        assert_eq!(
            op(Method::POST, "/v4.0.0/libpod/containers/web/update"),
            Some(("ContainerUpdate", Some("web".into())))
        );
        assert_eq!(op(Method::POST, "/plugins/pull"), Some(("PluginPull", None)));
        assert_eq!(
            op(Method::POST, "/plugins/vieux/sshfs:latest/upgrade"),
            Some(("PluginUpgrade", Some("vieux/sshfs:latest".into())))
        );
        assert_eq!(op(Method::GET, "/_ping"), Some(("SystemPing", None)));
        assert_eq!(op(Method::GET, "/nope"), None);
        assert_eq!(op(Method::GET, "/containers/web/%zz"), None);
    }
}
