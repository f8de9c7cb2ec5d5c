# Tests of attach_guard.rego:
#   execgate policy test policies/examples/attach_guard.rego policies/examples/attach_guard_test.rego
package execgate

import rego.v1

attach_guard_base := {
	"action": "attach",
	"container": {"id": "c0ffee", "name": "web", "image": "busybox", "labels": {}, "user": "app", "privileged": false, "cap_add": [], "running": false, "status": "created", "tty": true, "open_stdin": true, "command": ["/app/server", "--port", "80"]},
	"attach": {"stdin": true, "stdout": true, "stderr": true, "logs": false, "stream": true, "detach_keys": null, "interactive": true},
	"process": {"command": ["/app/server", "--port", "80"], "user": "app", "uid": 1000, "is_root": false, "user_error": null},
	"caller": {"uid": 1000, "gid": 1000, "pid": 4242, "exe": "/usr/bin/docker", "loginuid": 1000},
	"request": {"method": "POST", "path": "/v1.41/containers/web/attach", "api_version": "1.41"},
}

attach_guard_with(container, process) := object.union(attach_guard_base, {
	"container": object.union(attach_guard_base.container, container),
	"process": object.union(attach_guard_base.process, process),
})

test_attach_guard_interactive_attach_to_a_non_root_server_is_allowed if {
	count(attach_guard_reasons) == 0 with input as attach_guard_base
}

test_attach_guard_interactive_attach_to_a_shell_is_denied if {
	inp := attach_guard_with({"command": ["/bin/sh", "-l"]}, {})
	some msg in deny with input as inp
	contains(msg, "PID 1 is the shell \"sh\"")
}

test_attach_guard_interactive_attach_to_root_is_denied if {
	inp := attach_guard_with({}, {"user": "", "uid": 0, "is_root": true})
	some msg in deny with input as inp
	contains(msg, "runs as root")
}

test_attach_guard_an_unresolved_user_counts_as_root if {
	inp := attach_guard_with({}, {"uid": null, "is_root": null, "user_error": "cannot read /etc/passwd"})
	some msg in attach_guard_reasons with input as inp
	contains(msg, "could not resolve")
}

test_attach_guard_attaching_without_stdin_is_allowed_even_to_a_root_shell if {
	inp := object.union(attach_guard_with({"command": ["sh"]}, {"is_root": true}), {"attach": object.union(attach_guard_base.attach, {"stdin": false, "interactive": false})})
	count(attach_guard_reasons) == 0 with input as inp
}

test_attach_guard_execs_are_not_its_business if {
	inp := object.union(attach_guard_with({"command": ["sh"]}, {"is_root": true}), {"action": "create"})
	count(attach_guard_reasons) == 0 with input as inp
}
