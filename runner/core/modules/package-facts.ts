/**
 * package_facts: the installed packages as Ansible's `ansible_facts.packages` (name -> list of versions),
 * read from dpkg's database in one round trip (manager auto/apt/dpkg: cairn manages Debian hosts).
 * Reference: ansible/modules/package_facts.py (its apt backend reports name, version, arch, source).
 */
import { failureText, parseSections, runScript, section } from './remote.js';
import type { Module, Planned } from './types.js';

export interface PackageFact {
  name: string;
  version: string;
  arch: string;
  source: 'apt';
}

export interface PackageFactsArgs {
  manager?: string | string[];
  strategy?: 'first' | 'all';
}

export function packageFactsScript(): string {
  return section(
    'dpkg',
    "dpkg-query -W -f '${binary:Package}\\t${Version}\\t${Architecture}\\t${db:Status-Abbrev}\\n' 2>/dev/null",
  );
}

/** dpkg-query's lines: installed packages only ("ii"), validated field by field (pure). */
export function parsePackageFacts(text: string): Record<string, PackageFact[]> {
  const packages: Record<string, PackageFact[]> = {};
  for (const line of text.split('\n')) {
    const [fullName, version, arch, status, ...rest] = line.split('\t');
    if (rest.length || !fullName || !version || !arch || status?.trim() !== 'ii') continue;
    const name = fullName.replace(/:[a-z0-9-]+$/, '');
    if (!/^[a-z0-9][a-z0-9+.-]*$/.test(name) || !/^[A-Za-z0-9.+~:-]+$/.test(version)) continue;
    (packages[name] ??= []).push({ name, version, arch, source: 'apt' });
  }
  return packages;
}

export const packageFactsModule: Module<PackageFactsArgs> = {
  name: 'package_facts',
  readOnly: true,
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      manager: {
        anyOf: [{ enum: ['auto', 'apt', 'dpkg'] }, { type: 'array', items: { enum: ['auto', 'apt', 'dpkg'] } }],
      },
      strategy: { enum: ['first', 'all'] },
    },
  },

  async check(ctx): Promise<Planned> {
    const res = await runScript(ctx, packageFactsScript());
    if (res.code !== 0)
      return { changed: false, actions: [], failed: `reading dpkg's database failed: ${failureText(res)}` };
    const packages = parsePackageFacts(parseSections(res.stdout).get('dpkg') ?? '');
    if (Object.keys(packages).length === 0)
      return {
        changed: false,
        actions: [],
        failed: 'Could not detect a supported package manager (dpkg lists nothing)',
      };
    return { changed: false, actions: [], data: { ansible_facts: { packages } } };
  },

  apply(_ctx, _args, plan) {
    return Promise.resolve({ changed: false, data: plan.data ?? {} });
  },
};
