/**
 * Ansible's vars_prompt: each prompt is answered by -e NAME=..., else asked on the terminal (hidden when
 * `private`, as Ansible's default), else its default; with no terminal and no default the run stops before
 * anything is touched, saying which -e to pass.
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { optionsError } from '../core/util/errors.js';
import type { Playbook } from '../core/playbook/types.js';
import type { Vars } from '../core/util/vars.js';

async function ask(question: string, hidden: boolean): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  try {
    return await new Promise<string>((resolveAnswer) => {
      rl.question(`${question}: `, (answer) => resolveAnswer(answer));
      muted = hidden;
    });
  } finally {
    rl.close();
    if (hidden) process.stderr.write('\n');
  }
}

/** Put each prompt's answer into its play's vars (extra vars still win over them when the run starts). */
export async function answerVarsPrompts(
  playbook: Playbook,
  extraVars: Vars,
  interactive = Boolean(process.stdin.isTTY),
): Promise<void> {
  for (const play of playbook.plays) {
    for (const prompt of play.varsPrompt ?? []) {
      if (Object.prototype.hasOwnProperty.call(extraVars, prompt.name)) continue;
      if (interactive) {
        const answer = await ask(
          `${prompt.prompt}${prompt.default !== undefined ? ` [${String(prompt.default)}]` : ''}`,
          prompt.private,
        );
        play.vars = {
          ...play.vars,
          [prompt.name]: answer === '' && prompt.default !== undefined ? prompt.default : answer,
        };
      } else if (prompt.default !== undefined) {
        play.vars = { ...play.vars, [prompt.name]: prompt.default };
      } else {
        throw optionsError(
          `play "${play.name}" asks for "${prompt.name}" (vars_prompt) and there is no terminal to ask on: pass -e ${prompt.name}=VALUE`,
        );
      }
    }
  }
}
