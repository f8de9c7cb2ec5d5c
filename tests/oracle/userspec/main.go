// userspec-oracle answers "which user would the daemon run this exec as?" with
// the runtime's own code: runc 1.1.5's libcontainer/user, called the way
// dockerd 20.10 calls it (daemon/oci_linux.go getUser):
//
//	user.GetExecUserPath(spec, nil, passwdPath, groupPath)
//
// Cases arrive on stdin, one JSON object a line:
//
//	{"passwd": "<base64>" | null, "group": "<base64>" | null, "spec": "<base64>"}
//
// null means the file does not exist in the container. Each case is written to
// real files (as the daemon reads *os.File) and one JSON line is printed per
// case, in order:
//
//	{"ok": true, "uid": 1000, "gid": 1000, "sgids": [10], "home": "<base64>"}
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
	Passwd *string `json:"passwd"`
	Group  *string `json:"group"`
	Spec   string  `json:"spec"`
}

type output struct {
	OK    bool    `json:"ok"`
	UID   *int    `json:"uid,omitempty"`
	GID   *int    `json:"gid,omitempty"`
	Sgids []int   `json:"sgids,omitempty"`
	Home  *string `json:"home,omitempty"`
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
		spec, err := base64.StdEncoding.DecodeString(c.Spec)
		if err != nil {
			return fmt.Errorf("case %d: spec: %w", line, err)
		}
		if err := place(passwdPath, c.Passwd); err != nil {
			return fmt.Errorf("case %d: passwd: %w", line, err)
		}
		if err := place(groupPath, c.Group); err != nil {
			return fmt.Errorf("case %d: group: %w", line, err)
		}
		u, err := user.GetExecUserPath(string(spec), nil, passwdPath, groupPath)
		var o output
		if err != nil {
			o = output{OK: false, Class: class(err), Error: err.Error()}
		} else {
			home := base64.StdEncoding.EncodeToString([]byte(u.Home))
			o = output{OK: true, UID: &u.Uid, GID: &u.Gid, Sgids: u.Sgids, Home: &home}
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
