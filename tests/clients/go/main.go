// Command execgate-go-client drives the Go SDK (Debian's moby 20.10 client)
// for tests/clients.rs, through execgate or straight at the daemon for ground
// truth. One scenario per run:
//
//	execgate-go-client MODE CONTAINER [ARG]
//
// It prints one JSON object on stdout; an unexpected error prints
// {"error": …} and exits 1. The daemon is DOCKER_HOST (unix://PATH).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/stdcopy"
)

type result map[string]interface{}

func newClient() *client.Client {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		fail(err)
	}
	return cli
}

func fail(err error) {
	out, _ := json.Marshal(result{"error": err.Error()})
	fmt.Println(string(out))
	os.Exit(1)
}

// refusal is an error as the SDK shows it: its text and its errdefs class.
func refusal(err error) result {
	return result{
		"refused":   true,
		"message":   err.Error(),
		"forbidden": errdefs.IsForbidden(err),
	}
}

func create(ctx context.Context, cli *client.Client, container string, config types.ExecConfig) string {
	resp, err := cli.ContainerExecCreate(ctx, container, config)
	if err != nil {
		fail(fmt.Errorf("exec create: %w", err))
	}
	return resp.ID
}

func exitCode(ctx context.Context, cli *client.Client, id string) int {
	info, err := cli.ContainerExecInspect(ctx, id)
	if err != nil {
		fail(fmt.Errorf("exec inspect: %w", err))
	}
	return info.ExitCode
}

// attach: create + attach (hijack), stdin written and CloseWrite, stdcopy demux,
// then the exit code from inspect.
func attach(ctx context.Context, cli *client.Client, container string) result {
	id := create(ctx, cli, container, types.ExecConfig{
		AttachStdin:  true,
		AttachStdout: true,
		AttachStderr: true,
		Cmd:          []string{"sh", "-c", "wc -c; echo to-err >&2; exit 4"},
	})
	hijacked, err := cli.ContainerExecAttach(ctx, id, types.ExecStartCheck{})
	if err != nil {
		fail(fmt.Errorf("exec attach: %w", err))
	}
	defer hijacked.Close()
	if _, err := hijacked.Conn.Write([]byte("twelve bytes")); err != nil {
		fail(fmt.Errorf("write stdin: %w", err))
	}
	if err := hijacked.CloseWrite(); err != nil {
		fail(fmt.Errorf("close write: %w", err))
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, hijacked.Reader); err != nil {
		fail(fmt.Errorf("stdcopy: %w", err))
	}
	return result{"stdout": stdout.String(), "stderr": stderr.String(), "exit_code": exitCode(ctx, cli, id)}
}

// tty: a TTY exec resized while it waits on stdin, then it reports its size.
func tty(ctx context.Context, cli *client.Client, container string) result {
	id := create(ctx, cli, container, types.ExecConfig{
		AttachStdin:  true,
		AttachStdout: true,
		AttachStderr: true,
		Tty:          true,
		Cmd:          []string{"sh", "-c", "read line; stty size; tty | cut -c1-9; exit 6"},
	})
	hijacked, err := cli.ContainerExecAttach(ctx, id, types.ExecStartCheck{Tty: true})
	if err != nil {
		fail(fmt.Errorf("exec attach: %w", err))
	}
	defer hijacked.Close()
	if err := cli.ContainerExecResize(ctx, id, types.ResizeOptions{Height: 33, Width: 111}); err != nil {
		fail(fmt.Errorf("exec resize: %w", err))
	}
	if _, err := hijacked.Conn.Write([]byte("go\n")); err != nil {
		fail(fmt.Errorf("write stdin: %w", err))
	}
	output, err := io.ReadAll(hijacked.Reader)
	if err != nil {
		fail(fmt.Errorf("read: %w", err))
	}
	return result{"output": string(output), "exit_code": exitCode(ctx, cli, id)}
}

// detach: ContainerExecStart with Detach returns at once; the process runs on.
func detach(ctx context.Context, cli *client.Client, container, path string) result {
	id := create(ctx, cli, container, types.ExecConfig{
		Cmd: []string{"sh", "-c", "sleep 0.2; echo detached > " + path},
	})
	if err := cli.ContainerExecStart(ctx, id, types.ExecStartCheck{Detach: true}); err != nil {
		fail(fmt.Errorf("exec start: %w", err))
	}
	return result{"started": true, "id": id}
}

// refuse: an exec as root, refused at create.
func refuse(ctx context.Context, cli *client.Client, container string) result {
	resp, err := cli.ContainerExecCreate(ctx, container, types.ExecConfig{
		User: "root", AttachStdout: true, Cmd: []string{"id", "-u"},
	})
	if err != nil {
		return refusal(err)
	}
	return result{"refused": false, "id": resp.ID}
}

// refuseStart: an exec created elsewhere, attached here: refused at start.
func refuseStart(ctx context.Context, cli *client.Client, id string) result {
	hijacked, err := cli.ContainerExecAttach(ctx, id, types.ExecStartCheck{})
	if err != nil {
		return refusal(err)
	}
	defer hijacked.Close()
	output, _ := io.ReadAll(hijacked.Reader)
	return result{"refused": false, "output": string(output)}
}

func main() {
	if len(os.Args) < 3 {
		fail(fmt.Errorf("usage: %s MODE CONTAINER [ARG]", os.Args[0]))
	}
	mode, target, arg := os.Args[1], os.Args[2], ""
	if len(os.Args) > 3 {
		arg = os.Args[3]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := newClient()
	var res result
	switch mode {
	case "attach":
		res = attach(ctx, cli, target)
	case "tty":
		res = tty(ctx, cli, target)
	case "detach":
		res = detach(ctx, cli, target, arg)
	case "refuse":
		res = refuse(ctx, cli, target)
	case "refuse_start":
		res = refuseStart(ctx, cli, arg)
	default:
		fail(fmt.Errorf("unknown mode %q; modes: %s", mode, strings.Join([]string{"attach", "tty", "detach", "refuse", "refuse_start"}, ", ")))
	}
	res["api_version"] = cli.ClientVersion()
	out, err := json.Marshal(res)
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}
