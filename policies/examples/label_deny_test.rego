# Tests of label_deny.rego:
#   execgate policy test policies/examples/label_deny.rego policies/examples/label_deny_test.rego
#
# Whether an input is allowed, and how many reasons it gets, is checked on
# label_deny_reasons (this file's own reasons), not on the whole of deny: other
# policies loaded alongside (the default pack, the other examples) may refuse
# the same input for reasons of their own. That a reason reaches the decision is
# checked on deny itself (`some msg in deny`).
package execgate

import rego.v1

label_deny_base := {
	"action": "create",
	"exec": {"User": "app", "Privileged": false, "Tty": false, "AttachStdin": false, "Env": null, "WorkingDir": "", "Cmd": ["id"]},
	"exec_seen": true,
	"start": null,
	"container": {"id": "c0ffee", "name": "vault", "image": "busybox", "labels": {}, "user": "", "privileged": false, "cap_add": [], "running": true},
	"user": {"spec": "app", "uid": 1000, "gid": 1000, "groups": [], "is_root": false},
	"caller": {"uid": 1000, "gid": 1000, "pid": 4242, "exe": "/usr/bin/docker", "loginuid": 1000},
	"request": {"method": "POST", "path": "/v1.41/containers/vault/exec", "api_version": "1.41"},
}

label_deny_with_labels(labels) := object.union(label_deny_base, {"container": object.union(label_deny_base.container, {"labels": labels})})

test_label_deny_unlabelled_container_is_allowed if {
	count(label_deny_reasons) == 0 with input as label_deny_base
}

test_label_deny_labelled_container_is_denied if {
	some msg in deny with input as label_deny_with_labels({"execgate.exec": "deny", "app": "vault"})
	contains(msg, "container vault is labelled execgate.exec=deny")
	contains(msg, "docker logs vault")
}

test_label_deny_other_values_are_allowed if {
	count(label_deny_reasons) == 0 with input as label_deny_with_labels({"execgate.exec": "allow"})
	count(label_deny_reasons) == 0 with input as label_deny_with_labels({"execgate.exec": "Deny-not"})
}

test_label_deny_other_keys_are_allowed if {
	count(label_deny_reasons) == 0 with input as label_deny_with_labels({"exec": "deny", "execgate.exec.note": "deny"})
}

test_label_deny_applies_at_start if {
	inp := object.union(label_deny_with_labels({"execgate.exec": "deny"}), {"action": "start", "exec_seen": false, "start": {"Detach": false, "Tty": false}})
	count(label_deny_reasons) == 1 with input as inp
}
