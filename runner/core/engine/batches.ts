/** Serial batches: numbers or percentages of the play's hosts; the last size repeats until all are done. */
export function computeBatches<T>(hosts: T[], serial: Array<number | string>): T[][] {
  if (serial.length === 0 || hosts.length === 0) return hosts.length ? [hosts] : [];
  const sizes = serial.map((s) => {
    if (typeof s === 'number') return s;
    const text = s.trim();
    if (text.endsWith('%')) return Math.max(1, Math.floor((hosts.length * Number(text.slice(0, -1))) / 100));
    return Number(text);
  });
  const batches: T[][] = [];
  let i = 0;
  let k = 0;
  while (i < hosts.length) {
    const size = Math.max(1, sizes[Math.min(k, sizes.length - 1)]!);
    batches.push(hosts.slice(i, i + size));
    i += size;
    k++;
  }
  return batches;
}
