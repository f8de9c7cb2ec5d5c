# execgate's default policy pack: the rules every deployment starts from.
#
# The decision is the set `deny`: a request is allowed iff it is empty. Each
# message tells the person at the terminal what to do instead. Input schema:
# see policies/README.md.
#
# The rules below are about execs (`input.action` "create" or "start"); the
# one that an attach's input could also satisfy says so. Attaches
# (`input.action` "attach": docker attach, start -ai, run -it) are allowed and
# recorded; policies/examples/attach_guard.rego shows how to judge them.
package execgate

import rego.v1

# An exec with --privileged gets every capability and every device.
deny contains msg if {
	input.exec.Privileged
	msg := "privileged exec is not allowed: run it without --privileged"
}

# An exec inherits its container's privileges, whatever its own flags say.
deny contains msg if {
	input.action != "attach"
	input.container.privileged
	msg := sprintf("container %s runs privileged and an exec inherits that: exec into an unprivileged container instead", [input.container.name])
}

# The effective user is resolved from the container's own /etc/passwd, so
# `-u 0`, `-u 00`, `-u toor` (a uid-0 alias) and the container default all count.
deny contains msg if {
	input.user.is_root
	msg := sprintf("exec as root (user %q resolves to uid 0) is not allowed: pass a non-root user, e.g. -u 1000", [input.user.spec])
}

# Added capabilities are worth a look in the audit trail, not a refusal.
warn contains msg if {
	count(input.container.cap_add) > 0
	msg := sprintf("container %s has added capabilities %v", [input.container.name, input.container.cap_add])
}
