# Example: no interactive attach to a root shell.
#
# `docker attach`, `docker start -ai` and the attach inside `docker run -it`
# connect to a container's PID 1. When PID 1 is a shell, or runs as root, an
# attach that can type into it is a root shell by another door than exec. This
# denies an interactive attach (stream + stdin to a container that keeps stdin
# open) when PID 1 is a shell or runs as root. Non-interactive attaches (the
# output of `docker run` without -i, `docker logs`-like attaches) stay allowed.
#
# Whether PID 1 runs as root comes from the container's own /etc/passwd; when
# execgate could not read it (`input.process.is_root` null, the reason in
# `input.process.user_error`) it counts as root: unknown is not safe.
#
# Switch on: add this file to the policy set (see policies/README.md).
package execgate

import rego.v1

# Programs that are, or give, a shell.
attach_guard_shells := {
	"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "yash", "fish", "csh", "tcsh",
	"busybox", "toybox", "su", "sudo", "login", "runuser", "script",
}

attach_guard_basename(path) := name if {
	is_string(path)
	parts := split(path, "/")
	name := parts[count(parts) - 1]
}

attach_guard_shell := name if {
	name := attach_guard_basename(input.container.command[0])
	name in attach_guard_shells
}

attach_guard_root if not input.process.is_root == false

attach_guard_reasons contains msg if {
	input.action == "attach"
	input.attach.interactive
	shell := attach_guard_shell
	msg := sprintf("interactive attach to container %s is not allowed: its PID 1 is the shell %q; use `docker exec` with a non-root user, or attach without stdin", [input.container.name, shell])
}

attach_guard_reasons contains msg if {
	input.action == "attach"
	input.attach.interactive
	attach_guard_root
	msg := sprintf("interactive attach to container %s is not allowed: its PID 1 runs as root (user %q%s); use `docker exec` with a non-root user, or attach without stdin", [input.container.name, input.process.user, attach_guard_unknown])
}

attach_guard_unknown := "" if input.process.is_root == true

attach_guard_unknown := ", which execgate could not resolve" if not input.process.is_root == true

# This file's reasons, as reasons of the decision (see no_prod_shells.rego for why).
deny contains msg if some msg in attach_guard_reasons
