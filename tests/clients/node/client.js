#!/usr/bin/env node
// dockerode, driven by tests/clients.rs through execgate (or straight at the
// daemon, for ground truth). One scenario per run:
//
//   node client.js MODE CONTAINER [ARG]
//
// prints one JSON object on stdout; an unexpected error prints {"error": …}
// and exits 1. The daemon is DOCKER_HOST (unix://PATH).
'use strict';

const Docker = require('dockerode');
const { PassThrough } = require('stream');

const host = process.env.DOCKER_HOST || 'unix:///var/run/docker.sock';
if (!host.startsWith('unix://')) throw new Error(`DOCKER_HOST must be unix://…, got ${host}`);
const docker = new Docker({ socketPath: host.slice('unix://'.length) });

// Collects a stream into a string.
function sink() {
  const s = new PassThrough();
  const chunks = [];
  s.on('data', (c) => chunks.push(c));
  s.text = () => Buffer.concat(chunks).toString('utf8');
  return s;
}

// Waits for the end (or close) of a response or hijacked socket.
function ended(stream) {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = () => {
      if (!done) {
        done = true;
        resolve();
      }
    };
    stream.on('end', finish);
    stream.on('close', finish);
    stream.on('error', reject);
  });
}

// Demultiplexes a non-TTY exec stream until it ends.
async function demuxed(stream) {
  const out = sink();
  const err = sink();
  docker.modem.demuxStream(stream, out, err);
  await ended(stream);
  return { stdout: out.text(), stderr: err.text() };
}

// A refusal as dockerode reports it: the Error's message, status and JSON body.
function refusal(e) {
  return { refused: true, status: e.statusCode ?? null, message: String(e.message), json: e.json ?? null };
}

const modes = {
  // exec.start({}): no Upgrade header; the daemon answers 200 with the raw
  // stream and closes when the process is done.
  async start_plain(container) {
    const exec = await docker.getContainer(container).exec({
      Cmd: ['sh', '-c', 'echo to-out; echo to-err >&2; exit 3'],
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await exec.start({});
    const got = await demuxed(stream);
    const info = await exec.inspect();
    return { ...got, exit_code: info.ExitCode, running: info.Running };
  },

  // exec.start({hijack, stdin}): the connection is upgraded, stdin written and
  // ended (half-close); `wc -c` answers only after EOF.
  async start_hijack(container) {
    const exec = await docker.getContainer(container).exec({
      Cmd: ['sh', '-c', 'wc -c; echo to-err >&2; exit 4'],
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await exec.start({ hijack: true, stdin: true });
    const got = demuxed(stream);
    stream.write('twelve bytes');
    stream.end();
    const res = await got;
    const info = await exec.inspect();
    return { ...res, exit_code: info.ExitCode };
  },

  // A TTY exec: resize while it waits on stdin, then it reports its size.
  async tty_resize(container) {
    const exec = await docker.getContainer(container).exec({
      Cmd: ['sh', '-c', 'read line; stty size; tty | cut -c1-9; exit 6'],
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: true,
    });
    const stream = await exec.start({ hijack: true, stdin: true, Tty: true });
    const out = sink();
    stream.pipe(out);
    const done = ended(stream);
    await exec.resize({ h: 33, w: 111 });
    stream.write('go\n');
    await done;
    const info = await exec.inspect();
    return { output: out.text(), exit_code: info.ExitCode };
  },

  // exec.start({Detach: true}): a plain 200, the process runs on.
  async detach(container, arg) {
    const exec = await docker.getContainer(container).exec({
      Cmd: ['sh', '-c', `sleep 0.2; echo detached > ${arg}`],
    });
    // dockerode hands back the (empty) response stream.
    const res = await exec.start({ Detach: true });
    const body = sink();
    res.pipe(body);
    await ended(res);
    return { started: true, status: res.statusCode, body: body.text() };
  },

  // docker.run: create, attach (POST …/attach without Upgrade), start, wait.
  async run(image, name) {
    const out = sink();
    const err = sink();
    const [data, container] = await docker.run(
      image,
      ['sh', '-c', 'echo run-out; echo run-err >&2; exit 7'],
      [out, err],
      { name, Tty: false, User: 'app', HostConfig: { NetworkMode: 'none' } },
    );
    await container.remove({ force: true });
    return { stdout: out.text(), stderr: err.text(), status_code: data.StatusCode };
  },

  // An exec as root: refused at create.
  async refuse(container) {
    try {
      const exec = await docker.getContainer(container).exec({ Cmd: ['id', '-u'], User: 'root', AttachStdout: true });
      return { refused: false, id: exec.id };
    } catch (e) {
      return refusal(e);
    }
  },

  // An exec created elsewhere, started here: refused at start.
  async refuse_start(_container, id) {
    try {
      const stream = await docker.getExec(id).start({ hijack: true, stdin: true });
      stream.destroy();
      return { refused: false };
    } catch (e) {
      return refusal(e);
    }
  },
};

async function main() {
  const [mode, target, arg] = process.argv.slice(2);
  const run = modes[mode];
  if (!run) throw new Error(`unknown mode ${mode}; modes: ${Object.keys(modes).join(', ')}`);
  const result = await run(target, arg);
  // Exit once written: after a refused hijacked start dockerode never ends its
  // request, and the open socket would keep node alive.
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e && e.stack ? e.stack : e), status: e && e.statusCode }) + '\n');
  process.exit(1);
});
