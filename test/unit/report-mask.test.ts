import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MASK, SecretMasker, secretForms } from '../../runner/app/report/mask.js';
import { quote } from '../../runner/core/transport/quote.js';

describe('SecretMasker', () => {
  it('masks every occurrence, and masks nothing before a secret is added', () => {
    const masker = new SecretMasker();
    expect(masker.mask('password hunter22 here')).toBe('password hunter22 here');
    masker.add('hunter22');
    expect(masker.mask('a hunter22 b hunter22')).toBe(`a ${MASK} b ${MASK}`);
    expect(masker.hasSecret('xx hunter22 yy')).toBe(true);
    expect(masker.hasSecret('hunter2')).toBe(false);
  });

  it('ignores the empty string but masks even one-character secrets', () => {
    const masker = new SecretMasker();
    masker.add('');
    expect(masker.size).toBe(0);
    expect(masker.mask('anything')).toBe('anything');
    masker.add('q');
    expect(masker.mask('quiq')).toBe(`${MASK}ui${MASK}`);
  });

  it('replaces the longest secret first when one contains another', () => {
    const masker = new SecretMasker();
    masker.add('abc');
    masker.add('abcdef');
    // If "abc" went first the "def" tail of the longer secret would be left showing.
    expect(masker.mask('x abcdef y abc z')).toBe(`x ${MASK} y ${MASK} z`);
  });

  it('catches the JSON-escaped form of a secret with quotes and backslashes', () => {
    const secret = 'pa"ss\\word';
    const masker = new SecretMasker();
    masker.add(secret);
    const json = JSON.stringify({ stdout: `token=${secret}` });
    expect(json).not.toContain(secret);
    expect(masker.mask(json)).toBe(JSON.stringify({ stdout: `token=${MASK}` }));
    // A JSON document that was itself embedded as a JSON string (registered stdout of a JSON API).
    const nested = JSON.stringify({ stdout: JSON.stringify({ password: secret }) });
    expect(masker.hasSecret(nested)).toBe(true);
    expect(masker.mask(nested)).not.toContain('ss\\\\');
  });

  it('catches the shell-quoted form of a secret with a single quote', () => {
    const secret = "it's-secret";
    const masker = new SecretMasker();
    masker.add(secret);
    const command = `echo ${quote(secret)} | chpasswd`;
    expect(command).not.toContain(secret);
    expect(masker.mask(command)).toBe(`echo ${MASK} | chpasswd`);
    expect(masker.mask(`sh -c "printf %s \\"it's-secret\\""`)).not.toContain("it's-secret");
    expect(masker.mask(`echo "a\\$b"`)).toBe(`echo "a\\$b"`);
  });

  it('catches Python-style ASCII-escaped JSON and URL-encoded forms', () => {
    const secret = 'mot de passe é/€';
    const masker = new SecretMasker();
    masker.add(secret);
    expect(masker.mask('{"pw": "mot de passe \\u00e9/\\u20ac"}')).toBe(`{"pw": "${MASK}"}`);
    expect(masker.mask(`postgres://u:${encodeURIComponent(secret)}@db/x`)).toBe(`postgres://u:${MASK}@db/x`);
  });

  it('masks each long line of a multi-line secret on its own', () => {
    const key = '-----BEGIN KEY-----\nMIIEowIBAAKCAQEAx1\nshort\n-----END KEY-----';
    const masker = new SecretMasker();
    masker.add(key);
    expect(masker.mask(`got: ${key}`)).toBe(`got: ${MASK}`);
    expect(masker.mask('half: MIIEowIBAAKCAQEAx1')).toBe(`half: ${MASK}`);
    // Lines shorter than 8 characters are too common to mask on their own.
    expect(masker.mask('short')).toBe('short');
  });

  it('maskValue masks deep, keys included, numbers holding a secret, and survives cycles', () => {
    const masker = new SecretMasker();
    masker.add('s3cr3t');
    masker.add('4242');
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    const value = {
      plain: 'nothing',
      list: ['a s3cr3t', { deeper: ['s3cr3t!'] }],
      s3cr3t: 'as a key',
      pin: 4242,
      port: 22,
      flag: true,
      when: new Date('2026-01-02T03:04:05.000Z'),
      err: new Error('failed with s3cr3t'),
      cyclic,
    };
    const masked = masker.maskValue(value) as Record<string, unknown>;
    const text = JSON.stringify(masked);
    expect(text).not.toContain('s3cr3t');
    expect(text).not.toContain('4242');
    expect(masked).toEqual({
      plain: 'nothing',
      list: [`a ${MASK}`, { deeper: [`${MASK}!`] }],
      [MASK]: 'as a key',
      pin: MASK,
      port: 22,
      flag: true,
      when: '2026-01-02T03:04:05.000Z',
      err: { name: 'Error', message: `failed with ${MASK}` },
      cyclic: { name: 'loop', self: '[Circular]' },
    });
    // The input is not modified.
    expect(value.list[0]).toBe('a s3cr3t');
  });

  it('every secret form lists the secret itself and the shell-quoted form', () => {
    const forms = secretForms("a'b");
    expect(forms).toContain("a'b");
    expect(forms).toContain(quote("a'b"));
    expect(forms).not.toContain('');
  });

  it('property: no masked text contains a registered secret (secrets of 4+ characters)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ minLength: 4, maxLength: 12 }).filter((s) => !s.includes('*')),
          { minLength: 1, maxLength: 4 },
        ),
        fc.array(fc.string({ maxLength: 10 }), { maxLength: 6 }),
        (secrets, fillers) => {
          const masker = new SecretMasker();
          for (const s of secrets) masker.add(s);
          let text = '';
          fillers.forEach((filler, i) => {
            text += filler + secrets[i % secrets.length]!;
          });
          text += JSON.stringify({ s: secrets[0] }) + quote(secrets[0]!);
          const masked = masker.mask(text);
          return !masker.hasSecret(masked);
        },
      ),
      { numRuns: 300 },
    );
  });
});
