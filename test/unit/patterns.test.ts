import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CairnError, formatLocation } from '../../runner/core/util/errors.js';
import {
  closestNames,
  levenshtein,
  loadInventory,
  parseHostPattern,
  readLimitFile,
  selectHosts,
} from '../../runner/core/inventory/index.js';

const DIR = 'test/fixtures/inventory/patterns';
// Hosts in inventory order: web1 web2 web3 web10 db1 db2 lb1 lb2 bastion.
const inv = loadInventory(join(DIR, 'hosts.yaml'));

function cairnError(fn: () => unknown): CairnError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CairnError) return err;
    throw new Error(`expected a CairnError, got ${String(err)}`, { cause: err });
  }
  throw new Error('expected a CairnError, nothing was thrown');
}

describe('selectHosts', () => {
  const table: Array<[string, string[]]> = [
    ['all', ['web1', 'web2', 'web3', 'web10', 'db1', 'db2', 'lb1', 'lb2', 'bastion']],
    ['*', ['web1', 'web2', 'web3', 'web10', 'db1', 'db2', 'lb1', 'lb2', 'bastion']],
    ['web', ['web1', 'web2', 'web3', 'web10']], // a group
    ['web1', ['web1']], // a host
    ['prod', ['web1', 'web2', 'web3', 'web10', 'db1', 'db2', 'lb1']], // a group means its descendants' hosts too
    ['ungrouped', ['bastion']],
    ['empty', []], // an existing group with no hosts is not an error
    ['web*', ['web1', 'web2', 'web3', 'web10']],
    ['lb?', ['lb1', 'lb2']], // "lb" itself is two characters: not matched
    ['db[!1]', ['db2']], // fnmatch character class
    ['*1', ['web1', 'db1', 'lb1']],
    ['~web[0-9]+', ['web1', 'web2', 'web3', 'web10']], // groups and hosts; "web" has no digit
    ['~(web|db)1', ['web1', 'web10', 'db1']], // anchored at the start only, as Python's re.match
    ['~stag', ['web3', 'db2']], // a regex over group names selects the groups' hosts
    ['web:db', ['web1', 'web2', 'web3', 'web10', 'db1', 'db2']],
    ['db,web', ['web1', 'web2', 'web3', 'web10', 'db1', 'db2']], // inventory order, not pattern order
    ['web1:web1:web', ['web1', 'web2', 'web3', 'web10']], // no duplicates
    ['prod:&staging', ['web3', 'db2']],
    ['&staging', ['web3', 'db2']], // only intersections/exclusions start from all
    ['prod:!web', ['db1', 'db2', 'lb1']],
    ['!web', ['db1', 'db2', 'lb1', 'lb2', 'bastion']],
    ['!web3:web:db', ['web1', 'web2', 'web10', 'db1', 'db2']], // exclusions after unions, wherever written
    ['web:&staging:db', ['web3', 'db2']], // intersections after all unions
    ['web:!staging:&prod', ['web1', 'web2', 'web10']],
    ['web[0]', ['web1']],
    ['web[-1]', ['web10']],
    ['web[0:1]', ['web1', 'web2']], // ranges include their end
    ['web[1:]', ['web2', 'web3', 'web10']],
    ['web[:1]', ['web1', 'web2']],
    ['web[1-2]', ['web2', 'web3']],
    ['web[2:9]', ['web3', 'web10']], // a range past the end stops at the end
    ['prod[0:1]:lb[-1]', ['web1', 'web2', 'lb2']],
    ['all:!web[0:2]', ['web10', 'db1', 'db2', 'lb1', 'lb2', 'bastion']],
    [' web : db ', ['web1', 'web2', 'web3', 'web10', 'db1', 'db2']],
    ['~nothing-like-this', []], // a regex matching nothing is not an error
  ];

  it.each(table)('%s', (pattern, expected) => {
    expect(selectHosts(inv, pattern)).toEqual(expected);
    expect(inv.select(pattern)).toEqual(expected);
  });

  // [pattern, message (exact, or a regex where the JavaScript engine words part of it)], kind "options".
  const errors: Array<[string, string | RegExp]> = [
    ['', 'bad host pattern "": empty pattern'],
    ['   ', 'bad host pattern "   ": empty pattern'],
    ['web::db', 'bad host pattern "web::db": empty term (term 2; separate terms with one ":" or ",")'],
    ['web:', 'bad host pattern "web:": empty term (term 2; separate terms with one ":" or ",")'],
    ['web[0', 'bad host pattern "web[0": unbalanced "[" at position 4'],
    ['web]', 'bad host pattern "web]": unbalanced "]" at position 4'],
    ['web[[0]]', 'bad host pattern "web[[0]]": "[" at position 5 opens inside another "[" (opened at position 4)'],
    ['~(web', /^bad host pattern "~\(web": bad regular expression "\(web": Invalid regular expression/],
    ['~', 'bad host pattern "~": "~" must be followed by a regular expression in "~"'],
    ['!', 'bad host pattern "!": "!" must be followed by a host, group or pattern in "!"'],
    ['web:&!db', 'bad host pattern "web:&!db": "&" must be followed by a host, group or pattern in "&!db"'],
    ['web[-1:]', 'bad host pattern "web[-1:]": bad subscript in "web[-1:]" (expected [N], [-N], [A:B], [A:] or [:B])'],
    ['web[2:1]', 'bad host pattern "web[2:1]": subscript in "web[2:1]" ends before it starts'],
    ['web db', 'bad host pattern "web db": spaces inside the term "web db" (separate terms with ":" or ",")'],
    ['we$b', 'bad host pattern "we$b": unexpected character "$" in "we$b"'],
    ['@retry', 'bad host pattern "@retry": unexpected character "@" in "@retry"'],
    ['db[]', 'bad host pattern "db[]": bad subscript in "db[]" (expected [N], [-N], [A:B], [A:] or [:B])'],
    ['db[!]', 'bad host pattern "db[!]": empty character class in "db[!]"'],
    ['db[z-a]', /^bad host pattern "db\[z-a\]": bad character class in "db\[z-a\]": Invalid regular expression/],
    ['web[4]', 'host pattern "web[4]": "web[4]" is out of range ("web" has 4 hosts)'],
    ['empty[0]', 'host pattern "empty[0]": "empty[0]" is out of range ("empty" has 0 hosts)'],
    ['webb', 'host pattern "webb": no host or group matches "webb"; did you mean "web", "web1" or "web2"?'],
    ['WEB1', 'host pattern "WEB1": no host or group matches "WEB1"; did you mean "web1", "web" or "web10"?'],
    ['web:!stagin', 'host pattern "web:!stagin": no host or group matches "stagin"; did you mean "staging"?'],
    ['prod:&dbb', 'host pattern "prod:&dbb": no host or group matches "dbb"; did you mean "db", "db1" or "db2"?'],
    ['zz*', 'host pattern "zz*": no host or group matches "zz*"'],
    ['nosuchthing', 'host pattern "nosuchthing": no host or group matches "nosuchthing"'],
    ['lbx[0]', 'host pattern "lbx[0]": no host or group matches "lbx"; did you mean "lb", "lb1" or "lb2"?'],
  ];
  it.each(errors)('error: %j', (pattern, message) => {
    const err = cairnError(() => selectHosts(inv, pattern));
    if (typeof message === 'string') expect(err.message).toBe(message);
    else expect(err.message).toMatch(message);
    expect(err.kind).toBe('options');
  });
});

describe('parseHostPattern', () => {
  it('sorts terms into operators and matchers', () => {
    const terms = parseHostPattern('web[0:1],&~db.*:!lb?');
    expect(terms.map((t) => [t.operator, t.matcher.kind, t.text])).toEqual([
      ['union', 'name', 'web[0:1]'],
      ['intersection', 'regex', '&~db.*'],
      ['exclusion', 'glob', '!lb?'],
    ]);
    expect(terms[0]!.subscript).toEqual({ kind: 'range', start: 0, end: 1 });
  });
});

describe('closestNames', () => {
  it.each([
    ['kitten', 'sitting', 3],
    ['', 'abc', 3],
    ['web1', 'web1', 0],
    ['web1', 'wbe1', 2],
    ['db', 'db1', 1],
  ])('levenshtein(%s, %s) = %d', (a, b, d) => {
    expect(levenshtein(a, b)).toBe(d);
    expect(levenshtein(b, a)).toBe(d);
  });

  it('keeps names within 2 edits, closest first, then by name', () => {
    expect(closestNames('webx', ['db1', 'web10', 'web1', 'web', 'lb'])).toEqual(['web', 'web1', 'web10']);
    expect(closestNames('zzzzz', ['web1'])).toEqual([]);
  });

  it('agrees with the triangle inequality', () => {
    const word = fc.string({ maxLength: 8 });
    fc.assert(fc.property(word, word, word, (a, b, c) => levenshtein(a, c) <= levenshtein(a, b) + levenshtein(b, c)));
  });
});

describe('readLimitFile', () => {
  it('joins one pattern per line with ":", skipping comments and blank lines', () => {
    const pattern = readLimitFile(join(DIR, 'limit.txt'));
    expect(pattern).toBe('web1:db*:!db2');
    expect(selectHosts(inv, pattern)).toEqual(['web1', 'db1']);
  });

  it('names the file and line of a broken pattern', () => {
    const err = cairnError(() => readLimitFile(join(DIR, 'bad-limit.txt')));
    expect(err.message).toBe('bad host pattern "web[0": unbalanced "[" at position 4');
    expect(formatLocation(err.location!)).toBe(`${DIR}/bad-limit.txt:3:3`);
  });

  it('refuses a file that names no hosts', () => {
    const err = cairnError(() => readLimitFile(join(DIR, 'empty-limit.txt')));
    expect(err.message).toBe('limit file names no hosts (only blank lines and comments)');
    expect(formatLocation(err.location!)).toBe(`${DIR}/empty-limit.txt`);
  });

  it('reports a missing file as a CairnError', () => {
    const err = cairnError(() => readLimitFile(join(DIR, 'missing.txt')));
    expect(err.message).toBe('cannot read limit file: no such file');
  });
});
