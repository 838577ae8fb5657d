/** The command line and config file: defaults, every flag, one-line errors, no credential echoes. */
import { describe, expect, it } from 'vitest';
import { CLI_DEFAULTS, parseCliArgs, parseDuration, parseSize, UsageError } from '../../../src/cli-args.js';

const files = (map: Record<string, string>) => (path: string) => {
  const text = map[path];
  if (text === undefined) throw Object.assign(new Error('nope'), { code: 'ENOENT' });
  return text;
};

describe('parseCliArgs', () => {
  it('defaults: direct proxy, 60 s UDP timeout, 5 s dial timeout', () => {
    const o = parseCliArgs(['--device', 'tun0']);
    expect(o.proxy.kind).toBe('direct');
    expect(o.udpTimeoutMs).toBe(60_000);
    expect(o.dialTimeoutMs).toBe(5000);
    expect(o.tcpIdleTimeoutMs).toBe(CLI_DEFAULTS.tcpIdleTimeoutMs);
    expect(o.loglevel).toBe('info');
    expect(o.dnsOverTcp).toBe('auto');
    expect(o.tcpAccept).toBe('auto');
    expect(o.busyPoll).toBe('auto');
    expect(o.socks5Spares).toBe(1);
    expect(o.tcpSndbuf).toBeUndefined();
  });

  it('reads every flag', () => {
    const o = parseCliArgs([
      '--device=tun://tun7',
      '--proxy',
      'socks5://u:p@198.18.1.1:1080',
      '--mtu',
      '9000',
      '--udp-timeout',
      '30s',
      '--tcp-idle-timeout',
      '2m',
      '--dial-timeout',
      '1500ms',
      '--tcp-accept',
      'after-dial',
      '--tcp-sndbuf',
      '1m',
      '--tcp-rcvbuf',
      '512k',
      '--dns-over-tcp',
      'always',
      '--loglevel',
      'debug',
      '--icmp-echo',
      'off',
      '--stats-interval',
      '10',
      '--busy-poll',
      '250us',
      '--socks5-spares',
      '0',
    ]);
    expect(o.socks5Spares).toBe(0);
    expect(o.busyPoll).toBe(0.25);
    expect(parseCliArgs(['--device', 'tun0', '--busy-poll', 'off']).busyPoll).toBe(0);
    expect(parseCliArgs(['--device', 'tun0', '--busy-poll', 'auto']).busyPoll).toBe('auto');
    expect(o.device).toBe('tun://tun7');
    expect(o.proxy).toMatchObject({ kind: 'socks5', host: '198.18.1.1', port: 1080 });
    expect([o.mtu, o.udpTimeoutMs, o.tcpIdleTimeoutMs, o.dialTimeoutMs]).toEqual([
      9000, 30_000, 120_000, 1500,
    ]);
    expect([o.tcpSndbuf, o.tcpRcvbuf]).toEqual([1 << 20, 512 << 10]);
    expect(o.tcpAccept).toBe('after-dial');
    expect([o.dnsOverTcp, o.loglevel, o.icmpEcho, o.statsIntervalMs]).toEqual([
      'always',
      'debug',
      false,
      10_000,
    ]);
  });

  it('takes options from a YAML config, flags winning', () => {
    const read = files({
      'a.yaml':
        'device: tun9\nproxy: socks5://198.18.1.1:1080\nudp-timeout: 90\nloglevel: warn\nicmp_echo: false\n',
    });
    const o = parseCliArgs(['--config', 'a.yaml', '--loglevel', 'error'], read);
    expect(o.device).toBe('tun9');
    expect(o.proxy.kind).toBe('socks5');
    expect(o.udpTimeoutMs).toBe(90_000);
    expect(o.loglevel).toBe('error');
    expect(o.icmpEcho).toBe(false);
  });

  it.each([
    [['--device', 'tun0', '--bogus'], /Unknown option '--bogus'/],
    [[], /--device is required/],
    [['--device', 'tun0', '--proxy', 'ftp://x'], /^--proxy: /],
    [['--device', 'tun0', '--udp-timeout', 'soon'], /--udp-timeout must be a duration/],
    [['--device', 'tun0', '--udp-timeout', '0'], /at least 1ms/],
    [['--device', 'tun0', '--tcp-sndbuf', '12'], /--tcp-sndbuf must be from 4096/],
    [['--device', 'tun0', '--mtu', 'big'], /--mtu must be a whole number/],
    [['--device', 'tun0', '--loglevel', 'loud'], /--loglevel must be one of/],
    [['--device', 'tun0', '--busy-poll', '20ms'], /--busy-poll must be at most 10ms/],
    [['--device', 'tun0', '--busy-poll', 'always'], /--busy-poll must be auto, off or a duration like 200us/],
    [['--device', 'tun0', '--socks5-spares', '17'], /--socks5-spares must be from 0 to 16/],
    [['--device', 'tun0', '--dns-over-tcp', 'maybe'], /--dns-over-tcp must be one of auto, always, never/],
    [
      ['--device', 'tun0', '--tcp-accept', 'early'],
      /--tcp-accept must be one of auto, after-dial, before-dial/,
    ],
    [['--config', 'missing.yaml'], /--config missing.yaml: ENOENT/],
    [['--config', 'bad.yaml'], /not valid YAML/],
    [['--config', 'list.yaml'], /expected a mapping/],
    [['--config', 'unknown.yaml'], /unknown key "colour"/],
  ])('%j is a one-line usage error', (argv, message) => {
    const read = files({
      'bad.yaml': 'a: [1,\n',
      'list.yaml': '- 1\n',
      'unknown.yaml': 'device: tun0\ncolour: red\n',
    });
    let err: unknown;
    try {
      parseCliArgs(argv, read);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('\n');
  });

  it('never echoes a password from a bad proxy URL', () => {
    expect(() => parseCliArgs(['--device', 'tun0', '--proxy', 'socks5://user:s3cret@host:99999'])).toThrow(
      UsageError,
    );
    try {
      parseCliArgs(['--device', 'tun0', '--proxy', 'socks5://user:s3cret@host:99999']);
    } catch (e) {
      expect((e as Error).message).not.toContain('s3cret');
    }
  });

  it('--offload and --multi-queue', () => {
    const o = parseCliArgs(['--device', 'tun0', '--offload', 'off', '--multi-queue', '4']);
    expect([o.offload, o.multiQueue]).toEqual(['off', 4]);
    expect(parseCliArgs(['--device', 'tun0']).offload).toBe('auto');
    expect(parseCliArgs(['--device', 'tun0']).multiQueue).toBe(1);
    expect(() => parseCliArgs(['--device', 'tun0', '--offload', 'maybe'])).toThrow(
      /--offload must be one of auto, off/,
    );
    expect(() => parseCliArgs(['--device', 'tun0', '--multi-queue', '0'])).toThrow(
      /--multi-queue must be from 1 to 64/,
    );
    expect(() => parseCliArgs(['--device', 'fd://3', '--multi-queue', '2'])).toThrow(/needs a device name/);
    expect(() => parseCliArgs(['--device', 'tun0', '--multi-queue', '2', '--pcap', 'x'])).toThrow(
      /--pcap cannot/,
    );
  });

  it('--tun-io', () => {
    expect(parseCliArgs(['--device', 'tun0']).tunIo).toBe('auto');
    expect(parseCliArgs(['--device', 'tun0', '--tun-io', 'plain']).tunIo).toBe('plain');
    expect(parseCliArgs(['--device', 'tun0', '--tun-io', 'uring']).tunIo).toBe('uring');
    expect(() => parseCliArgs(['--device', 'tun0', '--tun-io', 'writev'])).toThrow(
      /--tun-io must be one of auto, uring, plain/,
    );
  });

  it('--help and --version need no device', () => {
    expect(parseCliArgs(['--help']).help).toBe(true);
    expect(parseCliArgs(['-v']).version).toBe(true);
  });
});

describe('durations and sizes', () => {
  it.each([
    ['500ms', 500],
    ['5s', 5000],
    ['5', 5000],
    ['1.5s', 1500],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['200us', 0.2],
  ])('%s = %d ms', (text, ms) => expect(parseDuration('x', text)).toBe(ms));
  it.each([
    ['4096', 4096],
    ['256k', 262_144],
    ['4m', 4 << 20],
    ['1MiB', 1 << 20],
  ])('%s = %d bytes', (text, n) => expect(parseSize('x', text, 1, 1 << 30)).toBe(n));
});
