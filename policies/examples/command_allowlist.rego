# Example: only commands on an allow-list may be exec'd.
#
# THIS IS A GUARD-RAIL, NOT A SECURITY BOUNDARY. An allow-list is defeated the
# moment it contains anything that can run another program:
#   - a shell: `sh -c '…'`, `bash -c '…'` run anything at all;
#   - a multi-call binary: `busybox <applet>` (or toybox) is every applet at once,
#     shells included;
#   - launchers and escapes: env, xargs, nice, timeout, find -exec, awk system(),
#     less/vi `!cmd`, tar --checkpoint-action, python/perl -e, and so on.
# Only the basename of Cmd[0] is checked, so a binary that someone copied into
# the container under an allowed name (`/tmp/id`) passes too. Use this to keep
# honest people on the intended path (and out of accidental shells); enforce
# real limits with the exec user, capabilities and the container's own
# hardening.
#
# Switch on: add this file to the policy set (see policies/README.md).
package execgate

import rego.v1

# Edit this set. Keep shells, busybox/toybox and anything that can start
# another program out of it (see above).
command_allowlist_allowed := {
	"id",
	"whoami",
	"hostname",
	"date",
	"uptime",
	"ps",
	"top",
	"df",
	"free",
	"ls",
	"cat",
	"tail",
	"printenv",
}

# Cmd[0] without its directory: "/usr/bin/ps" -> "ps".
command_allowlist_program := name if {
	is_array(input.exec.Cmd)
	count(input.exec.Cmd) > 0
	is_string(input.exec.Cmd[0])
	parts := split(input.exec.Cmd[0], "/")
	name := parts[count(parts) - 1]
}

# No command (Cmd null or []): the daemon would refuse it anyway, and nothing
# here can be checked.
command_allowlist_reasons contains msg if {
	not command_allowlist_program
	msg := sprintf("an exec must name a command, and only these are allowed here: %s (see command_allowlist.rego)", [concat(", ", sort(command_allowlist_allowed))])
}

command_allowlist_reasons contains msg if {
	name := command_allowlist_program
	not name in command_allowlist_allowed
	msg := sprintf("command %q is not on the exec allow-list: use one of %s, or ask an administrator to extend command_allowlist.rego", [name, concat(", ", sort(command_allowlist_allowed))])
}

# This file's reasons, as reasons of the decision. They are collected under a
# name of their own first so that command_allowlist_test.rego can check them
# alone, whatever other policies are loaded alongside.
deny contains msg if some msg in command_allowlist_reasons
