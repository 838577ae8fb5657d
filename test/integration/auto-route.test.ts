/**
 * `tun2socks --auto-route --set-dns` as a user runs it on a machine, with the "machine" being a
 * network namespace of this test (never the root namespace):
 *
 *   machine ns                                    internet ns
 *   tun2socks --auto-route (TUN 198.18.0.1/30)    danted 198.18.100.1:1080 (resolves via dnsmasq)
 *   uplink 198.18.100.2/24, fd00:100::2/64 ────── 198.18.100.1/24, fd00:100::1/64
 *   default via 198.18.100.1 / fd00:100::1        lo: 198.18.200.1, fd00:200::1: HTTP :80, dnsmasq :53
 *   resolv.conf → 198.18.200.1                    resolv.conf → 198.18.200.1
 *
 * Covered: curl by name (fake-IP, the name resolved at the proxy: danted's log shows it) and by
 * address over IPv4 and IPv6, dig through the rewritten resolv.conf (A answered by the stack, TXT
 * forwarded through the proxy to the nameserver resolv.conf had), a proxy at an IPv6 address; a
 * capture on the uplink holds
 * nothing but traffic with the proxy (no leak); after SIGTERM, and after kill -9 + a restart + a
 * clean stop, `ip route`, `ip -6 route`, `ip rule`, `ip -6 rule` and resolv.conf read byte for
 * byte as before; the hooks run in order; a foreign rule at our priority, a process without
 * CAP_NET_ADMIN and a missing default route are refused with one line and exit 1; an uncaught
 * exception undoes everything and exits 1. resolv.conf files live in /etc/netns/<ns>/ and are removed afterwards.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findExecutable } from '../testbed/exec.js';
import { canRunIntegration, type Netns, Testbed, waitFor } from '../testbed/index.js';

const CLI = resolve(import.meta.dirname, '../../dist/src/cli.js');
const TOOLS = ['danted', 'dnsmasq', 'dig', 'curl', 'tcpdump'] as const;
const GATEWAY = '198.18.100.1';
const GATEWAY6 = 'fd00:100::1';
const SERVER = '198.18.200.1';
const SERVER6 = 'fd00:200::1';
const PAGE = 'hello from web.test';

const HTTP_SERVER = `
const http = require('node:http');
const s = http.createServer((req, res) => res.end(${JSON.stringify(PAGE)} + ' from ' + req.socket.remoteAddress));
s.listen(80, '::', () => console.log('ready'));
`;

const toolsPresent = (): boolean => {
  const missing = TOOLS.filter((t) => findExecutable(t) === undefined);
  if (missing.length === 0) return true;
  if (process.env.CI) throw new Error(`auto-route tests need ${missing.join(', ')}`);
  return false;
};

/** A tun2socks process and its stderr. */
interface Running {
  proc: ChildProcess;
  stderr: string;
  exit: Promise<number | null>;
}

describe.skipIf(!canRunIntegration() || !toolsPresent())('tun2socks --auto-route', () => {
  let bed: Testbed;
  let machine: Netns;
  let internet: Netns;
  let uplink: string;
  let dantedLog: string;
  let dir: string;
  const netnsEtc: string[] = [];
  const devices: string[] = [];

  async function resolvConf(ns: Netns, text: string): Promise<void> {
    if (!ns.name.startsWith('t2s-')) throw new Error(`refusing to write resolv.conf for ${ns.name}`);
    const d = join('/etc/netns', ns.name);
    netnsEtc.push(d);
    await mkdir(d, { recursive: true });
    await writeFile(join(d, 'resolv.conf'), text);
  }

  /** What must read the same before and after: routes, rules, resolv.conf. */
  async function snapshot(): Promise<string> {
    const parts: string[] = [];
    for (const args of [['route'], ['-6', 'route'], ['rule'], ['-6', 'rule']]) {
      parts.push(`# ip ${args.join(' ')}\n${(await machine.ip(args)).stdout}`);
    }
    parts.push(`# resolv.conf\n${await readFile(join('/etc/netns', machine.name, 'resolv.conf'), 'utf8')}`);
    return parts.join('');
  }

  function start(
    device: string,
    extra: string[] = [],
    proxy = `socks5://${GATEWAY}:1080`,
    nodeFlags: string[] = [],
  ): Running {
    const proc = machine.spawn(
      'node',
      [
        ...nodeFlags,
        CLI,
        '--device',
        device,
        '--proxy',
        proxy,
        '--auto-route',
        '--set-dns',
        '--loglevel',
        'debug',
        ...extra,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const r: Running = {
      proc,
      stderr: '',
      exit: new Promise((res) => proc.once('exit', (code) => res(code))),
    };
    proc.stderr!.on('data', (d: Buffer) => {
      r.stderr += d.toString();
    });
    return r;
  }

  async function started(r: Running): Promise<void> {
    await waitFor(
      () => {
        if (r.proc.exitCode !== null) throw new Error(`tun2socks exited: ${r.stderr}`);
        return r.stderr.includes('tun2socks started');
      },
      15_000,
      'tun2socks to start',
    );
  }

  async function stop(r: Running, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (r.proc.exitCode === null) process.kill(r.proc.pid!, signal);
    return Promise.race([r.exit, new Promise<null>((res) => setTimeout(() => res(null), 8000))]);
  }

  async function curl(args: string[]): Promise<string> {
    const r = await machine.exec('curl', ['-sS', '--max-time', '10', ...args], {
      timeoutMs: 20_000,
      allowFail: true,
    });
    return r.stdout.trim() || r.stderr.trim();
  }

  beforeAll(async () => {
    bed = await Testbed.create('autoroute');
    machine = await bed.netns('machine');
    internet = await bed.netns('inet');
    ({ aIf: uplink } = await bed.veth(machine, internet, {
      a: '198.18.100.2/24',
      b: `${GATEWAY}/24`,
      a6: 'fd00:100::2/64',
      b6: `${GATEWAY6}/64`,
    }));
    await machine.ip(['route', 'add', 'default', 'via', GATEWAY]);
    await machine.ip(['-6', 'route', 'add', 'default', 'via', GATEWAY6]);
    await internet.ip(['addr', 'add', `${SERVER}/32`, 'dev', 'lo']);
    await internet.ip(['-6', 'addr', 'add', `${SERVER6}/128`, 'dev', 'lo']);
    await resolvConf(machine, `nameserver ${SERVER}\noptions timeout:2 attempts:2\n`);
    await resolvConf(internet, `nameserver ${SERVER}\n`);

    dir = await bed.tmpdir();
    dantedLog = join(dir, 'danted.log');
    const dantedConf = join(dir, 'danted.conf');
    await writeFile(
      dantedConf,
      [
        `logoutput: ${dantedLog}`,
        'debug: 1',
        `internal: ${GATEWAY} port = 1080`,
        `internal: ${GATEWAY6} port = 1080`,
        'external: lo',
        'socksmethod: none',
        'clientmethod: none',
        'user.privileged: root',
        'user.unprivileged: nobody',
        'client pass { from: 0/0 to: 0/0 }',
        'socks pass {',
        '  from: 0/0 to: 0/0',
        '  command: connect udpassociate udpreply',
        '  log: connect',
        '}',
        '',
      ].join('\n'),
    );
    const http = internet.spawn('node', ['-e', HTTP_SERVER], { stdio: ['ignore', 'pipe', 'ignore'] });
    const httpReady = new Promise<boolean>((r) => http.stdout!.once('data', () => r(true)));
    internet.spawn(
      'dnsmasq',
      [
        '--keep-in-foreground',
        '--conf-file=/dev/null',
        '--no-resolv',
        '--no-hosts',
        `--listen-address=${SERVER}`,
        '--bind-interfaces',
        '--user=root',
        `--address=/web.test/${SERVER}`,
        `--address=/web.test/${SERVER6}`,
        '--txt-record=txt.test,hello-txt',
        `--pid-file=${join(dir, 'dnsmasq.pid')}`,
      ],
      { stdio: 'ignore' },
    );
    internet.spawn('danted', ['-f', dantedConf, '-N', '1', '-p', join(dir, 'danted.pid')], {
      stdio: 'ignore',
    });
    await waitFor(() => httpReady, 10_000, 'the HTTP server');
    await internet.waitForTcpPort(53, 10_000);
    await internet.waitForTcpPort(1080, 10_000);
  }, 40_000);

  afterAll(async () => {
    try {
      await bed?.destroy();
    } finally {
      for (const d of netnsEtc) await rm(d, { recursive: true, force: true });
      for (const dev of devices) await rm(`/run/tun2socks/${dev}.json`, { force: true });
    }
  });

  it('routes everything through the proxy with fake-IP DNS, leaks nothing, and undoes it all on SIGTERM', async () => {
    const before = await snapshot();
    const device = bed.ifname('ar');
    devices.push(device);
    const pcap = join(dir, 'uplink.pcap');
    const capture = machine.spawn('tcpdump', ['-i', uplink, '-n', '-U', '--immediate-mode', '-w', pcap], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let captureLog = '';
    capture.stderr!.on('data', (d: Buffer) => {
      captureLog += d.toString();
    });
    await waitFor(() => captureLog.includes('listening on'), 5000, 'tcpdump to start');
    const t2s = start(device);
    try {
      await started(t2s);
      expect(await readFile(join('/etc/netns', machine.name, 'resolv.conf'), 'utf8')).toContain(
        'nameserver 198.18.0.2',
      );
      // By name: the stack answers with a fake address, the proxy resolves the name.
      expect(await curl(['-4', 'http://web.test/'])).toContain(PAGE);
      expect(await curl(['-6', 'http://web.test/'])).toContain(PAGE);
      // By address, both families; the server sees the proxy, not the machine.
      for (const url of [`http://${SERVER}/`, `http://[${SERVER6}]/`]) {
        const body = await curl([url]);
        expect(body).toContain(PAGE);
        expect(body).not.toMatch(/198\.18\.100\.2|fd00:100::2/);
      }
      const dig = await machine.exec('dig', ['+short', '+time=2', '+tries=2', 'web.test', 'A'], {
        allowFail: true,
      });
      expect(dig.stdout.trim()).toMatch(/^198\.19\.\d+\.\d+$/);
      // Not A/AAAA: forwarded through the proxy (UDP ASSOCIATE) to the default --dns-upstream,
      // the nameserver resolv.conf named before --set-dns.
      const txt = await machine.exec('dig', ['+short', '+time=2', '+tries=2', 'txt.test', 'TXT'], {
        allowFail: true,
      });
      expect(txt.stdout.trim()).toBe('"hello-txt"');
      expect(await readFile(dantedLog, 'utf8')).toContain('web.test');
    } finally {
      expect(await stop(t2s)).toBe(0);
      // Let tcpdump write what the kernel handed it before it stops.
      await new Promise((r) => setTimeout(r, 300));
      process.kill(capture.pid!, 'SIGINT');
      await new Promise((r) => capture.once('exit', r));
    }
    expect(t2s.stderr).toContain('auto-route removed');
    expect(await snapshot()).toBe(before);
    expect(existsSync(`/run/tun2socks/${device}.json`)).toBe(false);

    // Everything on the uplink was with the proxy: its TCP port and its UDP relay (neighbour
    // discovery and MLD aside).
    const all = await machine.exec('tcpdump', ['-n', '-r', pcap, 'ip or ip6'], { allowFail: true });
    expect(all.stdout, all.stdout + all.stderr + captureLog + t2s.stderr).toContain(`${GATEWAY}.1080`);
    const leaked = await machine.exec(
      'tcpdump',
      ['-n', '-r', pcap, `(ip or ip6) and not icmp6 and not ip6 multicast and not host ${GATEWAY}`],
      { allowFail: true },
    );
    expect(leaked.stdout.trim(), leaked.stdout).toBe('');
  }, 90_000);

  it('after kill -9 the next start replaces what was left, runs the hooks in order, and a stop by SIGHUP restores everything', async () => {
    const before = await snapshot();
    const device = bed.ifname('ar');
    devices.push(device);
    const first = start(device);
    await started(first);
    process.kill(first.proc.pid!, 'SIGKILL');
    await first.exit;
    // Left behind: the rules, the rewritten resolv.conf and the state file.
    expect(await snapshot()).not.toBe(before);
    expect(existsSync(`/run/tun2socks/${device}.json`)).toBe(true);

    const hooks = join(dir, 'hooks.log');
    const second = start(device, [
      '--tun-pre-up',
      `echo "pre-up $TUN2SOCKS_DEVICE" >> ${hooks}`,
      '--tun-post-up',
      `ip rule | grep -c 'lookup 2022' >> ${hooks}`,
      '--tun-pre-down',
      `echo pre-down >> ${hooks}`,
    ]);
    try {
      await started(second);
      expect(second.stderr).toContain('removed what an earlier run left behind');
      // Hooks: before the set-up, after it (both catch-all rules in place), and at stop below.
      expect(await readFile(hooks, 'utf8')).toBe(`pre-up ${device}\n2\n`);
      expect(await curl([`http://${SERVER}/`])).toContain(PAGE);
    } finally {
      // SIGHUP (a closed terminal) cleans up like SIGINT and SIGTERM.
      expect(await stop(second, 'SIGHUP')).toBe(0);
    }
    expect(await readFile(hooks, 'utf8')).toBe(`pre-up ${device}\n2\npre-down\n`);
    expect(await snapshot()).toBe(before);
    expect(existsSync(`/run/tun2socks/${device}.json`)).toBe(false);
  }, 90_000);

  it('refuses a rule priority someone else uses, a missing CAP_NET_ADMIN and no default route, in one line with exit 1', async () => {
    const before = await snapshot();
    await machine.ip(['rule', 'add', 'pref', '9004', 'lookup', '100']);
    try {
      const r = start(bed.ifname('ar'));
      expect(await r.exit).toBe(1);
      expect(r.stderr).toMatch(/^tun2socks: rule priority 9004 is already used by "lookup 100".*\n$/m);
    } finally {
      await machine.ip(['rule', 'del', 'pref', '9004', 'lookup', '100']);
    }
    expect(await snapshot()).toBe(before);

    // Without CAP_NET_ADMIN (root with it dropped from the bounding set): nothing is touched.
    const unprivileged = machine.spawn(
      'setpriv',
      [
        '--bounding-set',
        '-net_admin',
        '--inh-caps',
        '-net_admin',
        'node',
        CLI,
        '--device',
        bed.ifname('ar'),
        '--auto-route',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let unprivilegedErr = '';
    unprivileged.stderr!.on('data', (d: Buffer) => {
      unprivilegedErr += d.toString();
    });
    expect(await new Promise((r) => unprivileged.once('exit', r))).toBe(1);
    expect(unprivilegedErr).toBe('tun2socks: --auto-route needs CAP_NET_ADMIN (run as root)\n');
    expect(await snapshot()).toBe(before);

    const lonely = await bed.netns('lonely');
    const proc = lonely.spawn(
      'node',
      [CLI, '--device', bed.ifname('ar'), '--auto-route', '--dns', 'direct'],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const code = await new Promise<number | null>((r) => proc.once('exit', r));
    expect(code).toBe(1);
    expect(stderr).toMatch(/^tun2socks: no default route to bypass through/);
  }, 60_000);

  it('works with the proxy at an IPv6 address and --interface: marked, bound IPv6 sockets leave by the main table', async () => {
    const before = await snapshot();
    const device = bed.ifname('ar');
    devices.push(device);
    // --interface too: every upstream socket bound to the uplink (SO_BINDTODEVICE).
    const t2s = start(device, ['--interface', uplink], `socks5://[${GATEWAY6}]:1080`);
    try {
      await started(t2s);
      expect(await curl(['-4', 'http://web.test/'])).toContain(PAGE);
      expect(await curl(['-6', 'http://web.test/'])).toContain(PAGE);
      expect(await curl([`http://[${SERVER6}]/`])).toContain(PAGE);
      expect(t2s.stderr).toMatch(/tcp open .*dst=\[fd00:200::1\]:80/);
    } finally {
      expect(await stop(t2s)).toBe(0);
    }
    expect(await snapshot()).toBe(before);
  }, 60_000);

  it('an uncaught exception undoes everything and exits 1', async () => {
    const before = await snapshot();
    const device = bed.ifname('ar');
    devices.push(device);
    // Preloaded into the command: a timer that throws once tun2socks has started.
    const bomb = join(dir, 'bomb.cjs');
    await writeFile(bomb, "setTimeout(() => { throw new Error('boom from a test'); }, 2500).unref();\n");
    const t2s = start(device, [], undefined, ['--require', bomb]);
    await started(t2s);
    expect(await snapshot()).not.toBe(before);
    const code = await Promise.race([t2s.exit, new Promise<null>((r) => setTimeout(() => r(null), 10_000))]);
    expect(code).toBe(1);
    expect(t2s.stderr).toContain('boom from a test');
    expect(t2s.stderr).toContain('auto-route removed');
    expect(await snapshot()).toBe(before);
  }, 60_000);
});
