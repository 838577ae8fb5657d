/**
 * The auto-route plan as data: for a machine with a default route through eth0 (LAN
 * 198.18.100.0/24 and fd00:100::/64), the exact `ip` argv of every step and its undo, the order
 * (the catch-all rule last, undo in reverse), stale rules of ours recognised and deleted, other
 * users' rules and tables refused, and no default route refused.
 */
import { describe, expect, it } from 'vitest';
import { parseCidr } from '../../../src/route/cidr.js';
import {
  isOwnRule,
  type ObservedRule,
  type ObservedState,
  planRoutes,
  type RouteConfig,
  RouteError,
  ruleDeleteArgv,
} from '../../../src/route/plan.js';

const CONFIG: RouteConfig = {
  device: 'tun9',
  addresses: [parseCidr('198.18.0.1/30'), parseCidr('fdfe:dcba:9876::1/126')],
  table: 2022,
  rulePriority: 9000,
  fwmark: 0x2022,
  include: [],
  exclude: [],
};

const BASE_RULES: ObservedRule[] = [
  { family: 4, priority: 0, table: 'local' },
  { family: 4, priority: 32766, table: 'main' },
  { family: 4, priority: 32767, table: 'default' },
  { family: 6, priority: 0, table: 'local' },
  { family: 6, priority: 32766, table: 'main' },
];

const MACHINE: ObservedState = {
  mainRoutes: [
    { family: 4, dst: 'default', gateway: '198.18.100.1', dev: 'eth0' },
    { family: 4, dst: '198.18.100.0/24', dev: 'eth0', protocol: 'kernel', scope: 'link' },
    { family: 4, dst: '172.17.0.0/16', dev: 'docker0', protocol: 'kernel', scope: 'link' },
    { family: 6, dst: 'fd00:100::/64', dev: 'eth0', protocol: 'kernel' },
    { family: 6, dst: 'fe80::/64', dev: 'eth0', protocol: 'kernel' },
    { family: 6, dst: 'default', gateway: 'fd00:100::1', dev: 'eth0' },
  ],
  rules: BASE_RULES,
  tableRoutes: [],
  device: { up: false, addresses: [] },
};

const argv = (s: string) => s.split(' ');

describe('planRoutes', () => {
  it('plans addresses, link up, one table route per family, then the rules with the catch-all last', () => {
    const plan = planRoutes(CONFIG, MACHINE);
    expect(plan.cleanup).toEqual([]);
    expect(plan.families).toEqual([4, 6]);
    expect(plan.lan.map((c) => `${c.network}/${c.prefixLength}`)).toEqual([
      '198.18.100.0/24',
      'fd00:100::/64',
    ]);
    expect(plan.steps.map((s) => s.argv.join(' '))).toEqual([
      '-4 addr add 198.18.0.1/30 dev tun9',
      '-6 addr add fdfe:dcba:9876::1/126 dev tun9 nodad',
      'link set dev tun9 up',
      '-4 route add default dev tun9 table 2022',
      '-6 route add default dev tun9 table 2022',
      '-4 rule add pref 9000 fwmark 0x2022 lookup main',
      '-4 rule add pref 9001 fwmark 0x2022 unreachable',
      '-4 rule add pref 9003 to 127.0.0.0/8 lookup main',
      '-4 rule add pref 9003 to 169.254.0.0/16 lookup main',
      '-4 rule add pref 9003 to 224.0.0.0/4 lookup main',
      '-4 rule add pref 9003 to 255.255.255.255/32 lookup main',
      '-4 rule add pref 9003 to 198.18.100.0/24 lookup main',
      '-4 rule add pref 9004 lookup main suppress_prefixlength 0',
      '-4 rule add pref 9005 not fwmark 0x2022 lookup 2022',
      '-6 rule add pref 9000 fwmark 0x2022 lookup main',
      '-6 rule add pref 9001 fwmark 0x2022 unreachable',
      '-6 rule add pref 9003 to ::1/128 lookup main',
      '-6 rule add pref 9003 to fe80::/10 lookup main',
      '-6 rule add pref 9003 to ff00::/8 lookup main',
      '-6 rule add pref 9003 to fd00:100::/64 lookup main',
      '-6 rule add pref 9004 lookup main suppress_prefixlength 0',
      '-6 rule add pref 9005 not fwmark 0x2022 lookup 2022',
    ]);
  });

  it('gives every step the exact inverse as undo', () => {
    const plan = planRoutes(CONFIG, MACHINE);
    for (const step of plan.steps) {
      const undo = step.undo!.join(' ');
      const expected = step.argv
        .join(' ')
        .replace(' add ', ' del ')
        .replace(' nodad', '')
        .replace('link set dev tun9 up', 'link set dev tun9 down');
      expect(undo).toBe(expected);
    }
  });

  it('puts --include before the excludes (it wins over the LAN) and adds --exclude after the defaults', () => {
    const plan = planRoutes(
      { ...CONFIG, include: [parseCidr('198.18.100.0/24')], exclude: [parseCidr('10.0.0.0/8')] },
      MACHINE,
    );
    const v4 = plan.steps.map((s) => s.argv.join(' ')).filter((s) => s.startsWith('-4 rule'));
    expect(v4).toContain('-4 rule add pref 9002 to 198.18.100.0/24 lookup 2022');
    expect(v4).toContain('-4 rule add pref 9003 to 10.0.0.0/8 lookup main');
    // An excluded prefix equal to an include is left out rather than shadowed.
    expect(v4).not.toContain('-4 rule add pref 9003 to 198.18.100.0/24 lookup main');
    expect(v4.at(-1)).toBe('-4 rule add pref 9005 not fwmark 0x2022 lookup 2022');
  });

  it('keeps an address the device already has and a device already up (nothing to undo for them)', () => {
    const plan = planRoutes(CONFIG, {
      ...MACHINE,
      device: { up: true, addresses: [parseCidr('198.18.0.1/30')] },
    });
    const text = plan.steps.map((s) => s.argv.join(' '));
    expect(text).not.toContain('-4 addr add 198.18.0.1/30 dev tun9');
    expect(text).not.toContain('link set dev tun9 up');
    expect(text).toContain('-6 addr add fdfe:dcba:9876::1/126 dev tun9 nodad');
  });

  it('routes only the families the TUN has an address of', () => {
    const plan = planRoutes({ ...CONFIG, addresses: [parseCidr('198.18.0.1/30')] }, MACHINE);
    expect(plan.families).toEqual([4]);
    expect(plan.steps.some((s) => s.argv[0] === '-6')).toBe(false);
  });

  it('refuses with no default route, and warns for a family without one', () => {
    const noDefault = { ...MACHINE, mainRoutes: MACHINE.mainRoutes.filter((r) => r.dst !== 'default') };
    expect(() => planRoutes(CONFIG, noDefault)).toThrow(/no default route to bypass through/);
    const v4only = {
      ...MACHINE,
      mainRoutes: MACHINE.mainRoutes.filter((r) => !(r.family === 6 && r.dst === 'default')),
    };
    const plan = planRoutes(CONFIG, v4only);
    expect(plan.warnings).toEqual([expect.stringMatching(/no IPv6 default route/)]);
    expect(plan.families).toEqual([4, 6]);
  });

  it('deletes its own stale rules and routes (after kill -9) before setting up', () => {
    const stale = planRoutes(CONFIG, MACHINE).steps.filter((s) => s.argv.includes('rule'));
    const rules: ObservedRule[] = [
      ...BASE_RULES,
      { family: 4, priority: 9000, fwmark: '0x2022', table: 'main' },
      { family: 4, priority: 9001, fwmark: '0x2022', action: 'unreachable' },
      { family: 4, priority: 9003, dst: '127.0.0.0/8', table: 'main' },
      { family: 4, priority: 9004, table: 'main', suppressPrefixLength: 0 },
      { family: 6, priority: 9005, not: true, fwmark: '0x2022', table: '2022' },
    ];
    expect(stale.length).toBeGreaterThan(5);
    const plan = planRoutes(CONFIG, {
      ...MACHINE,
      rules,
      tableRoutes: [{ family: 4, dst: 'default', dev: 'tun9' }],
    });
    expect(plan.cleanup.map((s) => s.argv.join(' '))).toEqual([
      '-4 rule del pref 9000 fwmark 0x2022 lookup main',
      '-4 rule del pref 9001 fwmark 0x2022 unreachable',
      '-4 rule del pref 9003 to 127.0.0.0/8 lookup main',
      '-4 rule del pref 9004 lookup main suppress_prefixlength 0',
      '-6 rule del pref 9005 not fwmark 0x2022 lookup 2022',
      '-4 route del default dev tun9 table 2022',
    ]);
  });

  it("refuses a priority in use by someone else's rule", () => {
    const rules: ObservedRule[] = [...BASE_RULES, { family: 4, priority: 9004, table: '100' }];
    expect(() => planRoutes(CONFIG, { ...MACHINE, rules })).toThrow(RouteError);
    expect(() => planRoutes(CONFIG, { ...MACHINE, rules })).toThrow(
      /rule priority 9004 is already used by "lookup 100".*--rule-priority/,
    );
    // Our shape at the wrong priority, or with another mark, is not ours either.
    const wrongMark: ObservedRule[] = [
      ...BASE_RULES,
      { family: 6, priority: 9000, fwmark: '0x1', table: 'main' },
    ];
    expect(() => planRoutes(CONFIG, { ...MACHINE, rules: wrongMark })).toThrow(/priority 9000/);
  });

  it('refuses a table that holds other routes or is looked up by another rule', () => {
    expect(() =>
      planRoutes(CONFIG, { ...MACHINE, tableRoutes: [{ family: 4, dst: '10.0.0.0/8', dev: 'wg0' }] }),
    ).toThrow(/table 2022 already holds 10\.0\.0\.0\/8 dev wg0.*--table/);
    const rules: ObservedRule[] = [...BASE_RULES, { family: 4, priority: 100, table: '2022' }];
    expect(() => planRoutes(CONFIG, { ...MACHINE, rules })).toThrow(/table 2022 is already used by rule 100/);
  });
});

describe('isOwnRule / ruleDeleteArgv', () => {
  it('recognises each of the six rule shapes at its own priority only', () => {
    const own: ObservedRule[] = [
      { family: 4, priority: 9000, fwmark: '0x2022', table: 'main' },
      { family: 4, priority: 9001, fwmark: '0x2022', action: 'unreachable' },
      { family: 4, priority: 9002, dst: '10.0.0.0/8', table: '2022' },
      { family: 4, priority: 9003, dst: '10.0.0.0/8', table: 'main' },
      { family: 4, priority: 9004, table: 'main', suppressPrefixLength: 0 },
      { family: 4, priority: 9005, not: true, fwmark: '0x2022', table: '2022' },
    ];
    for (const r of own) expect(isOwnRule(CONFIG, r), JSON.stringify(r)).toBe(true);
    for (const r of own)
      expect(isOwnRule(CONFIG, { ...r, priority: r.priority === 9005 ? 9000 : r.priority + 1 })).toBe(false);
    expect(isOwnRule(CONFIG, { ...own[0]!, other: true })).toBe(false);
    expect(isOwnRule(CONFIG, { ...own[0]!, src: '10.0.0.0/8' })).toBe(false);
  });

  it('deletes exactly the rule it was given', () => {
    expect(ruleDeleteArgv({ family: 6, priority: 9005, not: true, fwmark: '0x2022', table: '2022' })).toEqual(
      argv('-6 rule del pref 9005 not fwmark 0x2022 lookup 2022'),
    );
  });
});
