import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TunError } from '../../../src/tun/errors.js';
import { openTun } from '../../../src/tun/linux-tun.js';
import { checkIfName, ifNameProblem, parseDeviceSpec } from '../../../src/tun/spec.js';

function specErrorOf(spec: string): TunError {
  try {
    parseDeviceSpec(spec);
  } catch (err) {
    expect(err).toBeInstanceOf(TunError);
    return err as TunError;
  }
  throw new Error(`parseDeviceSpec(${JSON.stringify(spec)}) did not throw`);
}

describe('parseDeviceSpec', () => {
  it('takes a bare name, tun:// and fd://', () => {
    expect(parseDeviceSpec('tun0')).toEqual({ name: 'tun0' });
    expect(parseDeviceSpec('tun://utun7')).toEqual({ name: 'utun7' });
    expect(parseDeviceSpec('TUN://t2s')).toEqual({ name: 't2s' });
    expect(parseDeviceSpec('fd://3')).toEqual({ fd: 3 });
    expect(parseDeviceSpec('  fd://42 ')).toEqual({ fd: 42 });
    expect(parseDeviceSpec('a'.repeat(15))).toEqual({ name: 'a'.repeat(15) });
  });

  it('rejects empty specs', () => {
    for (const spec of ['', '   ', 'tun://']) {
      const err = specErrorOf(spec);
      expect(err.code).toBe('TUN_SPEC');
      expect(err.message).toMatch(/empty/);
    }
  });

  it('rejects names longer than 15 bytes, counting UTF-8 bytes', () => {
    expect(specErrorOf('a'.repeat(16)).message).toMatch(/16 bytes long: Linux allows at most 15/);
    expect(specErrorOf('tun://ééééééé1x').message).toMatch(/16 bytes long/);
  });

  it('rejects bad schemes and bad fds with a clear line', () => {
    expect(specErrorOf('tap://tap0').message).toMatch(/unknown scheme "tap:\/\/"/);
    expect(specErrorOf('fd://').message).toMatch(/not a file descriptor number/);
    expect(specErrorOf('fd://-1').message).toMatch(/not a file descriptor number/);
    expect(specErrorOf('fd://3x').message).toMatch(/not a file descriptor number/);
    expect(specErrorOf('fd://1').message).toMatch(/stdin, stdout or stderr/);
    expect(specErrorOf('fd://99999999999').message).toMatch(/not a file descriptor number|out of range/);
    expect(specErrorOf('fd://4294967295').message).toMatch(/out of range/);
    expect(specErrorOf('tun:/tun0').code).toBe('TUN_SPEC');
    for (const spec of ['tun://a/b', 'tun://a b', 'tun://..', 'x:y'])
      expect(specErrorOf(spec).code).toBe('TUN_SPEC');
  });

  it('every error message is one line naming the spec and the accepted forms', () => {
    for (const spec of ['', 'tap://x', 'fd://x', 'a'.repeat(20), 'tun://a/b']) {
      const { message } = specErrorOf(spec);
      expect(message).not.toContain('\n');
      expect(message).toContain('expected tun0, tun://tun0 or fd://3');
    }
  });

  it('never throws anything but a TunError, and accepts only valid results', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (spec) => {
        try {
          const r = parseDeviceSpec(spec);
          if ('fd' in r) expect(Number.isInteger(r.fd) && r.fd > 2).toBe(true);
          else expect(ifNameProblem(r.name)).toBeUndefined();
        } catch (err) {
          expect(err).toBeInstanceOf(TunError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('interface names', () => {
  it('follows the kernel dev_valid_name() rules', () => {
    expect(ifNameProblem('tun0')).toBeUndefined();
    expect(ifNameProblem('t2s-123-4-x.y_z')).toBeUndefined();
    expect(ifNameProblem('')).toMatch(/empty/);
    expect(ifNameProblem('.')).toMatch(/reserved/);
    expect(ifNameProblem('..')).toMatch(/reserved/);
    expect(ifNameProblem('a:b')).toMatch(/rejects/);
    expect(ifNameProblem('a\tb')).toMatch(/rejects/);
  });

  it('throws TUN_BAD_NAME from checkIfName', () => {
    expect(() => checkIfName('x'.repeat(16))).toThrow(TunError);
    try {
      checkIfName('x'.repeat(16));
    } catch (err) {
      expect((err as TunError).code).toBe('TUN_BAD_NAME');
    }
  });

  it('openTun rejects a too-long name before touching /dev/net/tun', () => {
    let caught: unknown;
    try {
      openTun({ name: 'abcdefghijklmnop' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(TunError);
    expect((caught as TunError).code).toBe('TUN_BAD_NAME');
    expect((caught as TunError).message).toBe(
      'interface name "abcdefghijklmnop" is 16 bytes long: Linux allows at most 15',
    );
  });

  it('openTun rejects a name and an fd together, and a bad MTU, before any syscall', () => {
    expect(() => openTun({ name: 'tun0', fd: 3 })).toThrow(/not both/);
    expect(() => openTun({ name: 'tun0', mtu: 20 })).toThrow(
      /MTU 20 is out of range: a TUN allows 68..65535/,
    );
    expect(() => openTun({ batch: 0 })).toThrow(RangeError);
  });
});
