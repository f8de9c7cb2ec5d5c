# Example: only some people may exec at all.
#
# The person is the caller's login uid (input.caller.loginuid, from
# /proc/<pid>/loginuid) when it is set: the kernel keeps it across `sudo` and
# `su`, so `sudo docker exec …` by uid 1001 still counts as 1001, not as root.
# Processes outside any login session (systemd services, cron on some systems,
# containers) have no login uid; then the caller's own uid (SO_PEERCRED) counts.
#
# Switch on: add this file to the policy set (see policies/README.md).
package execgate

import rego.v1

# Edit this set: uids (on the host) of the people and services that may exec.
caller_uids_allowed := {0, 1000}

# Who is asking: the login uid when known, else the connecting uid.
caller_uids_person := input.caller.loginuid if {
	is_number(input.caller.loginuid)
} else := input.caller.uid

caller_uids_who := sprintf("login uid %d (connected as uid %d, e.g. through sudo)", [input.caller.loginuid, input.caller.uid]) if {
	is_number(input.caller.loginuid)
	input.caller.loginuid != input.caller.uid
} else := sprintf("uid %d", [caller_uids_person])

caller_uids_reasons contains msg if {
	is_number(caller_uids_person)
	not caller_uids_person in caller_uids_allowed
	msg := sprintf("exec by %s is not allowed: ask an administrator to add uid %d to caller_uids_allowed in caller_uids.rego", [caller_uids_who, caller_uids_person])
}

# Fail closed when the caller cannot be identified at all.
caller_uids_reasons contains msg if {
	not is_number(caller_uids_person)
	msg := "the calling user could not be identified, so exec is not allowed: connect through execgate's Unix socket"
}

# This file's reasons, as reasons of the decision. They are collected under a
# name of their own first so that caller_uids_test.rego can check them alone,
# whatever other policies are loaded alongside.
deny contains msg if some msg in caller_uids_reasons
