# Tests of caller_uids.rego:
#   execgate policy test policies/examples/caller_uids.rego policies/examples/caller_uids_test.rego
#
# Whether an input is allowed, and how many reasons it gets, is checked on
# caller_uids_reasons (this file's own reasons), not on the whole of deny: other
# policies loaded alongside (the default pack, the other examples) may refuse
# the same input for reasons of their own. That a reason reaches the decision is
# checked on deny itself (`some msg in deny`).
package execgate

import rego.v1

caller_uids_base := {
	"action": "create",
	"exec": {"User": "app", "Privileged": false, "Tty": false, "AttachStdin": false, "Env": null, "WorkingDir": "", "Cmd": ["id"]},
	"exec_seen": true,
	"start": null,
	"container": {"id": "c0ffee", "name": "web", "image": "busybox", "labels": {}, "user": "", "privileged": false, "cap_add": [], "running": true},
	"user": {"spec": "app", "uid": 1000, "gid": 1000, "groups": [], "is_root": false},
	"caller": {"uid": 1000, "gid": 1000, "pid": 4242, "exe": "/usr/bin/docker", "loginuid": 1000},
	"request": {"method": "POST", "path": "/v1.41/containers/web/exec", "api_version": "1.41"},
}

caller_uids_as(uid, loginuid) := object.union(caller_uids_base, {"caller": object.union(caller_uids_base.caller, {"uid": uid, "gid": uid, "loginuid": loginuid})})

test_caller_uids_listed_person_is_allowed if {
	count(caller_uids_reasons) == 0 with input as caller_uids_as(1000, 1000)
}

test_caller_uids_unlisted_person_is_denied if {
	some msg in deny with input as caller_uids_as(1001, 1001)
	msg == "exec by uid 1001 is not allowed: ask an administrator to add uid 1001 to caller_uids_allowed in caller_uids.rego"
}

test_caller_uids_sudo_keeps_the_person if {
	# uid 1001 ran `sudo docker exec`: connected as root, login uid still 1001.
	some msg in deny with input as caller_uids_as(0, 1001)
	contains(msg, "login uid 1001 (connected as uid 0")
}

test_caller_uids_sudo_by_listed_person_is_allowed if {
	count(caller_uids_reasons) == 0 with input as caller_uids_as(0, 1000)
}

test_caller_uids_login_uid_wins_over_listed_uid if {
	# A listed uid whose login session belongs to someone unlisted is denied.
	count(caller_uids_reasons) == 1 with input as caller_uids_as(1000, 1002)
}

test_caller_uids_no_login_uid_falls_back_to_uid if {
	count(caller_uids_reasons) == 0 with input as caller_uids_as(0, null)
	some msg in deny with input as caller_uids_as(999, null)
	contains(msg, "exec by uid 999 is not allowed")
}

test_caller_uids_unknown_caller_is_denied if {
	some msg in deny with input as object.remove(caller_uids_base, ["caller"])
	contains(msg, "could not be identified")
}
