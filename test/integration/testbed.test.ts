import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listNetns, pidAlive } from '../testbed/cleanup.js';
import { run } from '../testbed/exec.js';
import { checkCidr4, checkCidr6, checkIfname } from '../testbed/guard.js';
import { canRunIntegration, type Netns, sweepStale, Testbed, waitFor } from '../testbed/index.js';
import { ifnameFor, ifnameOwner, netnsName, netnsPid } from '../testbed/names.js';

const testbedDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'testbed');

/** Whether `pid` is gone: no such process, or a zombie nobody has reaped yet. */
function gone(pid: number): boolean {
  if (!pidAlive(pid)) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

describe('testbed names', () => {
  it('keeps interface names within 15 bytes and reads (pid, counter) back from them', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4_194_304 }), fc.nat(1_000_000), fc.string(), (pid, n, label) => {
        const name = ifnameFor(pid, n, label);
        expect(Buffer.byteLength(name)).toBeLessThanOrEqual(15);
        expect(() => checkIfname(name)).not.toThrow();
        expect(ifnameOwner(name)).toEqual({ pid, n });
      }),
      { numRuns: 2000 },
    );
  });

  it('never gives two processes or two counters the same interface name', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4_194_304 }),
        fc.integer({ min: 1, max: 4_194_304 }),
        fc.nat(50_000),
        fc.nat(50_000),
        fc.string({ maxLength: 12 }),
        fc.string({ maxLength: 12 }),
        (p1, p2, n1, n2, l1, l2) => {
          fc.pre(p1 !== p2 || n1 !== n2);
          expect(ifnameFor(p1, n1, l1)).not.toBe(ifnameFor(p2, n2, l2));
        },
      ),
    );
    // The case a variable-width encoding without a separator gets wrong: pid "ab" + counter "c"
    // against pid "a" + counter "bc".
    expect(ifnameFor(371, 12, 'x')).not.toBe(ifnameFor(10, 419, 'x'));
  });

  it('puts pid and counter first in namespace names so a sweep can read them', () => {
    const name = netnsName(1234, 7, 'My Tag', 'client/1');
    expect(name).toBe('t2s-1234-7-my-tag-client-1');
    expect(netnsPid(name)).toBe(1234);
    expect(netnsPid('t2s-99-0-x')).toBe(99);
    expect(netnsPid('t2s-99-0')).toBe(99);
    for (const other of ['t2s-0-1-x', 't2s-12x-0-x', 't2s-12', 'x-t2s-12-0-x', 'T2S-12-0-x', 'docker'])
      expect(netnsPid(other)).toBeUndefined();
  });
});

describe('testbed guard rails', () => {
  it('accepts only prefixes inside 198.18.0.0/15', () => {
    for (const ok of ['198.18.0.1/24', '198.18.0.0/15', '198.19.255.254/30', '198.18.7.7'])
      expect(checkCidr4(ok)).toBe(ok);
    for (const bad of [
      '10.0.0.1/24',
      '198.17.255.1/24',
      '198.20.0.1/24',
      '198.18.0.1/14',
      '198.18.0.1/8',
      '198.18.0.1/33',
      '198.18.0.1/',
      '198.018.0.1',
      'default',
      '0.0.0.0/0',
      'fd00::1/64',
      '',
    ])
      expect(() => checkCidr4(bad), bad).toThrow(/refusing/);
  });

  it('accepts only prefixes inside fd00::/8', () => {
    for (const ok of ['fd00::1/64', 'fd12:3456::/48', 'fdff:ffff::1', 'FD00::2/8'])
      expect(checkCidr6(ok)).toBe(ok);
    for (const bad of [
      'fe80::1/64',
      'fc00::1/64',
      '2001:db8::1/64',
      '::1',
      '::',
      '::ffff:198.18.0.1',
      'fd::1/64',
      'fd00::1/7',
      'fd00::1%lo',
      'fd00::1/129',
      '198.18.0.1/24',
      'default',
    ])
      expect(() => checkCidr6(bad), bad).toThrow(/refusing/);
  });

  it('accepts only interface names Linux takes', () => {
    expect(checkIfname('tun0')).toBe('tun0');
    expect(checkIfname('a'.repeat(15))).toHaveLength(15);
    for (const bad of ['', 'a'.repeat(16), 'a b', 'a/b', '.', '..', 'tün'])
      expect(() => checkIfname(bad), bad).toThrow(/refusing/);
  });
});

describe('waitFor', () => {
  it('resolves with the first truthy value', async () => {
    let calls = 0;
    await expect(waitFor(() => ++calls >= 3 && 'ready', 2000, 'three calls')).resolves.toBe('ready');
    expect(calls).toBe(3);
  });

  it('rejects naming what it waited for and the last error', async () => {
    await expect(
      waitFor(
        () => {
          throw new Error('boom');
        },
        50,
        'the impossible',
      ),
    ).rejects.toThrow(/timed out after 50 ms waiting for the impossible \(last error: boom\)/);
  });
});

/** The test bed transpiled to plain ESM in `dir`, plus a child script using it (see modes below). */
async function buildChild(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const file of await readdir(testbedDir)) {
    if (!file.endsWith('.ts') || file.endsWith('.test.ts')) continue;
    const source = await readFile(join(testbedDir, file), 'utf8');
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
    });
    await writeFile(join(dir, file.replace(/\.ts$/, '.js')), outputText);
  }
  await writeFile(join(dir, 'package.json'), '{ "type": "module" }\n');
  const child = join(dir, 'child.js');
  await writeFile(
    child,
    `import { Testbed } from './index.js';
const mode = process.argv[2];
// Bounded: a child nobody signals ends by itself.
setTimeout(() => process.exit(9), 20000).unref();
const bed = await Testbed.create('child');
const a = await bed.netns('a');
const b = await bed.netns('b');
const { aIf, bIf } = await bed.veth(a, b, { a: '198.18.200.1/30', b: '198.18.200.2/30' });
const tun = await bed.tun(a, { address: '198.18.201.1/24' });
const sleeper = a.spawn('sleep', ['100'], { stdio: 'ignore' });
const dir = await bed.tmpdir();
console.log(JSON.stringify({ ns: [a.name, b.name], ifs: [aIf, bIf, tun], sleepPid: sleeper.pid, dir }));
if (mode === 'throw') throw new Error('the test body failed');
if (mode === 'exit') process.exit(3);
if (mode === 'wait') setInterval(() => {}, 1000);
if (mode === 'destroy') await bed.destroy();
`,
  );
  return child;
}

interface ChildInfo {
  ns: string[];
  ifs: string[];
  sleepPid: number;
  dir: string;
}

/** Runs the child script in `mode`; `act` gets it once it has printed its names (e.g. to signal it). */
async function runChild(
  script: string,
  mode: string,
  act: (child: ChildProcess) => void = () => {},
): Promise<{ info: ChildInfo; code: number | null; signal: NodeJS.Signals | null }> {
  const child = spawn(process.execPath, [script, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let acted = false;
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (!acted && stdout.includes('\n')) {
      acted = true;
      act(child);
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('exit', (c, s) => resolve([c, s])),
  );
  clearTimeout(killer);
  const line = stdout.split('\n')[0] ?? '';
  if (!line.startsWith('{')) throw new Error(`child (${mode}) printed no names: ${stderr}`);
  return { info: JSON.parse(line) as ChildInfo, code, signal };
}

/** Asserts that everything a child created is gone. */
async function expectCleanedUp(info: ChildInfo): Promise<void> {
  const names = await listNetns();
  for (const ns of info.ns) expect(names).not.toContain(ns);
  await waitFor(() => gone(info.sleepPid), 3000, `sleep ${info.sleepPid} to die`);
  expect(existsSync(info.dir)).toBe(false);
}

describe.skipIf(!canRunIntegration())('testbed in namespaces', () => {
  let bed: Testbed;
  let client: Netns;
  let server: Netns;

  beforeAll(async () => {
    bed = await Testbed.create('tb');
    client = await bed.netns('client');
    server = await bed.netns('server');
  });
  afterAll(async () => {
    await bed?.destroy();
  });

  it('names namespaces after the process and gives each one loopback', async () => {
    expect(client.name).toMatch(new RegExp(`^t2s-${process.pid}-\\d+-tb-client$`));
    expect(client.path).toBe(`/var/run/netns/${client.name}`);
    expect(existsSync(client.path)).toBe(true);
    const { stdout } = await client.ip(['-o', 'link', 'show', 'lo']);
    expect(stdout).toMatch(/UP/);
  });

  it('joins two namespaces by a veth that pings both ways over IPv4 and IPv6', async () => {
    const { aIf, bIf } = await bed.veth(client, server, {
      a: '198.18.0.1/24',
      b: '198.18.0.2/24',
      a6: 'fd00:18::1/64',
      b6: 'fd00:18::2/64',
    });
    for (const name of [aIf, bIf]) expect(Buffer.byteLength(name)).toBeLessThanOrEqual(15);
    expect((await client.ip(['-o', 'link', 'show', aIf])).stdout).toContain(aIf);
    expect((await server.ip(['-o', 'link', 'show', bIf])).stdout).toContain(bIf);
    const ping = ['-c', '1', '-W', '5'];
    await client.exec('ping', [...ping, '198.18.0.2'], { timeoutMs: 10_000 });
    await server.exec('ping', [...ping, '198.18.0.1'], { timeoutMs: 10_000 });
    await client.exec('ping', [...ping, 'fd00:18::2'], { timeoutMs: 10_000 });
    await server.exec('ping', [...ping, 'fd00:18::1'], { timeoutMs: 10_000 });
  });

  it('creates a persistent TUN with MTU, addresses and routes inside the namespace only', async () => {
    const name = await bed.tun(client, {
      mtu: 1400,
      address: '198.18.10.1/24',
      address6: 'fd00:10::1/64',
      routes: ['198.18.11.0/24'],
      routes6: ['fd00:11::/64'],
    });
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(15);
    const link = (await run('ip', ['-n', client.name, '-d', '-o', 'link', 'show', name])).stdout;
    expect(link).toContain('mtu 1400');
    expect(link).toMatch(/tun type tun/);
    expect(link).toMatch(/<[^>]*\bUP\b/);
    expect((await client.ip(['-o', 'addr', 'show', name])).stdout).toMatch(
      /198\.18\.10\.1\/24[\s\S]*fd00:10::1\/64/,
    );
    expect((await client.ip(['route', 'show', '198.18.11.0/24'])).stdout).toContain(`dev ${name}`);
    expect((await client.ip(['-6', 'route', 'show', 'fd00:11::/64'])).stdout).toContain(`dev ${name}`);
    // Nothing leaked into the machine's own namespace.
    expect((await run('ip', ['-o', 'link'])).stdout).not.toContain(name);
    const named = await bed.tun(server, { name: `tb${process.pid % 10000}` });
    expect((await server.ip(['-o', 'link'])).stdout).toContain(named);
  });

  it('refuses other addresses and routes before touching anything', async () => {
    const before = (await client.ip(['-o', 'link'])).stdout;
    const refused = [
      bed.veth(client, server, { a: '10.0.0.1/24' }),
      bed.veth(client, server, { b6: 'fe80::1/64' }),
      bed.tun(client, { address: '192.168.1.1/24' }),
      bed.tun(client, { routes: ['198.18.20.0/24', 'default'] }),
      bed.tun(client, { routes6: ['::/0'] }),
      bed.tun(client, { address6: '2001:db8::1/64' }),
      bed.tun(client, { name: 'a-name-longer-than-15' }),
    ];
    for (const p of refused) await expect(p).rejects.toThrow(/refusing/);
    expect((await client.ip(['-o', 'link'])).stdout).toBe(before);
  });

  it('spawns processes inside the namespace', async () => {
    const child = server.spawn('sh', ['-c', 'readlink /proc/self/ns/net; ip -o link show lo'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await new Promise((resolve) => child.on('exit', resolve));
    const own = (await server.exec('readlink', ['/proc/self/ns/net'])).stdout;
    expect(out.split('\n')[0]).toBe(own.trim());
  });

  it('waits for a TCP listener in the namespace', async () => {
    await expect(server.waitForTcpPort(18080, 100)).rejects.toThrow(/port 18080/);
    server.spawn(
      process.execPath,
      ['-e', 'require("net").createServer().listen(18081); setTimeout(() => {}, 30000)'],
      {
        stdio: 'ignore',
      },
    );
    await server.waitForTcpPort(18081, 5000);
  });

  it('waits for a UDP socket bound in the namespace', async () => {
    await expect(server.waitForUdpPort(18082, 100)).rejects.toThrow(/UDP listener on port 18082/);
    server.spawn(
      process.execPath,
      ['-e', 'require("dgram").createSocket("udp4").bind(18083); setTimeout(() => {}, 30000)'],
      { stdio: 'ignore' },
    );
    await server.waitForUdpPort(18083, 5000);
  });

  it('destroy() kills spawned processes, deletes namespaces and temp dirs, and is idempotent', async () => {
    const own = await Testbed.create('tbgone');
    const a = await own.netns('a');
    const b = await own.netns('b');
    await own.veth(a, b, { a: '198.18.30.1/30', b: '198.18.30.2/30' });
    await own.tun(a, { address: '198.18.31.1/24' });
    const sleeper = a.spawn('sleep', ['100'], { stdio: 'ignore' });
    // An orphan that no longer belongs to the spawned process group still dies with the namespace.
    await a.sh('setsid sleep 100 >/dev/null 2>&1 & echo $! > /dev/null');
    const orphans = (await run('ip', ['netns', 'pids', a.name])).stdout.trim().split('\n').map(Number);
    const dir = await own.tmpdir();
    expect(existsSync(dir)).toBe(true);
    await own.destroy();
    await own.destroy();
    const names = await listNetns();
    expect(names).not.toContain(a.name);
    expect(names).not.toContain(b.name);
    expect(sleeper.exitCode !== null || sleeper.signalCode !== null).toBe(true);
    expect(sleeper.signalCode).toBe('SIGTERM');
    for (const pid of orphans) await waitFor(() => gone(pid), 3000, `orphan ${pid} to die`);
    expect(existsSync(dir)).toBe(false);
    await expect(own.netns('late')).rejects.toThrow(/destroyed/);
  });

  describe('in other processes', () => {
    let script: string;
    beforeAll(async () => {
      script = await buildChild(join(await bed.tmpdir(), 'child'));
    });

    it('gives two processes running at once disjoint names', async () => {
      const [one, two] = await Promise.all([runChild(script, 'destroy'), runChild(script, 'destroy')]);
      expect(one.code).toBe(0);
      expect(two.code).toBe(0);
      const all = [...one.info.ns, ...one.info.ifs, ...two.info.ns, ...two.info.ifs];
      expect(new Set(all).size).toBe(all.length);
      await expectCleanedUp(one.info);
      await expectCleanedUp(two.info);
    });

    it('cleans up when the test body throws', async () => {
      const { info, code } = await runChild(script, 'throw');
      expect(code).toBe(1);
      await expectCleanedUp(info);
    });

    it('cleans up on process.exit()', async () => {
      const { info, code } = await runChild(script, 'exit');
      expect(code).toBe(3);
      await expectCleanedUp(info);
    });

    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      it(`cleans up on ${sig} and then dies of it`, async () => {
        const { info, signal } = await runChild(script, 'wait', (child) => child.kill(sig));
        expect(signal).toBe(sig);
        await expectCleanedUp(info);
      });
    }

    it('sweepStale() removes what a SIGKILLed process left behind', async () => {
      const { info, signal } = await runChild(script, 'wait', (child) => child.kill('SIGKILL'));
      expect(signal).toBe('SIGKILL');
      try {
        // Nothing cleaned up after the SIGKILL (another file's Testbed.create may sweep it first).
        await sweepStale();
        const names = await listNetns();
        for (const ns of info.ns) expect(names).not.toContain(ns);
        expect(existsSync(info.dir)).toBe(false);
      } finally {
        // The sweep deletes names and dirs only; the sleep this test started is killed here by its pid.
        if (!gone(info.sleepPid)) process.kill(info.sleepPid, 'SIGKILL');
        await run('rm', ['-rf', info.dir]);
      }
    });
  });

  it('sweepStale() deletes only t2s-<dead pid>-… namespaces', async () => {
    const pidMax = Number((await readFile('/proc/sys/kernel/pid_max', 'utf8')).trim());
    const dead = pidMax + 1;
    expect(pidAlive(dead)).toBe(false);
    const stale = `t2s-${dead}-${process.pid}-stale`;
    const kept = [
      `t2s-${process.ppid}-${process.pid}-liveparent`,
      `t2s-${dead}x-${process.pid}-notapid`,
      `x-t2s-${dead}-${process.pid}-prefixed`,
    ];
    try {
      for (const name of [stale, ...kept]) await run('ip', ['netns', 'add', name]);
      await sweepStale();
      const names = await listNetns();
      expect(names).not.toContain(stale);
      expect(names).toEqual(expect.arrayContaining(kept));
      expect(names).toContain(client.name);
    } finally {
      for (const name of [stale, ...kept]) await run('ip', ['netns', 'del', name], { allowFail: true });
    }
  });
});
