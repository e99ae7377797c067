/** The strict argument parser of the run subcommands. */
import { describe, expect, it } from 'vitest';
import * as E from 'fp-ts/lib/Either.js';
import { intFlag, parseCommandArgs, table } from '../../src/cli/args.js';

const spec = { booleans: ['json'], values: ['out', 'epoch'], aliases: { o: 'out' } };

describe('parseCommandArgs', () => {
  it('splits positionals and declared flags in every spelling', () => {
    expect(
      parseCommandArgs(['a', '--json', '-o', 'r.html', '--epoch=3', 'b', '--', '--x'], spec),
    ).toEqual(
      E.right({ positional: ['a', 'b', '--x'], flags: { json: true, out: 'r.html', epoch: '3' } }),
    );
    expect(parseCommandArgs(['-h'], spec)).toEqual(
      E.right({ positional: [], flags: { help: true } }),
    );
  });

  it('rejects unknown flags, missing values and values on booleans', () => {
    expect(parseCommandArgs(['--jsn'], spec)).toEqual(
      E.left('unknown option --jsn; this command takes --help, --json, --out, --epoch'),
    );
    expect(parseCommandArgs(['--out'], spec)).toEqual(E.left('--out needs a value'));
    expect(parseCommandArgs(['--out', '--json'], spec)).toEqual(E.left('--out needs a value'));
    expect(parseCommandArgs(['--json=1'], spec)).toEqual(E.left('--json takes no value (got "1")'));
    expect(parseCommandArgs(['-x'], spec)).toMatchObject({ _tag: 'Left' });
  });

  it('reads integer flags strictly', () => {
    expect(intFlag('epoch', '3')).toEqual(E.right(3));
    for (const bad of ['-1', '1.5', 'x', '', '1e3'])
      expect(intFlag('epoch', bad)).toEqual(
        E.left(`--epoch: expected a non-negative integer, got ${JSON.stringify(bad)}`),
      );
  });

  it('pads table columns to the widest cell', () => {
    expect(
      table([
        ['a', 'bb', 'c'],
        ['ccc', 'd', 'e'],
      ]),
    ).toBe('a    bb  c\nccc  d   e');
  });
});
