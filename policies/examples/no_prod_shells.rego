# Example: no interactive shells in production containers.
#
# Applies to containers labelled `env=prod`. An exec is interactive when it asks
# for a TTY or attaches stdin (docker exec -it / -i). A non-interactive command
# (`docker exec web ps aux`, even `sh -c '…'`) is still allowed: this rule stops
# people "logging in" to prod, it does not limit what can run — pair it with
# command_allowlist.rego for that, and read that file's caveats.
#
# Only Cmd[0] is looked at (and the program right after a launcher such as
# `env` or `nice`); interpreters with a prompt (python, node, psql…) are not
# shells here: add them to no_prod_shells_shells if your prod rule covers them.
#
# Switch on: add this file to the policy set (see policies/README.md).
package execgate

import rego.v1

# Values of the `env` label that mean production.
no_prod_shells_envs := {"prod"}

# Programs that give an interactive shell: shells, multi-call binaries that
# contain one, and programs that start the user's login shell.
no_prod_shells_shells := {
	"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "yash", "fish", "csh", "tcsh",
	"busybox", "toybox",
	"su", "sudo", "login", "runuser", "script",
}

# Programs that just run the next argument; looked through once.
no_prod_shells_launchers := {"env", "nice", "nohup", "setsid", "stdbuf", "timeout", "ionice", "taskset", "chroot", "exec"}

no_prod_shells_basename(path) := name if {
	is_string(path)
	parts := split(path, "/")
	name := parts[count(parts) - 1]
}

no_prod_shells_is_prod if input.container.labels.env in no_prod_shells_envs

# The shell the exec runs, if it runs one.
no_prod_shells_shell := name if {
	is_array(input.exec.Cmd)
	name := no_prod_shells_basename(input.exec.Cmd[0])
	name in no_prod_shells_shells
}

no_prod_shells_shell := name if {
	is_array(input.exec.Cmd)
	no_prod_shells_basename(input.exec.Cmd[0]) in no_prod_shells_launchers
	some arg in array.slice(input.exec.Cmd, 1, count(input.exec.Cmd))
	name := no_prod_shells_basename(arg)
	name in no_prod_shells_shells
}

no_prod_shells_interactive if input.exec.Tty == true

no_prod_shells_interactive if input.exec.AttachStdin == true

no_prod_shells_interactive if input.start.Tty == true

no_prod_shells_reasons contains msg if {
	no_prod_shells_is_prod
	no_prod_shells_interactive
	shell := no_prod_shells_shell
	msg := sprintf("no interactive shells in production: container %s is labelled env=%s and the exec runs %q with a TTY or stdin: run the specific command you need without -it (e.g. `docker exec %s ps aux`), or debug a staging copy", [input.container.name, input.container.labels.env, shell, input.container.name])
}

# An exec created directly on the daemon reports no AttachStdin, so whether an
# attached start of a shell is interactive cannot be told: refuse it.
no_prod_shells_reasons contains msg if {
	no_prod_shells_is_prod
	input.action == "start"
	input.exec_seen == false
	input.start.Detach == false
	shell := no_prod_shells_shell
	msg := sprintf("no interactive shells in production: exec of %q in container %s was not created through execgate, so whether it is interactive is unknown: create it through execgate and run the specific command without -it", [shell, input.container.name])
}

# This file's reasons, as reasons of the decision. They are collected under a
# name of their own first so that no_prod_shells_test.rego can check them alone,
# whatever other policies are loaded alongside.
deny contains msg if some msg in no_prod_shells_reasons
