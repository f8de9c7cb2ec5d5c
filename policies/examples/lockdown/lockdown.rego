# Example pack: lock down the doors around the exec gate.
#
# Whoever may use execgate's socket can reach a container (or the host) without
# exec or attach: a privileged container, a shared pid namespace, a bind of the
# host's root or of the Docker socket, an old-API start that rewrites a
# container's HostConfig, a file written into a running container, a plugin.
# A host device, or confinement switched off, is a door too. This pack judges
# those requests (`input.action == "request"`, see
# policies/README.md) and denies each door. Load it beside the default pack:
#
#   execgate serve --policy policies/execgate.rego --policy policies/examples/lockdown
#
# It judges only the routes in `routes`; every other request is relayed as
# before, with no body read and nothing evaluated, and every decision on these
# routes is recorded.
package execgate.request

import rego.v1

# The operations this pack judges (the Engine API's operationIds).
routes := {
	"ContainerCreate", "ContainerStart", "PutContainerArchive",
	"PluginPull", "PluginUpgrade", "PluginCreate", "PluginSet",
}

# Host paths no container may bind, nor any directory above them: the Docker
# and execgate sockets and execgate's state. The audit directory of the
# execgate judging is protected as well (`input.execgate.audit_dir`). Edit to fit.
lockdown_protected_paths := {
	"/var/run/docker.sock", "/run/docker.sock", "/run/execgate.sock",
	"/var/lib/docker", "/var/log/execgate", "/run/execgate-testbed",
}

# The protected paths, and the audit directory of the execgate judging.
lockdown_protected contains path if some path in lockdown_protected_paths

lockdown_protected contains input.execgate.audit_dir if is_string(input.execgate.audit_dir)

# Namespaces a container may not share with the host.
lockdown_host_modes := {"PidMode": "pid", "IpcMode": "ipc", "NetworkMode": "network", "UsernsMode": "user", "UTSMode": "uts", "CgroupnsMode": "cgroup"}

# --- containers created with host privileges ---
# `input.body.HostConfig` is the HostConfig the daemon will apply, decoded as
# it decodes it (case-insensitive keys, merged duplicates, on 20.10 also
# HostConfig fields at the top level of the body).

lockdown_host_config := input.body.HostConfig if input.route == "ContainerCreate"

lockdown_reasons contains msg if {
	lockdown_host_config.Privileged
	msg := "privileged containers are not allowed: they get every capability and device of the host; grant the one capability needed another way"
}

lockdown_reasons contains msg if {
	count(lockdown_host_config.cap_add_normalized) > 0
	msg := sprintf("added capabilities are not allowed (--cap-add %s): CAP_SYS_ADMIN and others reach the host or other containers", [concat(",", lockdown_host_config.cap_add_normalized)])
}

lockdown_reasons contains msg if {
	some field, ns in lockdown_host_modes
	lockdown_host_config[field] == "host"
	msg := sprintf("sharing the host's %s namespace (%s=host) is not allowed", [ns, field])
}

lockdown_reasons contains msg if {
	startswith(lockdown_host_config.PidMode, "container:")
	msg := sprintf("joining another container's pid namespace (--pid %s) is not allowed: it reads and writes that container's files through /proc/1/root; use docker exec, which is judged and recorded", [lockdown_host_config.PidMode])
}

# Every host path the container would see: binds, bind mounts, and `local`
# volumes with a bind device.
lockdown_host_paths contains path if some path in lockdown_host_config.bind_sources

lockdown_host_paths contains path if some path in lockdown_host_config.local_volume_devices

lockdown_reasons contains msg if {
	"/" in lockdown_host_paths
	msg := "binding the host's root (/) is not allowed"
}

lockdown_reasons contains msg if {
	some path in lockdown_host_paths
	path != "/"
	some protected in lockdown_protected
	lockdown_covers(path, protected)
	msg := sprintf("binding %s is not allowed: it exposes %s (the Docker or execgate socket, or the audit trail)", [path, protected])
}

# `path` is `protected`, above it, or inside it.
lockdown_covers(path, protected) if path == protected

lockdown_covers(path, protected) if startswith(protected, concat("", [path, "/"]))

lockdown_covers(path, protected) if startswith(path, concat("", [protected, "/"]))

# --- host devices and weakened confinement ---

# A list field of the HostConfig; `null` (not given) is an empty list.
lockdown_list(field) := list if {
	list := lockdown_host_config[field]
	is_array(list)
} else := []

lockdown_reasons contains msg if {
	some device in lockdown_list("Devices")
	msg := sprintf("host devices are not allowed (--device %s): a raw disk or console reaches the host", [device.PathOnHost])
}

lockdown_reasons contains msg if {
	count(lockdown_list("DeviceCgroupRules")) > 0
	msg := "device cgroup rules are not allowed (--device-cgroup-rule): they open host devices to the container"
}

lockdown_reasons contains msg if {
	some device in lockdown_host_config.local_volume_devices
	startswith(device, "/dev/")
	msg := sprintf("volumes mounting a host device (%s) are not allowed", [device])
}

lockdown_reasons contains msg if {
	some opt in lockdown_list("SecurityOpt")
	lockdown_unconfined(opt)
	msg := sprintf("weakening the container's confinement is not allowed (--security-opt %s)", [opt])
}

# The daemon takes `name=value` and the old `name:value`.
lockdown_unconfined(opt) if {
	some sep in {"=", ":"}
	some name in {"seccomp", "apparmor"}
	opt == concat(sep, [name, "unconfined"])
}

lockdown_unconfined(opt) if {
	some sep in {"=", ":"}
	opt == concat(sep, ["label", "disable"])
}

# An empty list (not null) unmasks /proc and /sys paths (`--security-opt systempaths=unconfined`).
lockdown_reasons contains msg if {
	some field in {"MaskedPaths", "ReadonlyPaths"}
	lockdown_host_config[field] == []
	msg := sprintf("unmasking the kernel's paths is not allowed (%s is empty: --security-opt systempaths=unconfined)", [field])
}

# --- plugins: an installed plugin runs with the privileges it asks for ---

lockdown_reasons contains msg if {
	input.route in {"PluginPull", "PluginUpgrade", "PluginCreate", "PluginSet"}
	msg := sprintf("%s is not allowed: a plugin runs with the host privileges it asks for (PluginCreate is not even checked by the daemon); install plugins out of band", [input.route])
}

# --- writing files into a running container ---

lockdown_reasons contains msg if {
	input.route == "PutContainerArchive"
	input.container.running
	msg := sprintf("writing files into running container %s (docker cp into it) is not allowed: it can replace any file, /etc/passwd included; rebuild the image or copy into a stopped container", [input.container.name])
}

# --- old-API starts that carry a HostConfig (dockerd before 26 applies it) ---

lockdown_reasons contains msg if {
	input.route == "ContainerStart"
	input.has_body
	lockdown_old_api
	msg := sprintf("starting container %s with a HostConfig body (API %s) is not allowed: it replaces the container's HostConfig (binds, pid mode, privileges); set them at create", [input.params.name, input.api_version])
}

# The daemon compares versions part by part, numerically (`1.023` is 1.23);
# a part that is not a number counts as 0.
lockdown_api_part(i) := n if {
	p := split(input.api_version, ".")[i]
	regex.match(`^[0-9]+$`, p)
	n := lockdown_number(trim_left(p, "0"))
} else := 0

lockdown_number("") := 0

lockdown_number(digits) := to_number(digits) if digits != ""

lockdown_old_api if {
	is_string(input.api_version)
	lockdown_api_part(0) < 1
}

lockdown_old_api if {
	is_string(input.api_version)
	lockdown_api_part(0) == 1
	lockdown_api_part(1) < 24
}

deny contains msg if some msg in lockdown_reasons
