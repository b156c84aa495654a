/**
 * stat: facts about one path, read-only, in one round trip. The result is registered as `stat` with
 * Ansible's field names (exists, isdir, isreg, islnk, mode, uid, gid, pw_name, gr_name, size, mtime,
 * checksum, lnk_source, lnk_target) plus `owner`/`group`. The checksum is sha256.
 */
import { probeFile, ProbeError, type FileProbe } from './remote.js';
import type { Module, Planned } from './types.js';

export interface StatArgs {
  path: string;
  checksum?: boolean;
  get_checksum?: boolean;
  follow?: boolean;
}

/** The registered `stat` mapping for a probe (pure; table-tested). */
export function statResult(probe: FileProbe): Record<string, unknown> {
  if (probe.type === 'absent') return { exists: false, path: probe.path };
  const stat: Record<string, unknown> = {
    exists: true,
    path: probe.path,
    isdir: probe.type === 'directory',
    isreg: probe.type === 'file',
    islnk: probe.type === 'link',
    mode: probe.mode,
    uid: probe.uid,
    gid: probe.gid,
    owner: probe.owner,
    group: probe.group,
    pw_name: probe.owner,
    gr_name: probe.group,
    size: probe.size,
    mtime: probe.mtime,
  };
  if (probe.sha256 !== undefined) stat.checksum = probe.sha256;
  if (probe.isLink) {
    stat.lnk_target = probe.linkTarget;
    stat.lnk_source = probe.linkResolved;
  }
  return stat;
}

export const statModule: Module<StatArgs> = {
  name: 'stat',
  // Ansible's aliases (ansible.builtin.stat's documentation).
  argAliases: { dest: 'path', name: 'path' },
  readOnly: true,
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['path'],
    properties: {
      path: { type: 'string', minLength: 1 },
      checksum: { type: 'boolean' },
      get_checksum: { type: 'boolean' },
      follow: { type: 'boolean' },
    },
  },

  async check(ctx, args): Promise<Planned> {
    try {
      const probe = await probeFile(ctx, args.path, {
        follow: args.follow ?? false,
        checksum: args.checksum ?? args.get_checksum ?? true,
      });
      return { changed: false, actions: [], data: { stat: statResult(probe) } };
    } catch (err) {
      if (err instanceof ProbeError) return { changed: false, actions: [], failed: err.message };
      throw err;
    }
  },

  apply(_ctx, _args, plan) {
    return Promise.resolve({ changed: false, data: plan.data ?? {} });
  },
};
