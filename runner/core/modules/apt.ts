/**
 * apt: Debian packages present, absent or at the latest version. check probes dpkg-query (status and
 * version) and apt-cache policy (candidate) in one round trip; apply runs apt-get once, naming exactly the
 * packages the plan lists, non-interactively and keeping changed config files.
 */
import { argv } from '../transport/quote.js';
import { argError } from './attributes.js';
import { failureText, parseSections, runScript, section, splitLines, stripEnds } from './remote.js';
import type { Module, ModuleResult, Planned } from './types.js';

export interface AptArgs {
  name?: string | string[];
  pkg?: string | string[];
  state?: 'present' | 'absent' | 'latest';
  update_cache?: boolean;
  cache_valid_time?: number;
  install_recommends?: boolean;
  purge?: boolean;
  /**
   * Ansible's default_release: apt's target release (`-t`), which raises that release's pin to 990. The
   * probe asks apt-cache with the same APT::Default-Release, so the candidate check sees is the one
   * apt-get installs. Empty means unset, as in Ansible (`if p['default_release']`).
   */
  default_release?: string;
  /** Ansible's allow_downgrade: apt-get --allow-downgrades, so `name=version` below the installed one installs. */
  allow_downgrade?: boolean;
}

export interface PackageStatus {
  /** dpkg's "want ok status": installed means "install ok installed". */
  installed: boolean;
  /** Removed but config files kept ("deinstall ok config-files"). */
  configFiles: boolean;
  version?: string;
}

export interface PolicyEntry {
  installed?: string;
  candidate?: string;
}

export interface AptPlan {
  updateCache: boolean;
  install: string[];
  remove: string[];
  purge: boolean;
  installRecommends: boolean;
  defaultRelease?: string;
  allowDowngrade?: boolean;
  installed: string[];
  upgraded: string[];
  removed: string[];
}

/**
 * Arguments of Ansible's apt module that cairn does not implement yet. A task may carry them (roles do, often
 * on a branch a Debian host never takes), so they load; a task that runs with one fails with its name,
 * before anything changes, instead of installing without what it asked for.
 */
export const APT_NOT_IMPLEMENTED = [
  'deb',
  'policy_rc_d',
  'upgrade',
  'only_upgrade',
  'autoremove',
  'autoclean',
  'clean',
  'dpkg_options',
  'force',
  'allow_unauthenticated',
  'allow_change_held_packages',
  'fail_on_autoremove',
  'force_apt_get',
  'lock_timeout',
] as const;

const PACKAGE_SPEC = /^[a-z0-9][a-z0-9+.-]*(?::[a-z0-9-]+)?(?:=[A-Za-z0-9.+~:-]+)?$/;

/** `name` or `name=version`. */
export function splitPackageSpec(spec: string): { name: string; version?: string } {
  const eq = spec.indexOf('=');
  return eq === -1 ? { name: spec } : { name: spec.slice(0, eq), version: spec.slice(eq + 1) };
}

/** dpkg-query -W -f='${Package}\t${Status}\t${Version}\n' output. */
export function parseDpkgQuery(text: string): Map<string, PackageStatus> {
  const out = new Map<string, PackageStatus>();
  for (const line of text.split('\n')) {
    const [name, status, version] = line.split('\t');
    if (!name || status === undefined) continue;
    const entry: PackageStatus = {
      installed: / installed$/.test(status) && status.startsWith('install '),
      configFiles: / config-files$/.test(status),
    };
    if (version) entry.version = version;
    const previous = out.get(name);
    // Multi-arch packages print one line per architecture: installed for any counts.
    if (!previous || (!previous.installed && entry.installed)) out.set(name, entry);
  }
  return out;
}

/** `apt-cache policy a b` output (LC_ALL=C): Installed and Candidate per package. */
export function parseAptPolicy(text: string): Map<string, PolicyEntry> {
  const out = new Map<string, PolicyEntry>();
  let current: PolicyEntry | undefined;
  for (const line of text.split('\n')) {
    const head = /^(\S+):$/.exec(line);
    if (head) {
      current = {};
      out.set(head[1]!, current);
      continue;
    }
    const field = /^\s+(Installed|Candidate):\s+(\S+)/.exec(line);
    if (field && current) {
      const value = field[2] === '(none)' ? undefined : field[2];
      if (value !== undefined) {
        if (field[1] === 'Installed') current.installed = value;
        else current.candidate = value;
      }
    }
  }
  return out;
}

export function aptProbeScript(names: string[], withCacheAge: boolean, defaultRelease?: string): string {
  const release = defaultRelease ? ['-o', `APT::Default-Release=${defaultRelease}`] : [];
  const lines = [
    section('dpkg', `dpkg-query -W -f='\${Package}\\t\${Status}\\t\${Version}\\n' -- ${argv(...names)} 2>/dev/null`),
    section('policy', `LC_ALL=C ${argv('apt-cache', ...release, 'policy', '--', ...names)} 2>/dev/null`),
  ];
  if (withCacheAge) {
    lines.push(
      section(
        'cache',
        'stamp=$(stat -c %Y /var/lib/apt/periodic/update-success-stamp 2>/dev/null || stat -c %Y /var/lib/apt/lists 2>/dev/null || echo 0)',
        'echo "stamp=$stamp"',
        'echo "now=$(date +%s)"',
      ),
    );
  }
  lines.push(section('end'));
  return lines.join('\n');
}

/** The plan from the probed state (pure; table-tested). */
export function planApt(
  args: AptArgs,
  specs: string[],
  dpkg: Map<string, PackageStatus>,
  policy: Map<string, PolicyEntry>,
  cacheAgeSeconds: number | undefined,
): Planned<AptPlan> {
  const state = args.state ?? 'present';
  const plan: AptPlan = {
    updateCache: false,
    install: [],
    remove: [],
    purge: Boolean(args.purge),
    installRecommends: args.install_recommends ?? false,
    ...(args.default_release ? { defaultRelease: args.default_release } : {}),
    ...(args.allow_downgrade ? { allowDowngrade: true } : {}),
    installed: [],
    upgraded: [],
    removed: [],
  };
  const actions: string[] = [];
  const wantsUpdate = args.update_cache === true || args.cache_valid_time !== undefined;
  if (
    wantsUpdate &&
    (args.cache_valid_time === undefined || cacheAgeSeconds === undefined || cacheAgeSeconds > args.cache_valid_time)
  ) {
    plan.updateCache = true;
    actions.push('update the apt cache');
  }
  for (const spec of specs) {
    const { name, version } = splitPackageSpec(spec);
    const status = dpkg.get(name.replace(/:.*$/, '')) ?? dpkg.get(name);
    const candidate = policy.get(name)?.candidate;
    if (state === 'absent') {
      if (status?.installed || (plan.purge && status?.configFiles)) {
        plan.remove.push(name);
        plan.removed.push(name);
        actions.push(
          `${plan.purge ? 'purge' : 'remove'} ${name}${status.version && status.installed ? ` ${status.version}` : ''}`,
        );
      }
      continue;
    }
    const installed = status?.installed === true;
    if (!installed) {
      if (!candidate && !plan.updateCache && version === undefined) {
        return { changed: false, actions: [], failed: `No package matching '${name}' is available` };
      }
      plan.install.push(spec);
      plan.installed.push(name);
      actions.push(`install ${name}${version ? ` ${version}` : candidate ? ` ${candidate}` : ''}`);
    } else if (version !== undefined && status.version !== version) {
      plan.install.push(spec);
      plan.upgraded.push(name);
      actions.push(`change ${name} ${status.version} -> ${version}`);
    } else if (state === 'latest' && candidate !== undefined && status.version !== candidate) {
      plan.install.push(name);
      plan.upgraded.push(name);
      actions.push(`upgrade ${name} ${status.version} -> ${candidate}`);
    }
  }
  return {
    changed: actions.length > 0,
    actions,
    state: plan,
    data: {
      cache_updated: false,
      packages: { installed: plan.installed, upgraded: plan.upgraded, removed: plan.removed },
    },
  };
}

const APT_GET = [
  'apt-get',
  '-y',
  '-q',
  '-o',
  'Dpkg::Options::=--force-confdef',
  '-o',
  'Dpkg::Options::=--force-confold',
  '-o',
  'DPkg::Lock::Timeout=120',
];

/** The apply script for an AptPlan (pure; table-tested). */
export function aptApplyScript(plan: AptPlan): string {
  const lines = ['export DEBIAN_FRONTEND=noninteractive'];
  if (plan.updateCache) lines.push(`${argv('apt-get', '-q', 'update')} || exit 10`);
  if (plan.install.length > 0) {
    const recommends = plan.installRecommends ? '--install-recommends' : '--no-install-recommends';
    const release = plan.defaultRelease ? ['-t', plan.defaultRelease] : [];
    const downgrade = plan.allowDowngrade ? ['--allow-downgrades'] : [];
    lines.push(
      `${argv(...APT_GET, recommends, ...downgrade, ...release, 'install', '--', ...plan.install)} || exit 11`,
    );
  }
  if (plan.remove.length > 0)
    lines.push(`${argv(...APT_GET, ...(plan.purge ? ['--purge'] : []), 'remove', '--', ...plan.remove)} || exit 12`);
  return lines.join('\n');
}

function packageSpecs(args: AptArgs): string[] {
  const raw = args.name ?? args.pkg ?? [];
  const list = typeof raw === 'string' ? raw.split(',') : raw;
  return list.map((s) => s.trim()).filter((s) => s !== '');
}

export const aptModule: Module<AptArgs, AptPlan> = {
  name: 'apt',
  // Ansible's aliases (ansible.builtin.apt's documentation).
  argAliases: { package: 'name', pkg: 'name', 'update-cache': 'update_cache' },
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      name: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string', minLength: 1 } }] },
      pkg: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string', minLength: 1 } }] },
      state: { enum: ['present', 'absent', 'latest'] },
      update_cache: { type: 'boolean' },
      cache_valid_time: { type: 'integer', minimum: 0 },
      install_recommends: { type: 'boolean' },
      purge: { type: 'boolean' },
      default_release: { type: 'string', pattern: '^[A-Za-z0-9.+~_/-]*$' },
      allow_downgrade: { type: 'boolean' },
      ...Object.fromEntries(APT_NOT_IMPLEMENTED.map((k) => [k, {}])),
    },
  },

  async check(ctx, args): Promise<Planned<AptPlan>> {
    const given = APT_NOT_IMPLEMENTED.filter((k) => (args as Record<string, unknown>)[k] !== undefined);
    if (given.length)
      return {
        changed: false,
        actions: [],
        failed: `apt: ${given.join(', ')} ${given.length > 1 ? 'are' : 'is'} not implemented by cairn (see docs/ansible-compat.md); nothing was changed`,
      };
    const specs = packageSpecs(args);
    for (const spec of specs)
      if (!PACKAGE_SPEC.test(spec))
        throw argError(ctx, `apt: ${JSON.stringify(spec)} is not a Debian package name (name or name=version)`);
    if (specs.length === 0 && !args.update_cache && args.cache_valid_time === undefined)
      throw argError(ctx, 'apt needs name, or update_cache');
    const names = specs.map((s) => splitPackageSpec(s).name);
    const withCache = args.update_cache === true || args.cache_valid_time !== undefined;
    const res = await runScript(ctx, aptProbeScript(names, withCache, args.default_release || undefined));
    const sections = parseSections(res.stdout);
    if (!sections.has('end'))
      return { changed: false, actions: [], failed: `cannot query packages: ${failureText(res)}` };
    let cacheAge: number | undefined;
    if (withCache) {
      const cache = new Map((sections.get('cache') ?? '').split('\n').map((l) => l.split('=') as [string, string]));
      const stamp = Number(cache.get('stamp') ?? '0');
      cacheAge = stamp > 0 ? Number(cache.get('now') ?? '0') - stamp : undefined;
    }
    return planApt(
      args,
      specs,
      parseDpkgQuery(sections.get('dpkg') ?? ''),
      parseAptPolicy(sections.get('policy') ?? ''),
      cacheAge,
    );
  },

  async apply(ctx, _args, plan): Promise<ModuleResult> {
    const state = plan.state;
    const data = { ...(plan.data ?? {}) };
    if (!state) return { changed: false, failed: true, msg: 'internal error: apply called without a plan', data };
    const res = await runScript(ctx, aptApplyScript(state), { timeoutMs: 30 * 60 * 1000 });
    const stdout = stripEnds(res.stdout);
    const stderr = stripEnds(res.stderr);
    Object.assign(data, {
      stdout,
      stderr,
      stdout_lines: splitLines(stdout),
      stderr_lines: splitLines(stderr),
      cache_updated: state.updateCache && res.code !== 10,
    });
    if (res.code !== 0) {
      const step =
        res.code === 10
          ? 'apt-get update'
          : res.code === 11
            ? `installing ${state.install.join(' ')}`
            : `removing ${state.remove.join(' ')}`;
      return {
        changed: res.code !== 10 && state.updateCache,
        failed: true,
        msg: `${step} failed: ${failureText(res)}`,
        data,
      };
    }
    return { changed: true, data };
  },
};
