/**
 * Why hosts were unreachable in a bench run, from cairn's console output (the `fatal: [HOST] ... UNREACHABLE!`
 * lines of the full and the compact console): the reasons with the host's name and address taken out,
 * each with how many hosts gave it and the first few of them. A run that failed at 500 hosts is only worth
 * something with its reasons (the bench used to keep only the tail of the output).
 */
export interface UnreachableReason {
  /** The message with the host's name replaced by HOST and IPv4 addresses by ADDR. */
  reason: string;
  hosts: string[];
}

// Full console: `fatal: [HOST]: UNREACHABLE! => MSG`; compact: `fatal: [HOST] TASK: UNREACHABLE! => MSG`.
const FATAL_LINE = /^fatal: \[([^\]]+)\](?: .*?)?: UNREACHABLE! (?:\(item=.*?\) )?=> (.*)$/;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function unreachableReasons(output: string): UnreachableReason[] {
  const byReason = new Map<string, Set<string>>();
  for (const line of output.split('\n')) {
    const match = FATAL_LINE.exec(line.trimEnd());
    if (!match) continue;
    const [, host, message] = match as unknown as [string, string, string];
    const reason = message
      .replace(new RegExp(`(?<![\\w.-])${escapeRegExp(host)}(?![\\w.-])`, 'g'), 'HOST')
      .replace(/\b\d{1,3}(?:\.\d{1,3}){3}\b/g, 'ADDR');
    const hosts = byReason.get(reason) ?? new Set<string>();
    hosts.add(host);
    byReason.set(reason, hosts);
  }
  return [...byReason]
    .map(([reason, hosts]) => ({ reason, hosts: [...hosts] }))
    .sort((a, b) => b.hosts.length - a.hosts.length);
}

/** Lines for the bench's output: "  55 × REASON (b214, b215, b216, ...)". */
export function describeUnreachable(reasons: UnreachableReason[], shown = 6): string[] {
  return reasons.map(({ reason, hosts }) => {
    const names = hosts.slice(0, shown).join(', ') + (hosts.length > shown ? ', ...' : '');
    return `  ${String(hosts.length).padStart(4)} × ${reason} (${names})`;
  });
}
