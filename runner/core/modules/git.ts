/**
 * git: a working copy of a repository at a version, as Ansible's ansible.builtin.git (lib/ansible/modules/
 * git.py; docs: docs.ansible.com/ansible/latest/collections/ansible/builtin/git_module.html), for `repo`,
 * `dest`, `version` (HEAD, a branch, a tag or a commit), `remote`, `force`, `depth`, `update`.
 *
 * Ansible's check mode answers from `git ls-remote` without fetching (get_remote_head): `after` is the commit
 * the version names on the remote, `changed` is before != after (or the remote URL differs). cairn's check is
 * that, in one round trip: ls-remote of the repository (every ref, and where HEAD points), the working copy's
 * HEAD, its remote URL and its local modifications (`git status --porcelain`, untracked files ignored, as
 * has_local_mods). Local modifications fail the task unless `force` (then they are discarded: `reset --hard`).
 * apply clones (`git clone [--depth N] [--branch V] --origin REMOTE -- REPO DEST`) or fetches, then puts the
 * working copy on the version as switch_version does: a branch is checked out tracking REMOTE/branch and
 * reset to it, a tag or commit is checked out detached.
 *
 * Differences, said at the task or in docs/ansible-compat.md: submodules are not cloned or updated (Ansible's
 * `recursive`), `bare`, `archive`, `separate_git_dir`, `refspec`, `verify_commit` and `key_file` are not
 * there; a repository URL with a password is refused (it would sit in an argv and in .git/config).
 * Every value reaches git quoted, after `--` where git takes one.
 */
import { quote } from '../transport/quote.js';
import { argError } from './attributes.js';
import { failureText, parseSections, ProbeError, runScript, section } from './remote.js';
import type { Module, ModuleContext, ModuleResult, Planned } from './types.js';

export interface GitArgs {
  repo: string;
  dest: string;
  version?: string;
  remote?: string;
  force?: boolean;
  depth?: number;
  update?: boolean;
  clone?: boolean;
  accept_hostkey?: boolean;
}

export type VersionKind = 'head' | 'branch' | 'tag' | 'commit';

export interface ResolvedVersion {
  kind: VersionKind;
  /** The commit the version names on the remote. */
  sha: string;
  /** For head and branch: the branch name. */
  branch?: string;
}

/** `git ls-remote` output (sha, tab, ref) into a map; anything else is refused. */
export function parseLsRemote(text: string): Map<string, string> {
  const refs = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const m = /^([0-9a-f]{40}|[0-9a-f]{64})\t(\S+)$/.exec(line);
    if (!m)
      throw new ProbeError(
        `git ls-remote printed a line that is not "<sha>\\t<ref>": ${JSON.stringify(line.slice(0, 80))}`,
      );
    refs.set(m[2]!, m[1]!);
  }
  return refs;
}

/**
 * What `version` names on the remote, as Ansible's get_remote_head: HEAD, else a branch, else a tag (the
 * commit an annotated tag points to), else a commit id given as is.
 */
export function resolveVersion(
  version: string,
  refs: Map<string, string>,
  headBranch: string | undefined,
): ResolvedVersion {
  if (version === 'HEAD') {
    const sha = refs.get('HEAD');
    if (!sha) throw new ProbeError('Could not determine remote revision for HEAD (the repository is empty?)');
    return { kind: 'head', sha, ...(headBranch ? { branch: headBranch } : {}) };
  }
  const branch = refs.get(`refs/heads/${version}`);
  if (branch) return { kind: 'branch', sha: branch, branch: version };
  const tag = refs.get(`refs/tags/${version}^{}`) ?? refs.get(`refs/tags/${version}`);
  if (tag) return { kind: 'tag', sha: tag };
  if (/^[0-9a-f]{40}$/.test(version) || /^[0-9a-f]{64}$/.test(version)) return { kind: 'commit', sha: version };
  throw new ProbeError(
    `Could not determine remote revision for ${version}: it is no branch or tag of the repository, nor a full commit id`,
  );
}

export interface GitState {
  clone: boolean;
  target: ResolvedVersion;
  reset: boolean;
  setUrl: boolean;
  args: GitArgs;
}

const GIT_ENV = 'export GIT_TERMINAL_PROMPT=0 LC_ALL=C';

function probeScript(args: GitArgs, remote: string): string {
  const d = quote(args.dest);
  return [
    'command -v git >/dev/null 2>&1 || { echo "git is not installed on the host (Debian package git)" >&2; exit 3; }',
    GIT_ENV,
    `if [ -e ${d}/.git/config ]; then`,
    section('local', `echo repo=1; printf 'head=%s\\n' "$(git -C ${d} rev-parse --verify -q HEAD)"`),
    section('url', `git -C ${d} config --get ${quote(`remote.${remote}.url`)}`),
    section('mods', `git -C ${d} status --porcelain | grep -v '^??'`),
    `elif [ -e ${d} ] && [ -n "$(ls -A -- ${d} 2>/dev/null)" ]; then`,
    section('local', 'echo repo=0; echo occupied=1'),
    'else',
    section('local', 'echo repo=0'),
    'fi',
    section('refs', `git ls-remote -- ${quote(args.repo)} || echo "ls-remote-failed=$?"`),
    section(
      'symref',
      `git ls-remote --symref -- ${quote(args.repo)} HEAD | sed -n 's/^ref: refs\\/heads\\/\\(.*\\)\\tHEAD$/\\1/p'`,
    ),
  ].join('\n');
}

function failed(msg: string, data: Record<string, unknown> = {}): Planned<GitState> {
  return { changed: false, actions: [], failed: msg, data };
}

/** A git ref name as git check-ref-format allows it, at least for what reaches a command line. */
function checkRefName(ctx: ModuleContext, what: string, value: string): void {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (value.startsWith('-') || /[\s~^:?*[\\\x00-\x1f\x7f]|\.\.|@\{/.test(value))
    throw argError(ctx, `git ${what} ${JSON.stringify(value)} is not a valid git name`);
}

export const gitModule: Module<GitArgs, GitState> = {
  name: 'git',
  argAliases: { name: 'repo' },
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['repo', 'dest'],
    properties: {
      repo: { type: 'string', minLength: 1 },
      dest: { type: 'string', pattern: '^/' },
      version: { type: 'string', minLength: 1 },
      remote: { type: 'string', minLength: 1 },
      force: { type: 'boolean' },
      depth: { type: 'integer', minimum: 1 },
      update: { type: 'boolean' },
      clone: { type: 'boolean', const: true },
      accept_hostkey: { type: 'boolean' },
    },
  },

  async check(ctx, args): Promise<Planned<GitState>> {
    const version = args.version ?? 'HEAD';
    const remote = args.remote ?? 'origin';
    if (/^[a-z][a-z0-9+.-]*:\/\/[^/@]*:[^/@]*@/i.test(args.repo))
      throw argError(ctx, 'git repo holds a password: use an SSH key or a git credential helper on the host');
    if (args.repo.startsWith('-')) throw argError(ctx, `git repo ${JSON.stringify(args.repo)} starts with '-'`);
    checkRefName(ctx, 'version', version);
    checkRefName(ctx, 'remote', remote);
    try {
      const res = await runScript(ctx, probeScript(args, remote));
      if (res.code !== 0) return failed(failureText(res));
      const s = parseSections(res.stdout);
      const local = s.get('local') ?? '';
      const isRepo = /^repo=1$/m.test(local);
      const refsText = s.get('refs') ?? '';
      const lsFailed = /^ls-remote-failed=(\d+)$/m.exec(refsText);
      if (lsFailed) return failed(`git ls-remote ${args.repo} failed (exit ${lsFailed[1]}): ${res.stderr.trim()}`);
      const refs = parseLsRemote(refsText);
      const symref = (s.get('symref') ?? '').trim();
      if (symref !== '' && !/^[^\s]+$/.test(symref)) throw new ProbeError('the remote HEAD names an invalid branch');
      const target = resolveVersion(version, refs, symref || undefined);
      if (!isRepo) {
        if (/^occupied=1$/m.test(local))
          return failed(`destination path '${args.dest}' already exists and is not an empty directory`);
        return {
          changed: true,
          actions: [`clone ${args.repo} into ${args.dest} at ${version} (${target.sha})`],
          state: { clone: true, target, reset: false, setUrl: false, args },
          data: { before: null, after: target.sha },
        };
      }
      const headLine = /^head=(.*)$/m.exec(local)?.[1] ?? '';
      if (headLine !== '' && !/^([0-9a-f]{40}|[0-9a-f]{64})$/.test(headLine))
        throw new ProbeError('the working copy reported a HEAD that is not a commit id');
      const before = headLine || null;
      const url = (s.get('url') ?? '').trim();
      const urlChanged = url !== args.repo;
      const mods = (s.get('mods') ?? '').trim() !== '';
      const data: Record<string, unknown> = { before, after: before, remote_url_changed: urlChanged };
      if (args.update === false) return { changed: false, actions: [], data: { before, after: before } };
      if (mods && !args.force)
        return failed(`Local modifications exist in the destination: ${args.dest} (force=no).`, data);
      const actions: string[] = [];
      if (mods) actions.push(`discard local modifications in ${args.dest} (force)`);
      if (urlChanged) actions.push(`set ${remote}'s URL to ${args.repo} (was ${url || 'unset'})`);
      if (before !== target.sha)
        actions.push(`update ${args.dest} from ${before ?? '(no commit)'} to ${version} (${target.sha})`);
      data.after = target.sha;
      if (actions.length === 0) return { changed: false, actions: [], data };
      return { changed: true, actions, state: { clone: false, target, reset: mods, setUrl: urlChanged, args }, data };
    } catch (err) {
      if (err instanceof ProbeError) return failed(err.message);
      throw err;
    }
  },

  async apply(ctx, _args, plan): Promise<ModuleResult> {
    const state = plan.state;
    const data = { ...(plan.data ?? {}) };
    if (!plan.changed || !state) return { changed: false, data };
    const { args, target } = state;
    const remote = args.remote ?? 'origin';
    const d = quote(args.dest);
    const depth = args.depth !== undefined ? ` --depth ${args.depth}` : '';
    const lines = [GIT_ENV, 'set -e'];
    if (state.clone) {
      const branch =
        target.kind === 'branch' || target.kind === 'tag' ? ` --branch ${quote(args.version ?? 'HEAD')}` : '';
      lines.push(`git clone -q${depth}${branch} --origin ${quote(remote)} -- ${quote(args.repo)} ${d}`);
      if (target.kind === 'commit') {
        if (depth) lines.push(`git -C ${d} fetch -q${depth} -- ${quote(remote)} ${quote(target.sha)}`);
        lines.push(`git -C ${d} checkout -q --force --detach ${quote(target.sha)}`);
      }
    } else {
      if (state.reset) lines.push(`git -C ${d} reset -q --hard HEAD --`);
      if (state.setUrl)
        lines.push(
          `git -C ${d} remote set-url -- ${quote(remote)} ${quote(args.repo)} 2>/dev/null || ` +
            `git -C ${d} remote add -- ${quote(remote)} ${quote(args.repo)}`,
        );
      // A clone with --depth or a tag's --branch fetches one ref only; a later version may be another branch,
      // which must become a tracking ref of the remote (Ansible's set_remote_branch does the same).
      lines.push(
        `git -C ${d} config --replace-all ${quote(`remote.${remote}.fetch`)} ${quote(`+refs/heads/*:refs/remotes/${remote}/*`)}`,
      );
      lines.push(
        `git -C ${d} fetch -q${depth} --force -- ${quote(remote)} ` +
          `${quote(`+refs/heads/*:refs/remotes/${remote}/*`)} '+refs/tags/*:refs/tags/*'`,
      );
      if (target.kind === 'commit' && depth)
        lines.push(`git -C ${d} fetch -q${depth} -- ${quote(remote)} ${quote(target.sha)}`);
      if ((target.kind === 'branch' || target.kind === 'head') && target.branch) {
        // As switch_version: the branch checked out, tracking REMOTE/branch, and reset to it.
        lines.push(
          `git -C ${d} checkout -q --force -B ${quote(target.branch)} ${quote(`${remote}/${target.branch}`)} --`,
          `git -C ${d} branch -q --set-upstream-to=${quote(`${remote}/${target.branch}`)} ${quote(target.branch)}`,
        );
      } else lines.push(`git -C ${d} checkout -q --force --detach ${quote(target.sha)}`);
    }
    lines.push(section('after', `git -C ${d} rev-parse --verify HEAD`));
    const res = await runScript(ctx, lines.join('\n'));
    if (res.code !== 0) return { changed: false, failed: true, msg: `git failed: ${failureText(res)}`, data };
    const after = (parseSections(res.stdout).get('after') ?? '').trim();
    if (!/^([0-9a-f]{40}|[0-9a-f]{64})$/.test(after))
      return { changed: true, failed: true, msg: 'the working copy reported no commit after the update', data };
    return { changed: true, data: { ...data, after } };
  },
};
