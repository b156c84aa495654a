/**
 * Reading rsync's `--stats` and `--itemize-changes` output (run with LC_ALL=C, so numbers use "," as the
 * thousands separator). Formats: rsync(1), "--stats" and "--itemize-changes, -i" (YXcstpoguax: Y is the
 * update type, `<` sent to the remote, `>` received, `c` created locally, `h` hard link, `.` not updated,
 * `*` a message such as "*deleting"; X is the file type, `f` for a regular file; "+++++++++" = a new item).
 */

export interface RsyncStats {
  /** Regular files rsync considered ("Number of files: N (reg: R, ...)"). */
  regularFiles: number;
  /** "Number of regular files transferred". */
  filesTransferred: number;
  /** "Total transferred file size", in bytes. */
  bytesTransferred: number;
}

function number(text: string | undefined): number {
  return text === undefined ? 0 : Number(text.replace(/[,.'\s]/g, ''));
}

/** undefined when the output holds no stats block (rsync failed before the end). */
export function parseRsyncStats(output: string): RsyncStats | undefined {
  const files = /^Number of files: ([\d,.']+)(?: \(([^)]*)\))?/m.exec(output);
  const transferred = /^Number of regular files transferred: ([\d,.']+)/m.exec(output);
  const bytes = /^Total transferred file size: ([\d,.']+) bytes/m.exec(output);
  if (!files || !transferred || !bytes) return undefined;
  // "Number of files: 1 (reg: 1)"; a lone file or an empty folder may omit the breakdown.
  const reg = files[2] ? /reg: ([\d,.']+)/.exec(files[2]) : undefined;
  return {
    regularFiles: reg ? number(reg[1]) : files[2] ? 0 : number(files[1]),
    filesTransferred: number(transferred[1]),
    bytesTransferred: number(bytes[1]),
  };
}

export interface ItemizedDifferences {
  /** Regular files the target lacks. */
  missing: string[];
  /** Regular files whose content differs (with --checksum: by checksum). */
  differing: string[];
}

/** Regular files an itemized (dry) run would transfer: those missing on the receiver or with other content. */
export function parseItemizedDifferences(output: string): ItemizedDifferences {
  const missing: string[] = [];
  const differing: string[] = [];
  for (const line of output.split('\n')) {
    const m = /^([<>])f([^ ]{9,10}) (.+)$/.exec(line);
    if (!m) continue;
    if (/^\++$/.test(m[2]!)) missing.push(m[3]!);
    else differing.push(m[3]!);
  }
  return { missing, differing };
}
