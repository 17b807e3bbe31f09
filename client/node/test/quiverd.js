'use strict';
// Starts a real quiverd (the binary in $QUIVERD) on a free loopback port
// with a temporary data directory, for the tests.
const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startQuiverd(extraArgs = [], { makeClient } = {}) {
  const bin = process.env.QUIVERD;
  if (!bin || !fs.existsSync(bin)) throw new Error(`set QUIVERD to the quiverd binary (got ${bin})`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-node-test-'));
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const log = fs.openSync(path.join(dir, 'quiverd.log'), 'a');
    const proc = spawn(bin, ['--listen', `127.0.0.1:${port}`, '--data-dir', path.join(dir, 'data'),
      '--log-level', 'warn', ...extraArgs], { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    let exited = false;
    proc.on('exit', () => { exited = true; });
    const address = `127.0.0.1:${port}`;
    const client = makeClient(address);
    const deadline = Date.now() + 20000;
    while (!exited && Date.now() < deadline) {
      try {
        if ((await client.health()) === 'SERVING') {
          client.close();
          return {
            address, dir,
            async stop() {
              if (!exited) {
                const done = new Promise((r) => proc.on('exit', r));
                proc.kill('SIGTERM');
                await done;
              }
              fs.rmSync(dir, { recursive: true, force: true });
            },
          };
        }
      } catch (e) { /* not up yet */ }
      await new Promise((r) => setTimeout(r, 50));
    }
    client.close();
    if (!exited) proc.kill('SIGKILL');
  }
  const log = fs.readFileSync(path.join(dir, 'quiverd.log'), 'utf8');
  throw new Error(`quiverd did not become healthy:\n${log.slice(-4000)}`);
}

module.exports = { startQuiverd };
