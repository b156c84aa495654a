/**
 * Keeps secret values (vault variables, `no_log` task data) out of everything cairn prints or stores.
 * A secret is caught not only verbatim but also in the forms it takes after being embedded somewhere:
 * JSON string escaping (module output, the JSON reporter), POSIX shell quoting (a command line echoed back
 * in an error), and URL encoding (a password inside a connection string).
 */
import { quote } from '../../core/transport/quote.js';

export const MASK = '********';

/** Lines of a multi-line secret at least this long are masked on their own too (half a PEM key is a leak). */
const MIN_SECRET_LINE_LENGTH = 8;

export class SecretMasker {
  /** Every form of every secret, deduplicated. */
  private readonly forms = new Set<string>();
  /** Built lazily from `forms`, longest first so a longer secret wins over a secret it contains. */
  private pattern: RegExp | undefined;

  /** Register a secret. Empty strings are ignored; anything else is masked however short it is. */
  add(secret: string): void {
    if (secret === '') return;
    const before = this.forms.size;
    for (const form of secretForms(secret)) this.forms.add(form);
    if (secret.includes('\n')) {
      for (const line of secret.split(/\r?\n/)) {
        const trimmed = line.trim();
        if (trimmed.length >= MIN_SECRET_LINE_LENGTH) for (const form of secretForms(trimmed)) this.forms.add(form);
      }
    }
    if (this.forms.size !== before) this.pattern = undefined;
  }

  /** How many distinct forms are masked (for tests and diagnostics; never the values). */
  get size(): number {
    return this.forms.size;
  }

  /** The text with every occurrence of every secret form replaced by `********`. */
  mask(text: string): string {
    const pattern = this.compiled();
    if (pattern === undefined || text === '') return text;
    return text.replace(pattern, MASK);
  }

  /** Whether the text contains any secret, in any of its forms. */
  hasSecret(text: string): boolean {
    const pattern = this.compiled();
    if (pattern === undefined || text === '') return false;
    pattern.lastIndex = 0;
    const found = pattern.test(text);
    pattern.lastIndex = 0;
    return found;
  }

  /**
   * A deep copy of the value with every string masked, object keys included. Numbers and booleans whose
   * text contains a secret become the masked string (a numeric PIN is still a secret). Cycles become
   * "[Circular]" so the result is always JSON-serialisable.
   */
  maskValue(value: unknown): unknown {
    return this.maskDeep(value, new WeakSet<object>());
  }

  private maskDeep(value: unknown, ancestors: WeakSet<object>): unknown {
    if (typeof value === 'string') return this.mask(value);
    if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
      const text = String(value);
      return this.hasSecret(text) ? this.mask(text) : typeof value === 'bigint' ? text : value;
    }
    if (value === null || value === undefined || typeof value !== 'object') return value;
    if (value instanceof Date) return this.mask(Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString());
    if (value instanceof Error) return { name: this.mask(value.name), message: this.mask(value.message) };
    if (Buffer.isBuffer(value)) return this.mask(value.toString('utf8'));
    if (ancestors.has(value)) return '[Circular]';
    ancestors.add(value);
    try {
      if (Array.isArray(value)) return value.map((element) => this.maskDeep(element, ancestors));
      const copy: Record<string, unknown> = {};
      for (const [key, element] of Object.entries(value)) copy[this.mask(key)] = this.maskDeep(element, ancestors);
      return copy;
    } finally {
      ancestors.delete(value);
    }
  }

  private compiled(): RegExp | undefined {
    if (this.forms.size === 0) return undefined;
    if (this.pattern === undefined) {
      const ordered = [...this.forms].sort((a, b) => b.length - a.length || (a < b ? -1 : 1));
      this.pattern = new RegExp(ordered.map(escapeRegExp).join('|'), 'g');
    }
    return this.pattern;
  }
}

/** The secret itself and the escaped forms it takes inside JSON, shell command lines and URLs. */
export function secretForms(secret: string): string[] {
  const forms = new Set<string>([secret]);
  const jsonInner = JSON.stringify(secret).slice(1, -1);
  forms.add(jsonInner);
  // Python's json.dumps (Ansible-style module output) escapes every non-ASCII character as \uXXXX.
  forms.add(jsonInner.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
  // A JSON document embedded as a string in another JSON document (a registered stdout that is JSON).
  forms.add(JSON.stringify(jsonInner).slice(1, -1));
  forms.add(quote(secret));
  // Inside single quotes: what stands between the quotes of quote(secret).
  forms.add(secret.replace(/'/g, `'\\''`));
  // Inside double quotes: \, $, ` and " are backslash-escaped.
  forms.add(secret.replace(/([\\$`"])/g, '\\$1'));
  forms.add(encodeURIComponent(secret));
  forms.delete('');
  return [...forms];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
