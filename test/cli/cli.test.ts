import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { configHelpText, helpText, main } from '../../src/cli/cli.js';
import { KNOWN_KEYS } from '../../src/state/config/Config.js';

const run = async (argv: string[]) => {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t), cwd: dir });
  return { code, out, err };
};

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'danling-cli-'));
  await writeFile(
    join(dir, 'a.yaml'),
    'experimentName: iris\nepochEnd: 3\noptim:\n  lr: 0.1\n  name: adam\n',
  );
  await writeFile(join(dir, 'b.json'), '{"optim": {"lr": 0.2}, "seed": 0}');
  await writeFile(join(dir, 'bad.yaml'), 'x: [1\n');
  await writeFile(join(dir, 'list.yaml'), '- 1\n- 2\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('danling config', () => {
  it('reads --seed -0 as 0, like seed: -0 in a file', async () => {
    const r = await run(['config', join(dir, 'a.yaml'), '--seed', '-0']);
    expect(r.err).toBe('');
    expect((parse(r.out) as Record<string, unknown>)['seed']).toBe(0);
  });

  it('merges files in order, then overrides, and prints YAML with name, id and runId', async () => {
    const r = await run([
      'config',
      join(dir, 'a.yaml'),
      '--config',
      join(dir, 'b.json'),
      '--optim.lr',
      '0.3',
    ]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const printed = parse(r.out) as Record<string, unknown>;
    expect(printed['optim']).toEqual({ lr: 0.3, name: 'adam' });
    expect(printed['seed']).toBe(0);
    expect(printed['name']).toBe('iris-Run');
    expect(printed['id']).toBe(`xxxxxxxx${String(printed['runId']).slice(0, 8)}`);
    expect(Object.keys(printed).slice(0, 3)).toEqual(['name', 'id', 'runId']);
  });

  it('prints every problem and exits 2', async () => {
    const r = await run(['config', join(dir, 'a.yaml'), '--accumSteps', '0', '--seed', 'x']);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toBe(
      'danling: invalid config (2 problems):\nseed: expected a non-negative integer, got "x"\naccumSteps: expected a positive integer, got 0\n',
    );
  });

  it('warns on a likely typo but still prints the config', async () => {
    const r = await run(['config', '--score_name', 'acc', '--epochEnd', '2']);
    expect(r.code).toBe(0);
    expect(r.err).toBe(
      'danling: warning: score_name: unknown key kept as given; did you mean scoreName?\n',
    );
  });

  it('warns about a config with no end', async () => {
    const r = await run(['config', '--seed', '1']);
    expect(r.code).toBe(0);
    expect(r.err).toBe(
      'danling: warning: epochEnd / stepEnd: the config has no end; a training run refuses to start without epochEnd or stepEnd\n',
    );
  });

  it('prints the id a run would get inside a git repository (the commit as experimentId)', async () => {
    const repo = join(dir, 'repo');
    const git = (...args: string[]) =>
      execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], {
        cwd: repo,
        encoding: 'utf8',
      });
    await mkdir(repo);
    git('init', '-q');
    git('commit', '-q', '--allow-empty', '-m', 'c');
    const commit = git('rev-parse', 'HEAD').trim();
    let out = '';
    const code = await main(['config', '--epochEnd', '2'], {
      out: (t) => (out += t),
      err: () => undefined,
      cwd: repo,
    });
    expect(code).toBe(0);
    const printed = parse(out) as Record<string, unknown>;
    expect(printed['experimentId']).toBe(commit);
    expect(String(printed['id']).slice(0, 8)).toBe(commit.slice(0, 8));
  });

  it('names the file for a missing, broken or non-mapping file', async () => {
    const r = await run([
      'config',
      join(dir, 'nope.yaml'),
      join(dir, 'bad.yaml'),
      join(dir, 'list.yaml'),
    ]);
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      [
        'danling: cannot read the config:',
        `${join(dir, 'nope.yaml')}: no such file; check the path`,
        `${join(dir, 'bad.yaml')}: line 2, column 1: Flow sequence in block collection must be sufficiently indented and end with a ]`,
        `${join(dir, 'list.yaml')}: expected a mapping of config keys at the top level`,
        '',
      ].join('\n'),
    );
  });

  it('rejects an unknown command and bad arguments with status 2', async () => {
    expect((await run(['train'])).code).toBe(2);
    expect((await run(['config', '--config'])).err).toBe(
      'danling: --config: expected a file after --config, e.g. --config run.yaml\nSee danling --help.\n',
    );
  });

  it('config --help lists every known key with its default; --help points to it', async () => {
    expect((await run(['--help'])).out).toBe(helpText());
    expect(helpText()).toContain('danling config --help lists every config key');
    const r = await run(['config', '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toBe(await configHelpText());
    for (const key of Object.keys(KNOWN_KEYS)) expect(r.out).toContain(`--${key} `);
    expect(r.out).toContain('(default: "loss")');
  });
});

describe('README', () => {
  it('documents every known key with its type, default and doc', async () => {
    const { readFile } = await import('node:fs/promises');
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const rows = new Map(
      readme
        .split('\n')
        .filter((line) => line.startsWith('| `'))
        .map((line) =>
          line
            .split('|')
            .slice(1, -1)
            .map((cell) => cell.trim()),
        )
        .map((cells) => [cells[0] ?? '', cells.slice(1)] as const),
    );
    for (const [key, spec] of Object.entries(KNOWN_KEYS)) {
      const dflt = 'default' in spec ? `\`${JSON.stringify(spec.default)}\`` : '—';
      expect(rows.get(`\`${key}\``)).toEqual([spec.codec.name, dflt, spec.doc]);
    }
  });
});

describe('danling', () => {
  it('--version prints the package version', async () => {
    const { readFile } = await import('node:fs/promises');
    const pkg = JSON.parse(
      await readFile(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as {
      version: string;
    };
    expect(await run(['--version'])).toEqual({ code: 0, out: `danling ${pkg.version}\n`, err: '' });
  });

  it('--help lists every command; each command has its own --help', async () => {
    const commands = [
      'config',
      'runs',
      'show',
      'diff',
      'history',
      'ckpt',
      'clean',
      'report',
      'serve',
    ];
    const help = (await run(['--help'])).out;
    for (const c of commands) expect(help).toMatch(new RegExp(`\\n  ${c} +\\S`));
    for (const c of commands.slice(1)) {
      const r = await run([c, '--help']);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(new RegExp(`^Usage: danling ${c} `));
    }
    const unknown = await run(['plot']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toBe(
      `danling: unknown command "plot"; the commands are: ${commands.join(', ')}\n`,
    );
  });

  it('exits 2 and names the command on an unknown option', async () => {
    const r = await run(['show', '--verbose']);
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      'danling show: unknown option --verbose; this command takes --help, --json, --root\nUsage: danling show <run> [--root projectRoot] [--json]\nSee danling show --help.\n',
    );
  });
});
