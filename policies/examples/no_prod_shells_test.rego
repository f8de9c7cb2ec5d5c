# Tests of no_prod_shells.rego:
#   execgate policy test policies/examples/no_prod_shells.rego policies/examples/no_prod_shells_test.rego
#
# Whether an input is allowed, and how many reasons it gets, is checked on
# no_prod_shells_reasons (this file's own reasons), not on the whole of deny:
# other policies loaded alongside (the default pack, the other examples) may
# refuse the same input for reasons of their own. That a reason reaches the
# decision is checked on deny itself (`some msg in deny`).
package execgate

import rego.v1

no_prod_shells_base := {
	"action": "create",
	"exec": {"User": "app", "Privileged": false, "Tty": true, "ConsoleSize": [40, 120], "AttachStdin": true, "AttachStdout": true, "AttachStderr": true, "Detach": false, "DetachKeys": "", "Env": null, "WorkingDir": "", "Cmd": ["/bin/bash"]},
	"exec_seen": true,
	"start": null,
	"container": {"id": "c0ffee", "name": "api", "image": "shop/api:1.2", "labels": {"env": "prod"}, "user": "", "privileged": false, "cap_add": [], "running": true},
	"user": {"spec": "app", "uid": 1000, "gid": 1000, "groups": [], "is_root": false},
	"caller": {"uid": 1000, "gid": 1000, "pid": 4242, "exe": "/usr/bin/docker", "loginuid": 1000},
	"request": {"method": "POST", "path": "/v1.41/containers/api/exec", "api_version": "1.41"},
}

no_prod_shells_exec(fields) := object.union(no_prod_shells_base, {"exec": object.union(no_prod_shells_base.exec, fields)})

no_prod_shells_env(inp, env) := object.union(inp, {"container": object.union(inp.container, {"labels": {"env": env}})})

test_no_prod_shells_interactive_shell_in_prod_is_denied if {
	some msg in deny with input as no_prod_shells_base
	contains(msg, "container api is labelled env=prod")
	contains(msg, "\"bash\"")
}

test_no_prod_shells_each_way_of_being_interactive_counts if {
	count(no_prod_shells_reasons) == 1 with input as no_prod_shells_exec({"Tty": true, "AttachStdin": false})
	count(no_prod_shells_reasons) == 1 with input as no_prod_shells_exec({"Tty": false, "AttachStdin": true})
}

test_no_prod_shells_non_interactive_shell_is_allowed if {
	count(no_prod_shells_reasons) == 0 with input as no_prod_shells_exec({"Tty": false, "AttachStdin": false, "Cmd": ["sh", "-c", "ps aux"]})
}

test_no_prod_shells_interactive_non_shell_is_allowed if {
	count(no_prod_shells_reasons) == 0 with input as no_prod_shells_exec({"Cmd": ["top"]})
}

test_no_prod_shells_other_envs_are_allowed if {
	count(no_prod_shells_reasons) == 0 with input as no_prod_shells_env(no_prod_shells_base, "staging")
	# object.union merges nested objects, so drop the labels to test none.
	unlabelled := object.union(object.remove(no_prod_shells_base, ["container"]), {"container": object.remove(no_prod_shells_base.container, ["labels"])})
	count(no_prod_shells_reasons) == 0 with input as unlabelled
}

test_no_prod_shells_busybox_and_paths_count if {
	count(no_prod_shells_reasons) == 1 with input as no_prod_shells_exec({"Cmd": ["/bin/busybox", "sh"]})
	count(no_prod_shells_reasons) == 1 with input as no_prod_shells_exec({"Cmd": ["/usr/local/bin/zsh"]})
	count(no_prod_shells_reasons) == 1 with input as no_prod_shells_exec({"Cmd": ["su", "-"]})
}

test_no_prod_shells_launchers_are_looked_through if {
	count(no_prod_shells_reasons) == 1 with input as no_prod_shells_exec({"Cmd": ["env", "TERM=xterm", "bash", "-l"]})
	count(no_prod_shells_reasons) == 0 with input as no_prod_shells_exec({"Cmd": ["env"]})
}

test_no_prod_shells_null_cmd_is_not_a_shell if {
	count(no_prod_shells_reasons) == 0 with input as no_prod_shells_exec({"Cmd": null})
}

test_no_prod_shells_start_with_tty_is_denied if {
	inp := object.union(no_prod_shells_exec({"Tty": false, "AttachStdin": false}), {"action": "start", "start": {"Detach": false, "Tty": true}})
	count(no_prod_shells_reasons) == 1 with input as inp
}

test_no_prod_shells_unseen_attached_start_is_denied if {
	# Created directly on the daemon: AttachStdin is unknown (reported false).
	unseen := object.union(no_prod_shells_exec({"Tty": false, "AttachStdin": false, "Env": null}), {"action": "start", "exec_seen": false, "start": {"Detach": false, "Tty": false}})
	some msg in deny with input as unseen
	contains(msg, "not created through execgate")
}

test_no_prod_shells_unseen_detached_start_is_allowed if {
	unseen := object.union(no_prod_shells_exec({"Tty": false, "AttachStdin": false, "Env": null}), {"action": "start", "exec_seen": false, "start": {"Detach": true, "Tty": false}})
	count(no_prod_shells_reasons) == 0 with input as unseen
}
