/** Where --set-dns may write, decided from inodes (a fake file system), and what it writes. */
import { describe, expect, it } from 'vitest';
import { RouteError } from '../../../src/route/plan.js';
import { nameservers, type ResolvFs, renderResolvConf, resolvConfPath } from '../../../src/route/resolv.js';

function fakeFs(inodes: Record<string, number>, netns: string[] = []): ResolvFs {
  return {
    stat: (p) => (inodes[p] === undefined ? undefined : { dev: 1, ino: inodes[p]! }),
    list: (p) => (p === '/var/run/netns' ? netns : []),
  };
}

describe('resolvConfPath', () => {
  it('is /etc/resolv.conf in the root namespace (the one of pid 1)', () => {
    expect(resolvConfPath(fakeFs({ '/proc/self/ns/net': 7, '/proc/1/ns/net': 7 }))).toBe('/etc/resolv.conf');
  });

  it('is /etc/netns/NAME/resolv.conf in a named namespace when that file is bind-mounted', () => {
    const fs = fakeFs(
      {
        '/proc/self/ns/net': 9,
        '/proc/1/ns/net': 7,
        '/var/run/netns/other': 8,
        '/var/run/netns/mine': 9,
        '/etc/netns/mine/resolv.conf': 100,
        '/etc/resolv.conf': 100,
      },
      ['other', 'mine'],
    );
    expect(resolvConfPath(fs)).toBe('/etc/netns/mine/resolv.conf');
  });

  it('refuses a named namespace whose resolv.conf is not bind-mounted, and an unnamed one', () => {
    const notMounted = fakeFs(
      { '/proc/self/ns/net': 9, '/proc/1/ns/net': 7, '/var/run/netns/mine': 9, '/etc/resolv.conf': 50 },
      ['mine'],
    );
    expect(() => resolvConfPath(notMounted)).toThrow(RouteError);
    expect(() => resolvConfPath(notMounted)).toThrow(/create that file before starting/);
    const unnamed = fakeFs({ '/proc/self/ns/net': 9, '/proc/1/ns/net': 7, '/var/run/netns/x': 8 }, ['x']);
    expect(() => resolvConfPath(unnamed)).toThrow(/neither the root one nor a named one/);
    expect(() => resolvConfPath(fakeFs({}))).toThrow(/cannot read/);
  });
});

describe('resolv.conf text', () => {
  it('renders one nameserver per address under a comment', () => {
    expect(renderResolvConf(['198.18.0.2', 'fdfe:dcba:9876::2'])).toBe(
      '# Written by tun2socks --set-dns; the original is restored when it stops.\nnameserver 198.18.0.2\nnameserver fdfe:dcba:9876::2\n',
    );
  });

  it('reads nameservers in order, zones dropped, comments ignored', () => {
    expect(
      nameservers(
        '# x\nsearch lan\n nameserver 10.0.0.1 # primary\nnameserver fe80::1%eth0\n#nameserver 9.9.9.9\n',
      ),
    ).toEqual(['10.0.0.1', 'fe80::1']);
  });
});
