/** The `ip -j` parsers on output captured from iproute2 6.1. */
import { describe, expect, it } from 'vitest';
import { parseDevice, parseRoutes, parseRules } from '../../../src/route/observe.js';

describe('ip -j parsers', () => {
  it('reads rules: priority, not, fwmark, to, table, action, suppress_prefixlength', () => {
    const json =
      '[{"priority":0,"src":"all","table":"local"},{"priority":9000,"src":"all","fwmark":"0x2022","table":"main"},' +
      '{"priority":9001,"src":"all","fwmark":"0x2022","action":"unreachable"},' +
      '{"priority":9003,"src":"all","dst":"10.0.0.0","dstlen":8,"table":"main"},' +
      '{"priority":9004,"src":"all","table":"main","suppress_prefixlen":0},' +
      '{"priority":9005,"not":null,"src":"all","fwmark":"0x2022","table":"2022"},' +
      '{"priority":100,"src":"all","iif":"eth0","table":"7"},' +
      '{"priority":101,"src":"10.1.0.0","srclen":16,"table":"8"}]';
    expect(parseRules(json, 4)).toEqual([
      { family: 4, priority: 0, table: 'local' },
      { family: 4, priority: 9000, fwmark: '0x2022', table: 'main' },
      { family: 4, priority: 9001, fwmark: '0x2022', action: 'unreachable' },
      { family: 4, priority: 9003, dst: '10.0.0.0/8', table: 'main' },
      { family: 4, priority: 9004, table: 'main', suppressPrefixLength: 0 },
      { family: 4, priority: 9005, not: true, fwmark: '0x2022', table: '2022' },
      { family: 4, priority: 100, table: '7', other: true },
      { family: 4, priority: 101, src: '10.1.0.0/16', table: '8' },
    ]);
  });

  it('reads routes with dev, gateway, protocol and scope', () => {
    const json =
      '[{"dst":"default","gateway":"198.18.100.1","dev":"vx1","flags":[]},' +
      '{"dst":"198.18.100.0/24","dev":"vx1","protocol":"kernel","scope":"link","prefsrc":"198.18.100.2","flags":[]}]';
    expect(parseRoutes(json, 4)).toEqual([
      { family: 4, dst: 'default', gateway: '198.18.100.1', dev: 'vx1' },
      { family: 4, dst: '198.18.100.0/24', dev: 'vx1', protocol: 'kernel', scope: 'link' },
    ]);
    expect(parseRoutes('', 6)).toEqual([]);
  });

  it('reads a device: UP and its non-link-local addresses', () => {
    const json =
      '[{"ifindex":2,"ifname":"vx1","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"addr_info":[' +
      '{"family":"inet","local":"198.18.100.2","prefixlen":24,"scope":"global"},' +
      '{"family":"inet6","local":"fd00:100::2","prefixlen":64,"scope":"global"},' +
      '{"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]}]';
    const d = parseDevice(json);
    expect(d.up).toBe(true);
    expect(d.addresses.map((a) => `${a.address}/${a.prefixLength}`)).toEqual([
      '198.18.100.2/24',
      'fd00:100::2/64',
    ]);
    expect(parseDevice('[{"ifname":"t","flags":["POINTOPOINT","NOARP"],"addr_info":[]}]')).toEqual({
      up: false,
      addresses: [],
    });
  });
});
