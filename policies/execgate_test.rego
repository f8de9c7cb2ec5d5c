# Unit tests of the default pack: `execgate policy test policies`.
package execgate

import rego.v1

base := {
	"action": "create",
	"exec": {"Cmd": ["id"], "User": "app", "Privileged": false, "Tty": false, "Env": null},
	"exec_seen": true,
	"start": null,
	"container": {"id": "c0ffee", "name": "web", "image": "busybox", "labels": {}, "user": "", "privileged": false, "cap_add": [], "running": true},
	"user": {"spec": "app", "uid": 1000, "gid": 1000, "groups": [], "is_root": false},
	"caller": {"uid": 1000, "gid": 1000, "pid": 4242, "exe": "/usr/bin/docker", "loginuid": 1000},
	"request": {"method": "POST", "path": "/v1.41/containers/web/exec", "api_version": "1.41"},
}

test_non_root_exec_is_allowed if {
	count(deny) == 0 with input as base
}

test_privileged_exec_is_denied if {
	some msg in deny with input as object.union(base, {"exec": object.union(base.exec, {"Privileged": true})})
	contains(msg, "without --privileged")
}

test_exec_into_privileged_container_is_denied if {
	some msg in deny with input as object.union(base, {"container": object.union(base.container, {"privileged": true})})
	contains(msg, "runs privileged")
}

test_root_user_is_denied if {
	root := {"spec": "00", "uid": 0, "gid": 0, "groups": [], "is_root": true}
	some msg in deny with input as object.union(base, {"user": root})
	contains(msg, "\"00\" resolves to uid 0")
}

test_added_capabilities_warn_but_allow if {
	inp := object.union(base, {"container": object.union(base.container, {"cap_add": ["NET_ADMIN"]})})
	count(deny) == 0 with input as inp
	count(warn) == 1 with input as inp
}

# The reasons that come from this pack. Policies loaded alongside it may refuse
# an input for reasons of their own (examples/env_guard.rego refuses every
# start of an exec that execgate did not see created).
default_pack_reasons contains msg if {
	some msg in deny
	some mark in {"run it without --privileged", "runs privileged and an exec inherits that", "resolves to uid 0"}
	contains(msg, mark)
}

test_start_of_unseen_exec_is_judged_the_same if {
	inp := object.union(base, {"action": "start", "exec_seen": false, "start": {"Detach": false, "Tty": true}})
	count(default_pack_reasons) == 0 with input as inp
	root := object.union(inp, {"user": {"spec": "0", "uid": 0, "gid": 0, "groups": [], "is_root": true}})
	count(default_pack_reasons) == 1 with input as root
}

attach_base := {
	"action": "attach",
	"container": object.union(base.container, {"tty": true, "open_stdin": true, "command": ["sh"], "status": "created", "running": false}),
	"attach": {"stdin": true, "stdout": true, "stderr": true, "logs": false, "stream": true, "detach_keys": null, "interactive": true},
	"process": {"command": ["sh"], "user": "", "uid": 0, "is_root": true, "user_error": null},
	"caller": base.caller,
	"request": {"method": "POST", "path": "/v1.41/containers/web/attach", "api_version": "1.41"},
}

# docker run -it keeps working: the default pack records attaches, it does not
# judge them. (Checked on this pack's own messages: an example pack loaded
# alongside, such as attach_guard.rego, may well deny this attach.)
test_attach_is_allowed_even_to_a_root_shell_in_a_privileged_container if {
	inp := object.union(attach_base, {"container": object.union(attach_base.container, {"privileged": true})})
	mine := {msg | some msg in deny with input as inp; default_pack_message(msg)}
	count(mine) == 0
}

default_pack_message(msg) if contains(msg, "without --privileged")

default_pack_message(msg) if contains(msg, "an exec inherits that")

default_pack_message(msg) if startswith(msg, "exec as root")
