# Tests of env_guard.rego:
#   execgate policy test policies/examples/env_guard.rego policies/examples/env_guard_test.rego
#
# Whether an input is allowed, and how many reasons it gets, is checked on
# env_guard_reasons (this file's own reasons), not on the whole of deny: other
# policies loaded alongside (the default pack, the other examples) may refuse
# the same input for reasons of their own. That a reason reaches the decision is
# checked on deny itself (`some msg in deny`).
package execgate

import rego.v1

env_guard_base := {
	"action": "create",
	"exec": {"User": "app", "Privileged": false, "Tty": false, "AttachStdin": false, "Env": ["TERM=xterm", "LANG=C.UTF-8"], "WorkingDir": "", "Cmd": ["id"]},
	"exec_seen": true,
	"start": null,
	"container": {"id": "c0ffee", "name": "web", "image": "busybox", "labels": {}, "user": "", "privileged": false, "cap_add": [], "running": true},
	"user": {"spec": "app", "uid": 1000, "gid": 1000, "groups": [], "is_root": false},
	"caller": {"uid": 1000, "gid": 1000, "pid": 4242, "exe": "/usr/bin/docker", "loginuid": 1000},
	"request": {"method": "POST", "path": "/v1.41/containers/web/exec", "api_version": "1.41"},
}

env_guard_with_env(env) := object.union(env_guard_base, {"exec": object.union(env_guard_base.exec, {"Env": env})})

test_env_guard_ordinary_env_is_allowed if {
	count(env_guard_reasons) == 0 with input as env_guard_base
}

test_env_guard_null_and_empty_env_are_allowed if {
	count(env_guard_reasons) == 0 with input as env_guard_with_env(null)
	count(env_guard_reasons) == 0 with input as env_guard_with_env([])
}

test_env_guard_ld_preload_is_denied if {
	some msg in deny with input as env_guard_with_env(["TERM=xterm", "LD_PRELOAD=/tmp/evil.so"])
	contains(msg, "LD_PRELOAD is not allowed")
	contains(msg, "drop the -e LD_PRELOAD")
}

test_env_guard_every_ld_variable_is_denied if {
	inp := env_guard_with_env(["LD_LIBRARY_PATH=/tmp", "LD_AUDIT=/tmp/a.so", "LD_DEBUG", "LD_PRELOAD="])
	count(env_guard_reasons) == 4 with input as inp
}

test_env_guard_value_mentioning_ld_is_allowed if {
	count(env_guard_reasons) == 0 with input as env_guard_with_env(["NOTE=LD_PRELOAD=x", "OLD_PATH=/x", "ld_preload=/x"])
}

test_env_guard_start_of_seen_exec_is_judged_on_its_env if {
	start := {"action": "start", "start": {"Detach": false, "Tty": false}}
	count(env_guard_reasons) == 0 with input as object.union(env_guard_base, start)
	count(env_guard_reasons) == 1 with input as object.union(env_guard_with_env(["LD_PRELOAD=/x.so"]), start)
}

test_env_guard_start_of_unseen_exec_is_denied if {
	inp := object.union(env_guard_with_env(null), {"action": "start", "exec_seen": false, "start": {"Detach": false, "Tty": false}, "exec": object.union(env_guard_base.exec, {"Env": null, "WorkingDir": ""})})
	some msg in deny with input as inp
	contains(msg, "create the exec through execgate")
}
