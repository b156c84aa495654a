/**
 * What is kept of one stream of a remote command's output. A host can print without end (hostile, or a
 * runaway `cat`): everything past a budget is counted, not stored, so one host can neither exhaust the
 * controller's memory nor hit V8's string limit (a 600 MB output used to end the whole run with a
 * RangeError). The start and the end are kept, since that is where a command says what it is doing and how it
 * ended, and the text says plainly what was cut.
 */

/** Bytes kept from the start of a stream. Larger than any module's own probe output (http bodies: 8 MiB). */
export const OUTPUT_HEAD_BYTES = 12 * 1024 * 1024;
/** Bytes kept from the end of a stream. */
export const OUTPUT_TAIL_BYTES = 1024 * 1024;

export class CappedOutput {
  private readonly head: Buffer[] = [];
  private headBytes = 0;
  private tail: Buffer[] = [];
  private tailBytes = 0;
  /** Every byte received, kept or not. */
  totalBytes = 0;

  constructor(
    private readonly headLimit = OUTPUT_HEAD_BYTES,
    private readonly tailLimit = OUTPUT_TAIL_BYTES,
  ) {}

  push(chunk: Buffer): void {
    this.totalBytes += chunk.length;
    let rest = chunk;
    if (this.headBytes < this.headLimit) {
      const room = this.headLimit - this.headBytes;
      const taken = rest.length <= room ? rest : rest.subarray(0, room);
      // A copy: ssh2 may reuse the chunk's memory, and a subarray would pin the whole packet buffer.
      this.head.push(Buffer.from(taken));
      this.headBytes += taken.length;
      rest = rest.subarray(taken.length);
    }
    if (rest.length === 0) return;
    const piece = rest.length > this.tailLimit ? rest.subarray(rest.length - this.tailLimit) : rest;
    this.tail.push(Buffer.from(piece));
    this.tailBytes += piece.length;
    while (this.tailBytes > this.tailLimit) {
      const first = this.tail[0] as Buffer;
      const excess = this.tailBytes - this.tailLimit;
      if (first.length <= excess) {
        this.tail.shift();
        this.tailBytes -= first.length;
      } else {
        this.tail[0] = first.subarray(excess);
        this.tailBytes -= excess;
      }
    }
  }

  /** Bytes that were received but not kept. */
  get cutBytes(): number {
    return this.totalBytes - this.headBytes - this.tailBytes;
  }

  /** The kept text, decoded once (a character split across packets stays whole), with a note where it was cut. */
  text(): string {
    const head = Buffer.concat(this.head).toString('utf8');
    if (this.cutBytes === 0)
      return this.tail.length === 0 ? head : Buffer.concat([...this.head, ...this.tail]).toString('utf8');
    const note = `\n[cairn: output cut: ${this.totalBytes} bytes in all; the first ${this.headBytes} and the last ${this.tailBytes} are kept, ${this.cutBytes} bytes in between were dropped]\n`;
    return `${head}${note}${Buffer.concat(this.tail).toString('utf8')}`;
  }
}
