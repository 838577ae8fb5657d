/** The command's exits for bad input: one line on stderr, exit code 2, no stack trace, no password. */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const CLI = resolve(import.meta.dirname, '../../../dist/src/cli.js');
const run = (...args: string[]) => spawnSync('node', [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });

describe('tun2socks exits', () => {
  it('--help prints the flags and exits 0', () => {
    const r = run('--help');
    expect(r.status).toBe(0);
    for (const flag of [
      '--device',
      '--proxy',
      '--udp-timeout',
      '--config',
      '--tcp-sndbuf',
      '--tcp-rcvbuf',
      '--loglevel',
    ])
      expect(r.stdout).toContain(flag);
  });

  it('--version prints the version', () => {
    const r = run('--version');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^tun2socks \d+\.\d+\.\d+/);
  });

  it.each([
    [['--device', 'tun0', '--frobnicate'], /Unknown option '--frobnicate'/],
    [['--device', 'tun0', '--proxy', 'socks5://me:hunter2@198.18.0.1:0'], /^tun2socks: --proxy: /],
    [['--device', 'tun0', '--udp-timeout', 'forever'], /--udp-timeout must be a duration/],
    [['--config', '/nonexistent/tun2socks.yaml'], /--config \/nonexistent\/tun2socks.yaml: ENOENT/],
  ])('%j: one line, exit 2', (argv, message) => {
    const r = run(...argv);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).not.toContain('hunter2');
  });
});
