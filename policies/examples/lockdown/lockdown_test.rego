# Tests of the lockdown pack:
#   execgate policy test policies/examples/lockdown
package execgate.request

import rego.v1

lockdown_hc := {
	"Privileged": false, "CapAdd": null, "CapDrop": null, "PidMode": "", "IpcMode": "", "NetworkMode": "default",
	"UsernsMode": "", "UTSMode": "", "CgroupnsMode": "", "Cgroup": "", "Binds": null, "Mounts": null,
	"VolumesFrom": null, "Devices": null, "bind_sources": [], "local_volume_devices": [],
	"cap_add_normalized": [], "shares_namespace_with": [],
}

lockdown_create(hc) := {
	"action": "request", "method": "POST", "route": "ContainerCreate", "params": {}, "query": {},
	"path": "/v1.41/containers/create", "api_version": "1.41", "has_body": true,
	"body": {"Config": {"Image": "busybox"}, "HostConfig": object.union(lockdown_hc, hc)},
	"container": null, "caller": {"uid": 1000, "gid": 1000, "pid": 1, "exe": "/usr/bin/docker", "loginuid": 1000},
	"execgate": {"audit_dir": "/srv/audit"},
}

lockdown_request(route, fields) := object.union({
	"action": "request", "method": "POST", "route": route, "params": {"name": "web"}, "query": {},
	"path": "/v1.41/x", "api_version": "1.41", "has_body": false, "body": null, "container": null,
	"caller": {"uid": 1000, "gid": 1000, "pid": 1, "exe": "/usr/bin/docker", "loginuid": 1000},
}, fields)

lockdown_denied(inp, text) if {
	some msg in lockdown_reasons with input as inp
	contains(msg, text)
}

test_lockdown_a_plain_container_is_allowed if {
	count(lockdown_reasons) == 0 with input as lockdown_create({})
}

test_lockdown_privileged_is_denied if lockdown_denied(lockdown_create({"Privileged": true}), "privileged containers")

test_lockdown_cap_add_is_denied if {
	lockdown_denied(lockdown_create({"cap_add_normalized": ["CAP_SYS_ADMIN"]}), "--cap-add CAP_SYS_ADMIN")
}

test_lockdown_host_namespaces_are_denied if {
	lockdown_denied(lockdown_create({"PidMode": "host"}), "pid namespace (PidMode=host)")
	lockdown_denied(lockdown_create({"IpcMode": "host"}), "ipc namespace")
	lockdown_denied(lockdown_create({"NetworkMode": "host"}), "network namespace")
	lockdown_denied(lockdown_create({"UsernsMode": "host"}), "user namespace")
}

test_lockdown_pid_container_is_denied if lockdown_denied(lockdown_create({"PidMode": "container:web"}), "--pid container:web")

test_lockdown_host_root_and_protected_binds_are_denied if {
	lockdown_denied(lockdown_create({"bind_sources": ["/"]}), "host's root")
	lockdown_denied(lockdown_create({"bind_sources": ["/var/run/docker.sock"]}), "exposes /var/run/docker.sock")
	lockdown_denied(lockdown_create({"bind_sources": ["/var/run"]}), "exposes /var/run/docker.sock")
	lockdown_denied(lockdown_create({"local_volume_devices": ["/var/log/execgate/sessions"]}), "exposes /var/log/execgate")
}

test_lockdown_the_gates_own_audit_dir_is_protected if {
	lockdown_denied(lockdown_create({"bind_sources": ["/srv"]}), "exposes /srv/audit")
	lockdown_denied(lockdown_create({"bind_sources": ["/srv/audit/sessions"]}), "exposes /srv/audit")
}

test_lockdown_host_devices_and_unconfined_containers_are_denied if {
	lockdown_denied(lockdown_create({"Devices": [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda", "CgroupPermissions": "rwm"}]}), "--device /dev/sda")
	lockdown_denied(lockdown_create({"DeviceCgroupRules": ["b 8:* rwm"]}), "device cgroup rules")
	lockdown_denied(lockdown_create({"local_volume_devices": ["/dev/sda1"]}), "host device (/dev/sda1)")
	lockdown_denied(lockdown_create({"SecurityOpt": ["seccomp=unconfined"]}), "seccomp=unconfined")
	lockdown_denied(lockdown_create({"SecurityOpt": ["apparmor:unconfined"]}), "apparmor:unconfined")
	lockdown_denied(lockdown_create({"SecurityOpt": ["label=disable"]}), "label=disable")
	lockdown_denied(lockdown_create({"MaskedPaths": []}), "MaskedPaths is empty")
	count(lockdown_reasons) == 0 with input as lockdown_create({"SecurityOpt": ["no-new-privileges"], "MaskedPaths": null, "DeviceCgroupRules": null})
}

test_lockdown_other_binds_are_allowed if {
	count(lockdown_reasons) == 0 with input as lockdown_create({"bind_sources": ["/srv/data", "/var/runner"]})
}

test_lockdown_plugin_installs_are_denied if {
	lockdown_denied(lockdown_request("PluginPull", {}), "PluginPull is not allowed")
	lockdown_denied(lockdown_request("PluginCreate", {}), "PluginCreate is not allowed")
	count(lockdown_reasons) == 0 with input as lockdown_request("PluginEnable", {})
}

test_lockdown_archive_put_into_a_running_container_is_denied if {
	running := {"container": {"id": "c", "name": "web", "running": true}}
	lockdown_denied(lockdown_request("PutContainerArchive", running), "running container web")
	stopped := {"container": {"id": "c", "name": "web", "running": false}}
	count(lockdown_reasons) == 0 with input as lockdown_request("PutContainerArchive", stopped)
}

test_lockdown_old_api_starts_with_a_body_are_denied if {
	lockdown_denied(lockdown_request("ContainerStart", {"has_body": true, "api_version": "1.23"}), "API 1.23")
	lockdown_denied(lockdown_request("ContainerStart", {"has_body": true, "api_version": "1.023"}), "HostConfig body")
	lockdown_denied(lockdown_request("ContainerStart", {"has_body": true, "api_version": "1.23.9"}), "HostConfig body")
	lockdown_denied(lockdown_request("ContainerStart", {"has_body": true, "api_version": "0.9"}), "HostConfig body")
	count(lockdown_reasons) == 0 with input as lockdown_request("ContainerStart", {"has_body": true, "api_version": "1.24"})
	count(lockdown_reasons) == 0 with input as lockdown_request("ContainerStart", {"has_body": false, "api_version": "1.23"})
	count(lockdown_reasons) == 0 with input as lockdown_request("ContainerStart", {"has_body": true, "api_version": null})
}
