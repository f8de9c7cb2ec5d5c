#!/usr/bin/env python3
"""docker-py (PyPI `docker`), driven by tests/clients.rs through execgate (or
straight at the daemon, for ground truth). One scenario per run:

    python3 client.py MODE CONTAINER [ARG]

prints one JSON object on stdout; an unexpected error prints {"error": ...} and
exits 1. The daemon is DOCKER_HOST (unix://PATH).
"""

import json
import os
import socket
import sys
import time

import docker
from docker.utils.socket import frames_iter

CLIENT = docker.DockerClient(base_url=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"), timeout=60)
API = CLIENT.api
# The pause keeps the two streams in order where they are read merged: the
# daemon copies stdout and stderr concurrently.
SCRIPT = "echo to-out; sleep 0.1; echo to-err >&2; exit 3"


def text(data):
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data


def refusal(err):
    """An APIError as docker-py shows it: str(err), its status and explanation."""
    return {
        "refused": True,
        "status": err.status_code,
        "str": str(err),
        "explanation": text(err.explanation),
    }


def mode_plain(container, _arg):
    """exec_run: output of both streams in order, and the exit code."""
    result = CLIENT.containers.get(container).exec_run(["sh", "-c", SCRIPT])
    return {"exit_code": result.exit_code, "output": text(result.output)}


def mode_stream(container, _arg):
    """exec_start(stream=True) chunk by chunk, then exec_inspect's exit code
    (exec_run(stream=True) itself gives no exit code)."""
    exec_id = API.exec_create(container, ["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.1; done; exit 5"])["Id"]
    chunks = [text(c) for c in API.exec_start(exec_id, stream=True)]
    info = API.exec_inspect(exec_id)
    # exec_run(stream=True) too, as most callers use it.
    streamed = CLIENT.containers.get(container).exec_run(["echo", "via-exec-run"], stream=True)
    return {
        "output": "".join(chunks),
        "exit_code": info["ExitCode"],
        "exec_run_exit_code": streamed.exit_code,
        "exec_run_output": "".join(text(c) for c in streamed.output),
    }


def mode_demux(container, _arg):
    """exec_run(demux=True): stdout and stderr apart."""
    result = CLIENT.containers.get(container).exec_run(["sh", "-c", SCRIPT], demux=True)
    out, err = result.output
    return {"exit_code": result.exit_code, "stdout": text(out), "stderr": text(err)}


def mode_socket(container, _arg):
    """exec_run(socket=True, stdin=True): write stdin, shut down the write
    half, read frames until EOF; `wc -c` answers only after the EOF."""
    exec_id = API.exec_create(container, ["sh", "-c", "wc -c; echo to-err >&2; exit 4"], stdin=True)["Id"]
    sock = API.exec_start(exec_id, socket=True)
    raw = sock._sock  # the connection under docker-py's SocketIO
    raw.sendall(b"twelve bytes")
    raw.shutdown(socket.SHUT_WR)
    out, err = b"", b""
    for stream, data in frames_iter(sock, tty=False):
        if stream == 1:
            out += data
        elif stream == 2:
            err += data
    sock.close()
    # The same through the high-level call.
    result = CLIENT.containers.get(container).exec_run(["cat"], stdin=True, socket=True)
    result.output._sock.sendall(b"via exec_run\n")
    result.output._sock.shutdown(socket.SHUT_WR)
    echoed = b"".join(data for _, data in frames_iter(result.output, tty=False))
    result.output.close()
    return {
        "stdout": text(out),
        "stderr": text(err),
        "exit_code": API.exec_inspect(exec_id)["ExitCode"],
        "exec_run_output": text(echoed),
    }


def mode_tty(container, _arg):
    """A TTY exec on a socket: resize while it waits on stdin, then it reports
    its size."""
    exec_id = API.exec_create(container, ["sh", "-c", "read line; stty size; tty | cut -c1-9; exit 6"], stdin=True, tty=True)["Id"]
    sock = API.exec_start(exec_id, socket=True, tty=True)
    API.exec_resize(exec_id, height=33, width=111)
    sock._sock.sendall(b"go\n")
    output = b""
    while True:
        data = sock.read(4096)
        if not data:
            break
        output += data
    sock.close()
    return {"output": text(output), "exit_code": API.exec_inspect(exec_id)["ExitCode"]}


def mode_detach(container, path):
    """exec_run(detach=True): returns at once, the process runs on."""
    result = CLIENT.containers.get(container).exec_run(["sh", "-c", f"sleep 0.2; echo detached > {path}"], detach=True)
    return {"exit_code": result.exit_code, "output": text(result.output)}


def mode_refuse(container, _arg):
    """An exec as root: refused at create."""
    try:
        result = CLIENT.containers.get(container).exec_run(["id", "-u"], user="root")
        return {"refused": False, "exit_code": result.exit_code, "output": text(result.output)}
    except docker.errors.APIError as err:
        return refusal(err)


def mode_refuse_start(_container, exec_id):
    """An exec created elsewhere, started here: refused at start."""
    try:
        output = API.exec_start(exec_id)
        return {"refused": False, "output": text(output)}
    except docker.errors.APIError as err:
        return refusal(err)


def main():
    mode, target = sys.argv[1], sys.argv[2]
    arg = sys.argv[3] if len(sys.argv) > 3 else None
    run = globals().get(f"mode_{mode}")
    if run is None:
        raise SystemExit(f"unknown mode {mode}")
    started = time.monotonic()
    result = run(target, arg)
    result["seconds"] = round(time.monotonic() - started, 3)
    print(json.dumps(result))


if __name__ == "__main__":
    try:
        main()
    except Exception as err:  # reported to the Rust test, which fails on it
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}))
        sys.exit(1)
