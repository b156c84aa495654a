/**
 * The expression evaluator behind `when`, `changed_when`, `failed_when`, `until` and `assert: that`:
 * Jinja-style syntax on jexl, evaluated against real variable sets, with its error messages.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CairnError, type SourceLocation } from '../../runner/core/util/errors.js';
import { evaluate, evaluateAll, evaluateCondition } from '../../runner/core/template/index.js';

const origin: SourceLocation = { file: 'roles/web/tasks/main.yml', line: 12, col: 9 };

const vars = {
  a: 1,
  b: 2,
  zero: 0,
  s: 'hello world',
  empty: '',
  xs: [1, 2, 3],
  no_items: [] as unknown[],
  web: { port: 80, name: 'web1' },
  nothing: null,
  // Names that start with or contain a word operator: they must lex as names.
  android: 'yes',
  notify: true,
  order_id: 7,
  island: 'x',
  index: 2,
  isolated: true,
  org: 'o',
  not_x: 5,
  inventory: 'i',
  ors: 1,
  ands: 2,
  result: { rc: 0, changed: true, failed: false, stdout: 'ok\n' },
  failed_result: { rc: 1, failed: true, changed: false },
  skipped_result: { skipped: 'conditional result was false', changed: false },
  port_text: '8443',
  yes_text: 'Yes',
  version: '12.4',
  group_names: ['web', 'lb'],
  flags: { on: true },
};

function failure(run: () => unknown): CairnError {
  try {
    run();
  } catch (err) {
    if (err instanceof CairnError) return err;
    throw new Error(`expected a CairnError, got ${String(err)}`, { cause: err });
  }
  throw new Error('expected a CairnError, nothing was thrown');
}

describe('evaluate: values', () => {
  const cases: Array<[string, unknown]> = [
    // literals
    ['true', true],
    ['True', true],
    ['false', false],
    ['False', false],
    ['None', null],
    ['none', null],
    ['42', 42],
    ['-3', -3],
    ['3.5', 3.5],
    ['1e3', 1000],
    [`'it\\'s'`, "it's"],
    ['"dq"', 'dq'],
    [`'a\\nb'`, 'a\nb'],
    [String.raw`r'\d+'`, String.raw`\d+`],
    [String.raw`'\d'`, String.raw`\d`],
    ['[1, "two", None]', [1, 'two', null]],
    ['[]', []],
    ['()', []],
    [`('a', 'b')`, ['a', 'b']],
    [`('a',)`, ['a']],
    ['[1, 2,]', [1, 2]],
    ['[-1, -2]', [-1, -2]],
    ['[[1], [2, 3]]', [[1], [2, 3]]],
    // comparisons (Python: no string/number coercion, deep equality)
    ['a == 1', true],
    ['a != 1', false],
    ['a < b', true],
    ['b >= 2', true],
    ['a > b', false],
    ['b <= 1', false],
    [`s == 'hello world'`, true],
    ['port_text == 8443', false],
    ['xs == [1, 2, 3]', true],
    ['web == web', true],
    ['True == 1', true],
    ['nothing == None', true],
    [`'abc' < 'abd'`, true],
    ['[1, 2] < [1, 3]', true],
    // arithmetic and precedence
    ['a + b * 3', 7],
    ['(a + b) * 3', 9],
    ['10 - 4 - 3', 3],
    ['2 ** 10', 1024],
    ['7 // 2', 3],
    ['-7 // 2', -4],
    ['7 % 3', 1],
    ['-7 % 3', 2],
    ['7 / 2', 3.5],
    [`'a' ~ 1 ~ True`, 'a1True'],
    [`'a' ~ (1 + 2)`, 'a3'],
    ['a + b == 3', true],
    ['1 + 1 in xs', true],
    ['xs + [4]', [1, 2, 3, 4]],
    [`'ab' + 'cd'`, 'abcd'],
    // logic: or < and < not < comparisons, values as Python returns them
    ['a == 1 and b == 2', true],
    ['a == 2 or b == 2', true],
    ['not a == 2', true],
    ['not a', false],
    ['not zero', true],
    ['a or b and zero', 1],
    ['zero and a or b', 2],
    ['not a == 1 or b == 2', true],
    ['not (a == 1 or b == 2)', false],
    ['not not a', true],
    ['a and b', 2],
    ['zero or empty', ''],
    ['not a in xs', false],
    ['not 5 in xs', true],
    ['not zero or zero', true],
    ['not a and b', false],
    ['a and not zero and b', 2],
    ['not zero == 1', true],
    ['(not a) == False', true],
    ['x is defined or a', 1],
    ['a == 1 or x is defined', true],
    ['not a or not zero', true],
    ['x | default(not a)', false],
    ['[not a, not zero]', [false, true]],
    ['not (not a or zero) and b', 2],
    // membership
    ['2 in xs', true],
    ['5 not in xs', true],
    [`'world' in s`, true],
    [`'port' in web`, true],
    [`'web' in group_names`, true],
    [`'db' not in group_names`, true],
    [`'x' in empty`, false],
    ['[1, 2] in [[1, 2]]', true],
    [`a in (1, 2)`, true],
    // word operators inside names
    [`android == 'yes'`, true],
    ['notify and isolated', true],
    ['order_id > 5', true],
    [`island == 'x'`, true],
    ['index == 2', true],
    ['not_x == 5', true],
    ['org ~ inventory', 'oi'],
    ['ors + ands', 3],
    ['notify is defined', true],
    [`android in ['yes']`, true],
    ['not notify', false],
    ['isolated or notify', true],
    // attribute and index access
    ['web.port', 80],
    [`web['name']`, 'web1'],
    ['xs[0]', 1],
    ['xs[-1]', 3],
    ['xs.1', 2],
    [`web['na' ~ 'me']`, 'web1'],
    ['result.stdout', 'ok\n'],
    ['s[0]', 'h'],
    ['xs[a]', 2],
    ['flags.on', true],
    ['(web).port', 80],
    ['[web][0].name', 'web1'],
    // tests
    ['x is defined', false],
    ['a is defined', true],
    ['x is undefined', true],
    ['x is not defined', true],
    ['web.port is defined', true],
    ['web.nope is defined', false],
    ['x.y.z is defined', false],
    ['xs[7] is defined', false],
    ['nothing is none', true],
    ['a is not none', true],
    ['nothing is None', true],
    ['result is succeeded', true],
    ['result is success', true],
    ['result is changed', true],
    ['result is failed', false],
    ['failed_result is failed', true],
    ['failed_result is success', false],
    ['failed_result is not changed', true],
    ['skipped_result is skipped', true],
    ['result is skipped', false],
    ['a is number', true],
    ['3.5 is float', true],
    ['a is integer', true],
    ['s is string', true],
    ['web is mapping', true],
    ['xs is sequence', true],
    ['web is iterable', true],
    ['notify is boolean', true],
    ['a is true', false],
    ['notify is true', true],
    ['4 is even', true],
    ['a is odd', true],
    ['9 is divisibleby(3)', true],
    ['10 is divisibleby(3)', false],
    [`s is match('hel')`, true],
    [`s is match('world')`, false],
    [`s is search('world')`, true],
    [`s is regex('^h.*d$')`, true],
    [`'HELLO' is match('hel', true)`, true],
    [`version is version('12.1', '>=')`, true],
    [`version is version('12.10', '<')`, true],
    [`'1.0.0' is version('1.0.0')`, true],
    [`version is version_compare('13', 'lt')`, true],
    ['2 is in(xs)', true],
    ['zero is falsy', true],
    ['xs is truthy', true],
    ['a is eq(1)', true],
    ['a is gt(0)', true],
    ['not x is defined', true],
    ['x is defined and x > 1', false],
    ['x is not defined or x > 1', true],
    // filters
    ['x | default(3)', 3],
    ['x | d(3)', 3],
    ['a | default(3)', 1],
    [`empty | default('e', true)`, 'e'],
    [`empty | default('e')`, ''],
    [`x.y | default('z')`, 'z'],
    ['x | default', ''],
    ['port_text | int', 8443],
    [`'3.9' | int`, 3],
    [`'abc' | int`, 0],
    [`'abc' | int(7)`, 7],
    ['port_text | int > 1024', true],
    [`'1.5' | float`, 1.5],
    ['yes_text | bool', true],
    [`'off' | bool`, false],
    ['1 | bool', true],
    ['xs | length', 3],
    ['web | length', 2],
    ['s | length', 11],
    ['xs | count', 3],
    [`'MiXed' | lower`, 'mixed'],
    ['s | upper', 'HELLO WORLD'],
    [`'  t  ' | trim`, 't'],
    ['a | string', '1'],
    ['None | string', 'None'],
    ['notify | string', 'True'],
    ['s | upper | lower', 'hello world'],
    ['xs | first', 1],
    ['xs | last', 3],
    [`group_names | join(',')`, 'web,lb'],
    ['-5 | abs', 5],
    [`s | replace('world', 'there')`, 'hello there'],
    ['(a + b) | string', '3'],
    [String.raw`version | regex_replace('^(\d+)\..*$', '\1')`, '12'],
    // {{ }} around a whole expression is accepted
    ['{{ a == 1 }}', true],
    ['  {{a}}  ', 1],
    ['{{ xs }}', [1, 2, 3]],
  ];

  it.each(cases)('%s', (expression, expected) => {
    expect(evaluate(expression, vars, origin)).toEqual(expected);
  });

  it('returns the variables themselves, not copies, and leaves them alone', () => {
    const before = JSON.stringify(vars);
    expect(evaluate('web', vars, origin)).toBe(vars.web);
    expect(evaluate('xs + [4]', vars, origin)).not.toBe(vars.xs);
    expect(JSON.stringify(vars)).toBe(before);
  });

  it('reads scope chains of plain objects but never built-in prototypes', () => {
    const scoped = Object.create({ inherited: 'from the play' }) as Record<string, unknown>;
    scoped['own'] = 'from the task';
    expect(evaluate('inherited ~ "/" ~ own', scoped, origin)).toBe('from the play/from the task');
    expect(failure(() => evaluate('hasOwnProperty', scoped, origin)).message).toContain(
      'undefined variable "hasOwnProperty"',
    );
  });

  it('caches compiled expressions by text, never by value', () => {
    expect(evaluate('a + 1', { a: 1 }, origin)).toBe(2);
    expect(evaluate('a + 1', { a: 41 }, origin)).toBe(42);
  });
});

describe('evaluateCondition and evaluateAll', () => {
  const truthiness: Array<[string | boolean, boolean]> = [
    ['xs', true],
    ['no_items', false],
    ['zero', false],
    ['empty', false],
    ['s', true],
    ['web', true],
    ['nothing', false],
    [`'false'`, true],
    ['a == 1', true],
    [true, true],
    [false, false],
    ['{{ a == 1 }}', true],
    ['flags.on', true],
  ];
  it.each(truthiness)('%s is %s', (expression, expected) => {
    expect(evaluateCondition(expression, vars, origin)).toBe(expected);
  });

  it('requires every condition of a list and stops at the first false one', () => {
    expect(evaluateAll([], vars, origin)).toBe(true);
    expect(evaluateAll(['a == 1', true, 'xs'], vars, origin)).toBe(true);
    expect(evaluateAll(['a == 1', 'b == 3'], vars, origin)).toBe(false);
    // The second condition would fail on its undefined variable: it is never evaluated.
    expect(evaluateAll([false, 'undefined_var > 1'], vars, origin)).toBe(false);
    expect(evaluateAll(['zero', 'undefined_var > 1'], vars, origin)).toBe(false);
    expect(failure(() => evaluateAll(['a == 1', 'undefined_var > 1'], vars, origin)).message).toContain(
      'undefined variable "undefined_var"',
    );
  });

  it('fails on a condition whose value is undefined', () => {
    expect(failure(() => evaluateCondition('x', vars, origin)).message).toContain('undefined variable "x"');
  });
});

describe('evaluate: errors name the origin, the expression and the variable', () => {
  const cases: Array<[string, string[]]> = [
    [
      'web.prot > 1',
      ['undefined variable "web.prot"', 'in expression "web.prot > 1"', '(available at this level: port, name)'],
    ],
    ['resutl is failed', ['undefined variable "resutl"', 'result']],
    ['x.y.z == 1', ['undefined variable "x.y.z": "x" is not defined']],
    ['nothing.attr == 1', ['undefined variable "nothing.attr"', '"nothing" is null']],
    ['xs[7] == 1', ['undefined variable "xs[7]"', 'the list has 3 items']],
    ['x | int', ['undefined variable "x"']],
    ['x | default(y)', ['undefined variable "y"']],
    ['[a, x]', ['undefined variable "x"']],
    ['not x', ['undefined variable "x"']],
    ['x', ['undefined variable "x"']],
    ['x is failed', ['undefined variable "x"']],
    ['x is failed', ['undefined variable "x"']],
    ['x and a', ['undefined variable "x"']],
    ['x in xs', ['undefined variable "x"']],
    ['a < "b"', ['cannot compare a number (1) with a string ("b")']],
    ['port_text > 80', ['cannot compare a string ("8443") with a number (80)', 'convert']],
    [`'a' in 1`, ['"in" needs a list, string or mapping on the right']],
    ['1 in s', ['needs a string on the left']],
    ['a / zero', ['division by zero']],
    ['s + 1', ['cannot add a string']],
    ['s - 1', ['"-" needs numbers, got a string']],
    ['a is failed', ['the "failed" test needs a registered task result (a mapping), got a number (1)']],
    [`version is version('1', 'bogus')`, ['unknown operator "bogus"']],
    [`s is match('(')`, ['invalid regular expression "("']],
    ['no_items | first', ['undefined variable "first of an empty list"', 'the list is empty']],
    ['xs | replace(1, 2)', ['replace needs text, got a list of 3 items']],
    // Faults inside an operand keep their message (jexl's Promise.all would re-create them as plain errors).
    ['(a < "b") == 1', ['cannot compare a number (1) with a string ("b")']],
    ['1 + (x | int)', ['undefined variable "x"']],
    ['xs[x] == 1', ['undefined variable "x"']],
    ['[1, a / zero]', ['division by zero']],
    ['(not x) == 1', ['undefined variable "x"']],
    ['(x or a) == 1', ['undefined variable "x"']],
    ['s | replace(x, "y") == s', ['undefined variable "x"']],
    ['a | length', ['length needs a list, string or mapping, got a number (1)']],
  ];

  it.each(cases)('%s', (expression, fragments) => {
    const error = failure(() => evaluate(expression, vars, origin));
    expect(error.location).toEqual(origin);
    expect(error.render().startsWith('roles/web/tasks/main.yml:12:9: ')).toBe(true);
    for (const fragment of fragments) expect(error.message).toContain(fragment);
    expect(error.message).not.toMatch(/cannot evaluate|ExpressionFault|Error:/);
  });

  it('suggests close names when a level holds many', () => {
    const many: Record<string, unknown> = { haproxy_backend_port: 1 };
    for (let i = 0; i < 40; i++) many[`fact_${i}`] = i;
    const message = failure(() => evaluate('haproxy_backend_prot == 1', many, origin)).message;
    expect(message).toContain('haproxy_backend_port');
    expect(message).not.toContain('fact_3');
  });

  it('works without an origin', () => {
    const error = failure(() => evaluate('nope == 1', {}));
    expect(error.location).toBeUndefined();
    expect(error.render()).toMatch(/^undefined variable "nope" in expression "nope == 1"/);
  });
});

describe('evaluate: syntax errors name the column and what was expected', () => {
  const cases: Array<[string, string, number]> = [
    ['a ==', 'expected a value after "==", found the end', 5],
    ['a = 1', 'use "==" to compare', 3],
    ['a && b', 'use "and" instead of "&&"', 3],
    ['a || b', 'use "or" instead of "||"', 3],
    ['!a', 'use "not" instead of "!"', 1],
    ['(a', '"(" at col 1 is never closed', 1],
    ['a)', 'unexpected ")" (nothing to close)', 2],
    ['[1, 2', '"[" at col 1 is never closed', 1],
    ['(1, 2]', 'expected ")", found "]"', 6],
    ['a b', 'expected an operator or the end after "a", found "b"', 3],
    [`'abc`, 'unterminated string', 1],
    ['a | nosuch', 'unknown filter "nosuch"', 5],
    ['a is nosuch', 'unknown test "nosuch"', 6],
    ['int(a)', '"int" is a filter: write value | int(...)', 1],
    ['defined(a)', '"defined" is a test: write value is defined(...)', 1],
    [`lookup('pipe', 'id') | frob`, 'unknown filter "frob"', 24],
    [`s.frob('h')`, 'unknown method ".frob()"', 3],
    ['xs[1:2:3:4]', 'a slice has at most three parts', 3],
    [`{'a' 1}`, 'expected ":", found "1"', 6],
    ['a if else c', 'expected a value after "if", found "else"', 6],
    ['a not b', 'expected "in" after "not"', 3],
    ['', 'the expression is empty', 1],
    ['   ', 'the expression is empty', 4],
    ['a $b', '"$" cannot appear', 3],
    ['1abc', 'invalid number "1abc"', 1],
    ['{{ a }} and {{ b }}', '"{{ }}" cannot appear inside an expression', 1],
    ['{{ a == }}', 'expected a value after "==", found the end', 9],
    ['a.', 'expected a name after "."', 3],
    ['a |', 'expected a filter name after "|"', 4],
    ['a is', 'expected a test name after "is"', 5],
    ['a and', 'expected a value after "and", found the end', 6],
    ['a ? b : c', 'the "?:" operator does not exist here', 3],
    ['xs[]', 'expected an index inside "[]"', 4],
    ['a (b)', '"a(...)": unknown function', 1],
    ['(a) (b)', '"a(...)": unknown function', 2],
    ['(a,', 'expected a value after ","', 4],
  ];

  it.each(cases)('%s', (expression, fragment, col) => {
    const error = failure(() => evaluate(expression, vars, origin));
    expect(error.location).toEqual(origin);
    expect(error.message).toContain(`invalid expression "${expression.trim()}"`);
    expect(error.message).toContain(fragment);
    expect(error.message).toContain(`(at col ${col})`);
    // The detail shows the expression with a caret under that column.
    const [source, caret] = (error.detail ?? '').split('\n');
    expect(source).toBe(`1 | ${expression}`);
    expect(caret!.indexOf('^')).toBe('1 | '.length + col - 1);
  });

  it('gives line and column inside a multi-line expression', () => {
    const error = failure(() => evaluate('a == 1 and\n  b ==', vars, origin));
    expect(error.message).toContain('(at line 2, col 7)');
    expect(error.detail).toBe('2 |   b ==\n          ^');
  });
});

describe('evaluate: injection attempts reach nothing', () => {
  const attempts = [
    'constructor',
    'constructor.constructor',
    `constructor.constructor('globalThis.cairnPwned = 1')()`,
    `a.constructor.constructor('globalThis.cairnPwned = 1')()`,
    '__proto__',
    '__proto__.polluted',
    'web.__proto__',
    `web['__proto__']`,
    `web['constructor']['constructor']`,
    `''.constructor`,
    `s.constructor.name`,
    `xs.constructor`,
    'this',
    'this.constructor',
    'process',
    'process.env',
    'globalThis',
    'global',
    'module',
    `require('fs')`,
    `import('fs')`,
    'toString',
    'valueOf',
    'hasOwnProperty',
    'xs.map',
    's.length',
    'xs.length',
    'xs | constructor',
    'a is constructor',
    'a is __proto__',
    'a | __proto__',
    '$root',
    '$n0',
    '$l0',
    '$attr',
    'a |$attr("constructor")',
    '`x`',
    'a; b',
    `web['con' ~ 'structor']['con' ~ 'structor']('globalThis.cairnPwned = 1')`,
    '[].constructor',
    '(1).constructor',
  ];

  it.each(attempts)('%s', (expression) => {
    let value: unknown;
    try {
      value = evaluate(expression, vars, origin);
    } catch (err) {
      expect(err).toBeInstanceOf(CairnError);
      // No jexl internals (placeholders, operator names) leak into messages.
      expect((err as CairnError).message.replace(expression, '')).not.toMatch(/\$[ln][0-9]|\$attr|\$idx|\$root|Token /);
    }
    expect(typeof value).not.toBe('function');
    expect((globalThis as Record<string, unknown>)['cairnPwned']).toBeUndefined();
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('answers "is defined" for prototype names as for any missing name', () => {
    for (const name of ['constructor', '__proto__', 'toString', 'valueOf', 'prototype']) {
      expect(evaluate(`${name} is defined`, vars, origin)).toBe(false);
      expect(evaluate(`web.${name} is defined`, vars, origin)).toBe(false);
    }
  });

  it('reads a key named __proto__ only when the data really has one', () => {
    const parsed = JSON.parse('{"__proto__": {"polluted": "own data"}}') as Record<string, unknown>;
    expect(evaluate('__proto__.polluted', parsed, origin)).toBe('own data');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('never escapes as anything but a value or a CairnError (token soup)', () => {
    const token = fc.constantFrom(
      'a',
      'xs',
      'web',
      's',
      '.',
      'port',
      '[',
      ']',
      '(',
      ')',
      ',',
      `'s'`,
      '"t"',
      '1',
      '-',
      '+',
      '*',
      '/',
      '//',
      '%',
      '**',
      '==',
      '!=',
      '<',
      '>=',
      'and',
      'or',
      'not',
      'in',
      'is',
      'defined',
      'none',
      'None',
      '|',
      'int',
      'default',
      'length',
      'constructor',
      '__proto__',
      '~',
      'True',
      ':',
      '{',
      '}',
      'x',
      'failed',
      'version',
      '0',
      '{{',
      '}}',
      '!',
      '=',
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 14 }), (tokens) => {
        try {
          const value = evaluate(tokens.join(' '), vars, origin);
          return typeof value !== 'function';
        } catch (err) {
          return err instanceof CairnError;
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('never escapes as anything but a value or a CairnError (random text)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (text) => {
        try {
          return typeof evaluate(text, vars, origin) !== 'function';
        } catch (err) {
          return err instanceof CairnError;
        }
      }),
      { numRuns: 1000 },
    );
  });
});
