/**
 * AutoRoute against a fake `ip` (no system change): every undo is in the state file before its
 * command runs, a failing step undoes what ran in reverse, down() is idempotent, a state file left
 * by a killed run is replayed (and its resolv.conf restored) on the next prepare, another
 * namespace's state file is refused, and the hooks run in order with TUN2SOCKS_DEVICE.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AutoRoute, type AutoRouteOptions, hasNetAdmin, replayUndo } from '../../../src/route/auto-route.js';
import { parseCidr } from '../../../src/route/cidr.js';
import type { IpResult } from '../../../src/route/observe.js';
import { RouteError } from '../../../src/route/plan.js';
import { ownerAlive, type RouteState, readState, statePath, writeState } from '../../../src/route/state.js';

const MAIN4 =
  '[{"dst":"default","gateway":"198.18.100.1","dev":"eth0","flags":[]},' +
  '{"dst":"198.18.100.0/24","dev":"eth0","protocol":"kernel","scope":"link","flags":[]}]';
const RULES4 = '[{"priority":0,"src":"all","table":"local"},{"priority":32766,"src":"all","table":"main"}]';

/** A fake `ip`: answers the reads of observe(), records every other command, fails those matching `fail`. */
class FakeIp {
  readonly calls: string[] = [];
  fail: RegExp | undefined;
  rules4 = RULES4;
  onCall: ((cmd: string) => void) | undefined;

  run = (argv: readonly string[]): IpResult => {
    const cmd = argv.join(' ');
    if (cmd === '-4 -j route show table main') return { code: 0, stdout: MAIN4, stderr: '' };
    if (cmd === '-6 -j route show table main') return { code: 0, stdout: '[]', stderr: '' };
    if (cmd === '-4 -j rule show') return { code: 0, stdout: this.rules4, stderr: '' };
    if (cmd === '-6 -j rule show') return { code: 0, stdout: '[]', stderr: '' };
    if (/^-[46] -j route show table \d+$/.test(cmd))
      return { code: 2, stdout: '', stderr: 'FIB table does not exist' };
    if (cmd.startsWith('-j addr show dev')) return { code: 1, stdout: '', stderr: 'Device does not exist' };
    this.onCall?.(cmd);
    this.calls.push(cmd);
    if (this.fail?.test(cmd)) return { code: 2, stdout: '', stderr: 'RTNETLINK answers: File exists' };
    return { code: 0, stdout: '', stderr: '' };
  };
}

let dir: string;
let ip: FakeIp;

function options(extra: Partial<AutoRouteOptions> = {}): AutoRouteOptions {
  return {
    addresses: [parseCidr('198.18.0.1/30')],
    table: 2022,
    rulePriority: 9000,
    fwmark: 0x2022,
    include: [],
    exclude: [],
    stateDir: dir,
    ip: ip.run,
    skipPrivilegeCheck: true,
    netns: 4242,
    ...extra,
  };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 't2s-route-unit-'));
  ip = new FakeIp();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('AutoRoute', () => {
  it('records each undo in the state file before running its command, and undoes in reverse', () => {
    const route = AutoRoute.prepare('tun7', options());
    const path = statePath(dir, 'tun7');
    ip.onCall = (cmd) => {
      // The state file already holds this command's undo.
      const undo = readState(path)!.undo.map((a) => a.join(' '));
      const expected = cmd.replace(' add ', ' del ').replace('dev tun7 up', 'dev tun7 down');
      expect(undo.at(-1)).toBe(expected);
    };
    route.up();
    ip.onCall = undefined;
    const setUp = [...ip.calls];
    expect(setUp[0]).toBe('-4 addr add 198.18.0.1/30 dev tun7');
    expect(setUp.at(-1)).toBe('-4 rule add pref 9005 not fwmark 0x2022 lookup 2022');
    expect(readState(path)).toMatchObject({ device: 'tun7', netns: 4242, table: 2022, rulePriority: 9000 });

    ip.calls.length = 0;
    route.down();
    const expectedUndo = setUp
      .map((c) => c.replace(' add ', ' del ').replace('dev tun7 up', 'dev tun7 down'))
      .reverse();
    expect(ip.calls).toEqual(expectedUndo);
    expect(existsSync(path)).toBe(false);
    ip.calls.length = 0;
    route.down();
    expect(ip.calls).toEqual([]);
  });

  it('undoes what ran when a step fails, and throws a RouteError naming the command', () => {
    ip.fail = /rule add pref 9004/;
    const route = AutoRoute.prepare('tun7', options());
    expect(() => route.up()).toThrow(RouteError);
    const failedAt = ip.calls.findIndex((c) => c.includes('rule add pref 9004'));
    const undo = ip.calls.slice(failedAt + 1);
    expect(undo[0]).toBe('-4 rule del pref 9004 lookup main suppress_prefixlength 0');
    expect(undo.at(-1)).toBe('-4 addr del 198.18.0.1/30 dev tun7');
    expect(existsSync(statePath(dir, 'tun7'))).toBe(false);
  });

  it('replays a state file left by a killed run and restores its resolv.conf', () => {
    const resolv = join(dir, 'resolv.conf');
    writeFileSync(resolv, 'nameserver 198.18.0.2\n');
    const stale: RouteState = {
      version: 1,
      device: 'tun7',
      pid: 1,
      netns: 4242,
      table: 2022,
      rulePriority: 9000,
      fwmark: 0x2022,
      undo: [
        ['-4', 'route', 'del', 'default', 'dev', 'tun7', 'table', '2022'],
        ['-4', 'rule', 'del', 'pref', '9005', 'not', 'fwmark', '0x2022', 'lookup', '2022'],
      ],
      resolv: { path: resolv, original: 'nameserver 10.0.0.1\n', written: 'nameserver 198.18.0.2\n' },
    };
    writeState(statePath(dir, 'tun7'), stale);
    AutoRoute.prepare('tun7', options());
    expect(ip.calls).toEqual([
      '-4 rule del pref 9005 not fwmark 0x2022 lookup 2022',
      '-4 route del default dev tun7 table 2022',
    ]);
    expect(readFileSync(resolv, 'utf8')).toBe('nameserver 10.0.0.1\n');
    expect(existsSync(statePath(dir, 'tun7'))).toBe(false);
  });

  it('leaves a resolv.conf someone changed after us, and refuses another namespace state file', () => {
    const resolv = join(dir, 'resolv.conf');
    writeFileSync(resolv, 'nameserver 9.9.9.9\n');
    const state: RouteState = {
      version: 1,
      device: 'tun7',
      pid: 1,
      netns: 4242,
      table: 2022,
      rulePriority: 9000,
      fwmark: 0x2022,
      undo: [],
      resolv: { path: resolv, original: 'nameserver 10.0.0.1\n', written: 'nameserver 198.18.0.2\n' },
    };
    replayUndo(state, ip.run);
    expect(readFileSync(resolv, 'utf8')).toBe('nameserver 9.9.9.9\n');
    writeState(statePath(dir, 'tun7'), { ...state, netns: 1 });
    expect(() => AutoRoute.prepare('tun7', options())).toThrow(/another network namespace/);
  });

  it('deletes stale rules of ours found without a state file, and refuses a foreign one', () => {
    ip.rules4 =
      '[{"priority":0,"src":"all","table":"local"},{"priority":9005,"not":null,"src":"all","fwmark":"0x2022","table":"2022"}]';
    AutoRoute.prepare('tun7', options());
    expect(ip.calls).toEqual(['-4 rule del pref 9005 not fwmark 0x2022 lookup 2022']);
    ip.rules4 = '[{"priority":9002,"src":"all","table":"100"}]';
    expect(() => AutoRoute.prepare('tun7', options())).toThrow(/rule priority 9002 is already used/);
  });

  it('runs the hooks in order with TUN2SOCKS_DEVICE, and a failing pre-up undoes and throws', () => {
    const log = join(dir, 'hooks.log');
    const route = AutoRoute.prepare(
      'tun7',
      options({
        preUp: `echo "pre-up $TUN2SOCKS_DEVICE" >> ${log}`,
        postUp: `echo post-up >> ${log}`,
        preDown: `echo pre-down >> ${log}`,
      }),
    );
    route.up();
    route.down();
    expect(readFileSync(log, 'utf8')).toBe('pre-up tun7\npost-up\npre-down\n');

    const failing = AutoRoute.prepare('tun7', options({ preUp: 'exit 3' }));
    expect(() => failing.up()).toThrow(/--tun-pre-up "exit 3" exited with 3/);
  });
});

describe('hasNetAdmin', () => {
  it('reads bit 12 of CapEff', () => {
    expect(hasNetAdmin('Name:\tnode\nCapEff:\t000001ffffffffff\n')).toBe(true);
    expect(hasNetAdmin('CapEff:\t0000000000000000\n')).toBe(false);
    expect(hasNetAdmin('CapEff:\t0000000000001000\n')).toBe(true);
    expect(hasNetAdmin('nothing')).toBe(false);
  });
});

describe('a tun2socks still running', () => {
  const live: RouteState = {
    version: 1,
    device: 'tun5',
    pid: 999_999,
    netns: 4242,
    table: 2022,
    rulePriority: 9000,
    fwmark: 0x2022,
    undo: [['-4', 'rule', 'del', 'pref', '9005', 'not', 'fwmark', '0x2022', 'lookup', '2022']],
  };

  it('is never cleaned up after: same device, same table or overlapping priorities are refused', () => {
    writeState(statePath(dir, 'tun5'), live);
    const alive = (pid: number) => pid === 999_999;
    expect(() => AutoRoute.prepare('tun5', options({ ownerAlive: alive }))).toThrow(
      'tun2socks pid 999999 is already routing into tun5',
    );
    expect(() =>
      AutoRoute.prepare('tun6', options({ ownerAlive: alive, rulePriority: 9004, table: 7 })),
    ).toThrow(/pid 999999 \(device tun5\) uses table 2022 and rule priorities 9000-9005/);
    expect(() =>
      AutoRoute.prepare('tun6', options({ ownerAlive: alive, table: 2022, rulePriority: 100 })),
    ).toThrow(/choose another --table and --rule-priority/);
    AutoRoute.prepare('tun6', options({ ownerAlive: alive, table: 7, rulePriority: 9006 }));
    expect(ip.calls).toEqual([]);
    // Dead: its state file is replayed by the next start on its device.
    AutoRoute.prepare('tun5', options({ ownerAlive: () => false }));
    expect(ip.calls).toEqual(['-4 rule del pref 9005 not fwmark 0x2022 lookup 2022']);
  });

  it('ownerAlive: a recycled pid running something else is not tun2socks', () => {
    expect(ownerAlive(123, () => 'node /usr/lib/node_modules/tun2socks/dist/src/cli.js --device t')).toBe(
      true,
    );
    expect(ownerAlive(123, () => 'sleep 100')).toBe(false);
    expect(
      ownerAlive(123, () => {
        throw new Error('ENOENT');
      }),
    ).toBe(false);
    expect(ownerAlive(process.pid, () => 'tun2socks')).toBe(false);
  });
});
