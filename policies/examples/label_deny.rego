# Example: containers can opt out of exec entirely with the label
# `execgate.exec=deny` (docker run --label execgate.exec=deny …, or `labels:` in
# compose). Labels are fixed at container creation, so whoever may create the
# container decides; anyone who can recreate it can drop the label.
#
# Switch on: add this file to the policy set (see policies/README.md).
package execgate

import rego.v1

label_deny_key := "execgate.exec"

label_deny_reasons contains msg if {
	input.container.labels[label_deny_key] == "deny"
	msg := sprintf("container %s is labelled %s=deny, so exec into it is not allowed: use `docker logs %s`, or ask its owner to recreate it without the label", [input.container.name, label_deny_key, input.container.name])
}

# This file's reasons, as reasons of the decision. They are collected under a
# name of their own first so that label_deny_test.rego can check them alone,
# whatever other policies are loaded alongside.
deny contains msg if some msg in label_deny_reasons
