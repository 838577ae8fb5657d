/** The issue-6 flags through parseCliArgs: defaults, repeatable values, the config file, usage errors. */
import { describe, expect, it } from 'vitest';
import { parseCliArgs, UsageError } from '../../../src/cli-args.js';
import { Logger } from '../../../src/log.js';
import { defaultDnsUpstream } from '../../../src/route/cli-route.js';
import { parseHostPort } from '../../../src/route/flags.js';

const parse = (...args: string[]) => parseCliArgs(['--device', 'tun0', ...args]);
const usage = (m: string) => new UsageError(m);

describe('issue-6 flags', () => {
  it('leave routing off and DNS direct by default, with no socket options', () => {
    const o = parse();
    expect(o.autoRoute).toBeUndefined();
    expect(o.upstreamSocket).toEqual({ fwmark: 0, bindInterface: undefined });
    expect(o.dns).toEqual({
      mode: 'direct',
      hijack: false,
      addresses: ['198.18.0.2', 'fdfe:dcba:9876::2'],
      fakeRanges: ['198.19.0.0/16', 'fdfe:dcba:9877::/64'],
      upstream: undefined,
    });
  });

  it('--auto-route: documented defaults, fake-IP DNS, the fake ranges always included, fwmark 0x2022', () => {
    const o = parse('--auto-route');
    expect(o.dns.mode).toBe('fake-ip');
    expect(o.upstreamSocket.fwmark).toBe(0x2022);
    const a = o.autoRoute!;
    expect(a.addresses.map((c) => `${c.address}/${c.prefixLength}`)).toEqual([
      '198.18.0.1/30',
      'fdfe:dcba:9876::1/126',
    ]);
    expect(a.table).toBe(2022);
    expect(a.rulePriority).toBe(9000);
    expect(a.include.map((c) => `${c.network}/${c.prefixLength}`)).toEqual([
      '198.19.0.0/16',
      'fdfe:dcba:9877::/64',
    ]);
    expect(a.setDns).toBe(false);
  });

  it('takes repeatable and hex values', () => {
    const o = parse(
      '--auto-route',
      '--address',
      '198.18.5.1/24',
      '--exclude',
      '10.0.0.0/8',
      '--exclude',
      'fd00::/8',
      '--include',
      '192.168.1.0/24',
      '--fwmark',
      '0x100',
      '--table',
      '300',
      '--rule-priority',
      '100',
      '--interface',
      'eth1',
      '--dns',
      'remote',
      '--dns-hijack',
      '--set-dns',
      '--dns-upstream',
      '[fd00::53]:5353',
      '--tun-post-up',
      'echo up',
    );
    expect(o.autoRoute!.addresses).toHaveLength(1);
    expect(o.autoRoute!.exclude.map((c) => c.network)).toEqual(['10.0.0.0', 'fd00::']);
    expect(o.autoRoute!.include.map((c) => c.network)).toEqual(['192.168.1.0']);
    expect(o.upstreamSocket).toEqual({ fwmark: 0x100, bindInterface: 'eth1' });
    expect(o.autoRoute).toMatchObject({ table: 300, rulePriority: 100, setDns: true, postUp: 'echo up' });
    expect(o.dns).toMatchObject({ mode: 'remote', hijack: true, upstream: { host: 'fd00::53', port: 5353 } });
  });

  it('reads lists and booleans from the config file', () => {
    const yaml =
      'device: tun1\nauto-route: true\nexclude: [10.0.0.0/8, 172.16.0.0/12]\nset_dns: true\ndns-address: 198.18.0.3\n';
    const o = parseCliArgs(['--config', 'x.yaml'], () => yaml);
    expect(o.autoRoute!.exclude.map((c) => c.network)).toEqual(['10.0.0.0', '172.16.0.0']);
    expect(o.autoRoute!.setDns).toBe(true);
    expect(o.dns.addresses).toEqual(['198.18.0.3']);
    expect(() => parseCliArgs(['--config', 'x.yaml'], () => 'device: t\nauto-route: yes please\n')).toThrow(
      /must be true or false/,
    );
  });

  it('refuses bad values and route flags without --auto-route, one line each', () => {
    const bad: [string[], RegExp][] = [
      [['--exclude', '10.0.0.0/8'], /--exclude needs --auto-route/],
      [['--set-dns'], /--set-dns needs --auto-route/],
      [['--auto-route', '--set-dns', '--dns', 'direct'], /--set-dns needs --dns fake-ip or --dns remote/],
      [['--auto-route', '--exclude', '10.0.0.0/33'], /--exclude: "10.0.0.0\/33"/],
      [['--auto-route', '--address', '198.18.0.0/24'], /--address needs a host address/],
      [['--auto-route', '--table', '0'], /--table must be a whole number from 1/],
      [
        ['--auto-route', '--rule-priority', '32765'],
        /--rule-priority must be a whole number from 1 to 32759/,
      ],
      [['--fwmark', 'zz'], /--fwmark must be a whole number/],
      [['--interface', 'a/b'], /--interface must be an interface name/],
      [['--dns', 'fake'], /--dns must be one of fake-ip, remote, direct/],
      [['--dns-address', 'name.test'], /--dns-address must be an IPv4 or IPv6 address/],
      [['--dns-upstream', 'host:99999'], /port must be 1 to 65535/],
      [['--fake-ip-range', '198.19.0.0/16', '--fake-ip-range', '10.0.0.0/8'], /at most one IPv4 range/],
    ];
    for (const [args, message] of bad) {
      expect(() => parse(...args), args.join(' ')).toThrow(UsageError);
      expect(() => parse(...args), args.join(' ')).toThrow(message);
    }
    expect(() => parseCliArgs(['--device', 'fd://3', '--auto-route'])).toThrow(
      /needs a device name, not fd:\/\//,
    );
  });

  it('parseHostPort: names, IPv4, bare and bracketed IPv6, port 53 by default', () => {
    expect(parseHostPort('x', 'dns.example', usage)).toEqual({ host: 'dns.example', port: 53 });
    expect(parseHostPort('x', '198.18.0.9:5353', usage)).toEqual({ host: '198.18.0.9', port: 5353 });
    expect(parseHostPort('x', 'fd00::1', usage)).toEqual({ host: 'fd00::1', port: 53 });
    expect(parseHostPort('x', '[fd00::1]', usage)).toEqual({ host: 'fd00::1', port: 53 });
    expect(() => parseHostPort('x', 'a:b:c', usage)).toThrow(UsageError);
  });
});

describe('defaultDnsUpstream', () => {
  const log = new Logger('silent');
  const opts = parse('--auto-route');

  it('takes the first nameserver the proxy can reach: no loopback stub, not our own DNS address', () => {
    const text =
      'nameserver 127.0.0.53\nnameserver 198.18.0.2\nnameserver ::1\nnameserver 10.0.0.1\nnameserver 10.0.0.2\n';
    expect(defaultDnsUpstream(opts, log, () => text)).toEqual({ host: '10.0.0.1', port: 53 });
  });

  it('is undefined without a usable nameserver or without a resolv.conf', () => {
    expect(defaultDnsUpstream(opts, log, () => 'nameserver 127.0.0.53\n')).toBeUndefined();
    expect(
      defaultDnsUpstream(opts, log, () => {
        throw new Error('ENOENT');
      }),
    ).toBeUndefined();
  });
});
