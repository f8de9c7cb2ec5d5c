# Tests of command_allowlist.rego:
#   execgate policy test policies/examples/command_allowlist.rego policies/examples/command_allowlist_test.rego
#
# Whether an input is allowed, and how many reasons it gets, is checked on
# command_allowlist_reasons (this file's own reasons), not on the whole of deny:
# other policies loaded alongside (the default pack, the other examples) may
# refuse the same input for reasons of their own. That a reason reaches the
# decision is checked on deny itself (`some msg in deny`).
package execgate

import rego.v1

command_allowlist_base := {
	"action": "create",
	"exec": {"User": "app", "Privileged": false, "Tty": false, "AttachStdin": false, "Env": null, "WorkingDir": "", "Cmd": ["id"]},
	"exec_seen": true,
	"start": null,
	"container": {"id": "c0ffee", "name": "web", "image": "busybox", "labels": {}, "user": "", "privileged": false, "cap_add": [], "running": true},
	"user": {"spec": "app", "uid": 1000, "gid": 1000, "groups": [], "is_root": false},
	"caller": {"uid": 1000, "gid": 1000, "pid": 4242, "exe": "/usr/bin/docker", "loginuid": 1000},
	"request": {"method": "POST", "path": "/v1.41/containers/web/exec", "api_version": "1.41"},
}

command_allowlist_with_cmd(cmd) := object.union(command_allowlist_base, {"exec": object.union(command_allowlist_base.exec, {"Cmd": cmd})})

test_command_allowlist_allows_listed_command if {
	count(command_allowlist_reasons) == 0 with input as command_allowlist_with_cmd(["id"])
}

test_command_allowlist_allows_listed_command_by_path_with_args if {
	count(command_allowlist_reasons) == 0 with input as command_allowlist_with_cmd(["/bin/ps", "aux"])
}

test_command_allowlist_denies_shell if {
	some msg in deny with input as command_allowlist_with_cmd(["sh", "-c", "id"])
	contains(msg, "command \"sh\" is not on the exec allow-list")
}

test_command_allowlist_denies_busybox if {
	some msg in deny with input as command_allowlist_with_cmd(["/bin/busybox", "id"])
	contains(msg, "command \"busybox\" is not on the exec allow-list")
}

test_command_allowlist_denies_null_cmd if {
	some msg in deny with input as command_allowlist_with_cmd(null)
	contains(msg, "must name a command")
}

test_command_allowlist_denies_empty_cmd if {
	some msg in deny with input as command_allowlist_with_cmd([])
	contains(msg, "must name a command")
}

test_command_allowlist_denies_trailing_slash if {
	# "/usr/bin/" has an empty basename: not a listed command.
	count(command_allowlist_reasons) == 1 with input as command_allowlist_with_cmd(["/usr/bin/"])
}

test_command_allowlist_message_says_what_is_allowed if {
	some msg in deny with input as command_allowlist_with_cmd(["bash"])
	contains(msg, "use one of ")
	contains(msg, "id")
}

test_command_allowlist_judges_start_too if {
	inp := object.union(command_allowlist_with_cmd(["bash"]), {"action": "start", "start": {"Detach": false, "Tty": true}})
	count(command_allowlist_reasons) == 1 with input as inp
}
