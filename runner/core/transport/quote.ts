/**
 * POSIX shell quoting. Every value that reaches a remote shell goes through `quote`: single quotes keep
 * everything literal, and an embedded single quote is closed, escaped and reopened.
 */
export function quote(value: string | number): string {
  const text = String(value);
  if (text !== '' && /^[A-Za-z0-9_/.,:=@%+-]+$/.test(text)) return text;
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** Quote each argument and join them into one command line. */
export function argv(...args: Array<string | number>): string {
  return args.map(quote).join(' ');
}
