# Example: no dynamic-loader variables in an exec's environment.
#
# LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT and the rest of the `LD_` family make
# the dynamic loader run code of the caller's choosing inside whatever binary
# the exec starts, which turns any allowed command into an arbitrary one.
#
# The daemon's exec inspect does not report an exec's Env, so an exec created
# directly on the daemon (not through execgate) and only started through it
# has an unknown environment (input.exec_seen false, Env null). This policy
# refuses such starts rather than guess.
#
# Switch on: add this file to the policy set (see policies/README.md).
package execgate

import rego.v1

env_guard_prefix := "LD_"

# NAME of each NAME=value entry (an entry without "=" is all name).
env_guard_names contains name if {
	is_array(input.exec.Env)
	some entry in input.exec.Env
	is_string(entry)
	name := split(entry, "=")[0]
}

env_guard_reasons contains msg if {
	some name in env_guard_names
	startswith(name, env_guard_prefix)
	msg := sprintf("environment variable %s is not allowed in an exec (it changes what the dynamic loader runs): drop the -e %s option", [name, name])
}

env_guard_reasons contains msg if {
	input.action == "start"
	input.exec_seen == false
	msg := "this exec was created directly on the Docker daemon, not through execgate, so its environment cannot be checked: create the exec through execgate (DOCKER_HOST=unix:///run/execgate.sock) and start it there"
}

# This file's reasons, as reasons of the decision. They are collected under a
# name of their own first so that env_guard_test.rego can check them alone,
# whatever other policies are loaded alongside.
deny contains msg if some msg in env_guard_reasons
