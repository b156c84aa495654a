/**
 * Text that came from a host (command output, stderr in a failure message, file names, file contents in a
 * diff) is shown, never obeyed: a managed host must not be able to move the cursor, rewrite earlier lines,
 * retitle the window or hide text on the operator's terminal. Control characters are printed as escapes.
 */

/**
 * C0 controls except tab and newline (carriage return and backspace rewrite a line; ESC starts every terminal
 * sequence), DEL, the C1 controls (U+0080-U+009F: CSI and OSC on some terminals) and the bidirectional
 * overrides and isolates (text that reads differently from what it is).
 */
// Control characters are exactly what this pattern is for.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** The text with every terminal control character shown as an escape (`\x1b`, `\u202e`). */
export function terminalSafe(text: string): string {
  return text.replace(/\r\n/g, '\n').replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
