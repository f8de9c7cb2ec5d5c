// userspec-oracle answers "which user would the daemon run this exec as?" with
// the runtime's own code: runc 1.1.5's libcontainer/user, called the way
// dockerd 20.10 calls it (daemon/oci_linux.go getUser):
//
//	user.GetExecUserPath(spec, nil, passwdPath, groupPath)
//
// and "which gids do these additional groups name?", as the daemon resolves a
// container's --group-add and runc < 1.3 (libcontainer/init_linux.go
// setupUser) resolves an exec's supplementary gids again, spelled in decimal:
//
//	user.GetAdditionalGroupsPath(args, groupPath)
//
// Cases arrive on stdin, one JSON object a line:
//
//	{"passwd": "<base64>" | null, "group": "<base64>" | null, "spec": "<base64>"}
//	{"mode": "groups", "group": "<base64>" | null, "args": ["<base64>", ...]}
//
// A missing or empty mode (or "exec") is the first kind. null means the file
// does not exist in the container. Each case is written to real files (as the
// daemon and runc read *os.File) and one JSON line is printed per case, in
// order:
//
//	{"ok": true, "uid": 1000, "gid": 1000, "sgids": [10], "home": "<base64>"}
//	{"ok": true, "gids": [0, 27]}   (groups mode; Go's map order, unsorted)
//	{"ok": false, "class": "no-user" | "no-group" | "range" | "too-long" | "other", "error": "..."}
//
// Build with tests/oracle/build.sh.
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runc/libcontainer/user"
)

type input struct {
	Mode   string   `json:"mode"`
	Passwd *string  `json:"passwd"`
	Group  *string  `json:"group"`
	Spec   string   `json:"spec"`
	Args   []string `json:"args"`
}

type output struct {
	OK    bool    `json:"ok"`
	UID   *int    `json:"uid,omitempty"`
	GID   *int    `json:"gid,omitempty"`
	Sgids []int   `json:"sgids,omitempty"`
	Home  *string `json:"home,omitempty"`
	Gids  *[]int  `json:"gids,omitempty"`
	Class string  `json:"class,omitempty"`
	Error string  `json:"error,omitempty"`
}

func class(err error) string {
	switch {
	case errors.Is(err, user.ErrNoPasswdEntries):
		return "no-user"
	case errors.Is(err, user.ErrNoGroupEntries):
		return "no-group"
	case errors.Is(err, user.ErrRange):
		return "range"
	case errors.Is(err, bufio.ErrTooLong):
		return "too-long"
	default:
		return "other"
	}
}

func decode(field *string) ([]byte, error) {
	if field == nil {
		return nil, nil
	}
	return base64.StdEncoding.DecodeString(*field)
}

// place writes data at path, or makes sure nothing is there when the case has no file.
func place(path string, field *string) error {
	data, err := decode(field)
	if err != nil {
		return err
	}
	if field == nil {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	return os.WriteFile(path, data, 0o644)
}

// execCase is GetExecUserPath(spec, nil, passwd, group), as dockerd 20.10's getUser calls it.
func execCase(c *input, passwdPath, groupPath string) (output, error) {
	spec, err := base64.StdEncoding.DecodeString(c.Spec)
	if err != nil {
		return output{}, fmt.Errorf("spec: %w", err)
	}
	if err := place(passwdPath, c.Passwd); err != nil {
		return output{}, fmt.Errorf("passwd: %w", err)
	}
	if err := place(groupPath, c.Group); err != nil {
		return output{}, fmt.Errorf("group: %w", err)
	}
	u, err := user.GetExecUserPath(string(spec), nil, passwdPath, groupPath)
	if err != nil {
		return output{OK: false, Class: class(err), Error: err.Error()}, nil
	}
	home := base64.StdEncoding.EncodeToString([]byte(u.Home))
	return output{OK: true, UID: &u.Uid, GID: &u.Gid, Sgids: u.Sgids, Home: &home}, nil
}

// groupsCase is GetAdditionalGroupsPath(args, group): a missing file is a nil
// reader, as it is for the daemon and runc.
func groupsCase(c *input, groupPath string) (output, error) {
	args := make([]string, len(c.Args))
	for i, arg := range c.Args {
		raw, err := base64.StdEncoding.DecodeString(arg)
		if err != nil {
			return output{}, fmt.Errorf("args[%d]: %w", i, err)
		}
		args[i] = string(raw)
	}
	if err := place(groupPath, c.Group); err != nil {
		return output{}, fmt.Errorf("group: %w", err)
	}
	gids, err := user.GetAdditionalGroupsPath(args, groupPath)
	if err != nil {
		return output{OK: false, Class: class(err), Error: err.Error()}, nil
	}
	return output{OK: true, Gids: &gids}, nil
}

func run() error {
	base := "/dev/shm"
	if st, err := os.Stat(base); err != nil || !st.IsDir() {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, "userspec-oracle-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	passwdPath := filepath.Join(dir, "passwd")
	groupPath := filepath.Join(dir, "group")

	in := bufio.NewReader(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for line := 1; ; line++ {
		raw, err := in.ReadBytes('\n')
		if len(raw) == 0 && err != nil {
			return nil // EOF
		}
		var c input
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("case %d: %w", line, err)
		}
		var o output
		switch c.Mode {
		case "", "exec":
			o, err = execCase(&c, passwdPath, groupPath)
		case "groups":
			o, err = groupsCase(&c, groupPath)
		default:
			err = fmt.Errorf("unknown mode %q", c.Mode)
		}
		if err != nil {
			return fmt.Errorf("case %d: %w", line, err)
		}
		if err := enc.Encode(&o); err != nil {
			return err
		}
		// Answer each case as it comes so a caller can stream.
		if in.Buffered() == 0 {
			if err := out.Flush(); err != nil {
				return err
			}
		}
	}
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "userspec-oracle:", err)
		os.Exit(1)
	}
}
