/**
 * The Debian mirror this machine already uses, read from apt's deb822 sources file, so the lab never
 * hard-codes a host: the image is bootstrapped from it and the package repository is resolved against it.
 */
import { readFileSync } from 'node:fs';
import { CairnError } from '../../core/util/errors.js';

export const DEBIAN_SOURCES_FILE = '/etc/apt/sources.list.d/debian.sources';

export interface SourceStanza {
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
  signedBy?: string;
}

/** Parse deb822 text: stanzas separated by blank lines, `Key: value` fields, `#` comment lines. */
export function parseDeb822Sources(text: string): SourceStanza[] {
  const stanzas: SourceStanza[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let lastKey: string | undefined;
    for (const line of block.split('\n')) {
      if (line.startsWith('#') || line.trim() === '') continue;
      const continuation = /^\s/.test(line);
      if (continuation && lastKey) {
        fields.set(lastKey, `${fields.get(lastKey)}\n${line.trim()}`);
        continue;
      }
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (!m) continue;
      lastKey = m[1]!.toLowerCase();
      fields.set(lastKey, m[2]!.trim());
    }
    if (fields.size === 0) continue;
    if ((fields.get('enabled') ?? 'yes').toLowerCase() === 'no') continue;
    const words = (key: string) => (fields.get(key) ?? '').split(/\s+/).filter(Boolean);
    const signedBy = fields.get('signed-by');
    stanzas.push({
      types: words('types'),
      uris: words('uris'),
      suites: words('suites'),
      components: words('components'),
      signedBy: signedBy && !signedBy.includes('\n') ? signedBy : undefined,
    });
  }
  return stanzas;
}

export interface Mirror {
  /** e.g. http://deb.debian.org/debian */
  uri: string;
  suite: string;
  /** Keyring debootstrap checks the Release file with, when the sources name one. */
  keyring?: string;
  /** The sources file's full text: the repository build resolves against all of it (updates, security). */
  sourcesText: string;
  sourcesFile: string;
}

/** The stanza that carries `suite` itself (not -updates or -security) for binary packages. */
export function pickMirror(stanzas: SourceStanza[], suite: string): SourceStanza | undefined {
  return stanzas.find((s) => s.types.includes('deb') && s.suites.includes(suite) && s.uris.length > 0);
}

export function readMirror(suite: string, file = DEBIAN_SOURCES_FILE): Mirror {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new CairnError(`cannot read ${file}: the lab takes its Debian mirror from apt's sources on this machine`, {
      kind: 'options',
    });
  }
  const stanza = pickMirror(parseDeb822Sources(text), suite);
  if (!stanza) {
    throw new CairnError(
      `${file} has no "Types: deb" entry for suite ${suite}: the lab needs a Debian ${suite} mirror to build its image`,
      { kind: 'options' },
    );
  }
  return { uri: stanza.uris[0]!, suite, keyring: stanza.signedBy, sourcesText: text, sourcesFile: file };
}
