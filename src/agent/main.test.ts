// The agent's own command line: options, defaults, and clear errors for bad input.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DEFAULT_AGENT_DATA_DIR, parseAgentArgs, UsageError } from './main.js';

const BIN = fileURLToPath(new URL('../../../bin/continuum-agent', import.meta.url));
const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

test('options, environment and defaults', () => {
  const a = parseAgentArgs(
    ['--server', 'https://cp:7401', '--token', 'ctj_x', '--heartbeat-interval', '1000'],
    {},
  );
  assert.equal(a.server, 'https://cp:7401');
  assert.equal(a.token, 'ctj_x');
  assert.equal(a.heartbeatIntervalMs, 1000);
  assert.equal(a.stopTimeoutMs, 10_000);
  assert.equal(a.dataDir, DEFAULT_AGENT_DATA_DIR);
  assert.equal(a.portBindAddress, '0.0.0.0');
  const env = parseAgentArgs([], {
    CONTINUUM_AGENT_SERVER: 'https://env:7401',
    CONTINUUM_AGENT_TOKEN: 'ctj_env',
    CONTINUUM_AGENT_DATA_DIR: '/srv/agent',
  });
  assert.deepEqual([env.server, env.token, env.dataDir], ['https://env:7401', 'ctj_env', '/srv/agent']);
  // `continuum --server … --token … agent` passes the CLI's globals; flags still win.
  const globals = parseAgentArgs(['--token', 'ctj_flag'], {}, { server: 'https://g:7401', token: 'ctj_g' });
  assert.deepEqual([globals.server, globals.token], ['https://g:7401', 'ctj_flag']);
});

test('bad options are refused by name', () => {
  assert.throws(
    () => parseAgentArgs(['--heartbeat-interval', 'soon'], {}),
    (e: Error) => {
      assert.ok(e instanceof UsageError);
      assert.match(
        e.message,
        /--heartbeat-interval must be a whole number of milliseconds above 0 \(got 'soon'\)/,
      );
      return true;
    },
  );
  assert.throws(() => parseAgentArgs(['--stop-timeout', '0'], {}), /--stop-timeout must be/);
  assert.throws(() => parseAgentArgs(['--sever', 'x'], {}), /Unknown option '--sever'/);
  assert.throws(() => parseAgentArgs(['extra'], {}), /Unexpected argument 'extra'/);
});

test('continuum-agent and continuum agent print help, version and usage errors', () => {
  for (const argv of [[BIN], [CLI, 'agent']]) {
    const help = spawnSync(process.execPath, [...argv, '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^Usage: continuum-agent \[options\]/);
    assert.match(help.stdout, /--token <token>/);
    const version = spawnSync(process.execPath, [...argv, '--version'], { encoding: 'utf8' });
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
    const bad = spawnSync(process.execPath, [...argv, '--heartbeat-interval', '-5'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /error: .*heartbeat-interval/);
    assert.match(bad.stderr, /see continuum-agent --help/);
  }
  // Without a server and token and nothing enrolled yet, it says what is missing.
  const unenrolled = spawnSync(process.execPath, [BIN, '--data-dir', '/nonexistent/continuum-agent'], {
    encoding: 'utf8',
  });
  assert.equal(unenrolled.status, 1);
  assert.match(unenrolled.stderr, /^error: /);
});

test('the CLI lists the agent command', () => {
  const help = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
  assert.match(help.stdout, /agent .*run the node agent/);
});
