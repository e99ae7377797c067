/**
 * The `danling` command line. A thin layer: parsing and printing here, the work in the state
 * and effects modules.
 */
import { readFileSync } from 'node:fs';
import type { KeySpec } from '../state/config/Config.js';
import type { CommandIo } from './args.js';

/** Where the CLI writes: injectable for tests. */
export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Where a run would start (for the git commit that becomes experimentId); default cwd. */
  readonly cwd?: string;
}

/** The subcommands and what each does, for the help text. */
const COMMAND_LIST: readonly (readonly [string, string])[] = [
  ['config', 'print the validated, merged config (below)'],
  ['runs', 'list the runs under a project root: progress, best score, status'],
  ['show', 'one run: config changes, results, checkpoints (verified), starts'],
  ['diff', 'two runs: config by dotted path, results side by side'],
  ['history', "a run's state at any epoch, action or step, replayed; --diff between two"],
  ['ckpt', 'verify a checkpoint file, list its tensors and state'],
  ['clean', 'stale locks and temporary files of dead writers (dry run unless --yes)'],
  ['report', 'one self-contained HTML page: metric curves, runs table'],
  ['serve', 'the report page, live on 127.0.0.1'],
];

/** The subcommands other than config, each loaded only when it runs. */
const COMMANDS: Readonly<
  Record<string, () => Promise<(argv: readonly string[], io: CommandIo) => Promise<number>>>
> = {
  runs: async () => (await import('./runs.js')).runsCommand,
  show: async () => (await import('./show.js')).showCommand,
  diff: async () => (await import('./diff.js')).diffCommand,
  history: async () => (await import('./history.js')).historyCommand,
  ckpt: async () => (await import('./ckpt.js')).ckptCommand,
  clean: async () => (await import('./clean.js')).cleanCommand,
  report: async () => (await import('./report.js')).reportCommand,
  serve: async () => (await import('./serve.js')).serveCommand,
};

/** The package version, read from package.json beside dist/ (or src/). */
export const version = (): string => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: string;
  };
  return pkg.version ?? 'unknown';
};

/**
 * The `--help` text: the commands. It loads nothing (the config keys, whose table needs the
 * config codecs, are in `danling config --help`), so `danling --help` starts fast.
 */
export const helpText = (): string =>
  [
    'Usage: danling <command> [...]   (danling <command> --help for each)',
    '',
    'Commands:',
    ...COMMAND_LIST.map(([name, what]) => `  ${name.padEnd(9)} ${what}`),
    '  --version print the version',
    '',
    'danling config --help lists every config key with its type, default and doc.',
    '',
  ].join('\n');

/** The `danling config --help` text: its usage and every known config key. */
export const configHelpText = async (): Promise<string> => {
  const { KNOWN_KEYS } = await import('../state/config/Config.js');
  const rows = Object.entries(KNOWN_KEYS as Record<string, KeySpec>).map(([name, spec]) => {
    const dflt = spec.default === undefined ? '' : ` (default: ${JSON.stringify(spec.default)})`;
    return `  --${name.padEnd(20)} ${spec.codec.name}: ${spec.doc}${dflt}`;
  });
  return [
    'Usage: danling config [file.yaml|file.json ...] [--config file] [--key value ...]',
    '',
    'Prints the validated, merged config as YAML with its derived name, id and runId.',
    'Files merge in order, then --key value overrides (dotted keys reach into sections:',
    '--optim.lr 0.01, --optim.lr=0.01; values are read as YAML scalars; a bare --flag is true).',
    'Exit status: 0 when the config is valid, 2 on bad input (every problem is listed).',
    '',
    'Known config keys:',
    ...rows,
    '  --dataloader.batchSize  a positive integer: Samples per batch.',
    '',
    'Any other key (optim, model, data, ...) is yours and is kept as given.',
    '',
  ].join('\n');
};

/** Runs the CLI on `argv` (without node and the script). Returns the exit status. */
export const main = async (argv: readonly string[], io: CliIo): Promise<number> => {
  if (argv[0] === '--version' || argv[0] === '-v') {
    io.out(`danling ${version()}\n`);
    return 0;
  }
  const sub = argv[0] === undefined ? undefined : COMMANDS[argv[0]];
  if (sub !== undefined) return (await sub())(argv.slice(1), io);
  if (argv.length === 0 || (argv.length === 1 && (argv[0] === '--help' || argv[0] === '-h'))) {
    // The fast path: the help needs only the known keys, not the config parser.
    io.out(helpText());
    return argv.length === 0 ? 2 : 0;
  }
  const { parseArgs } = await import('../state/config/overrides.js');
  const parsed = parseArgs(argv);
  if (parsed._tag === 'Left') {
    io.err(`danling: ${parsed.left.message}\nSee danling --help.\n`);
    return 2;
  }
  const { positional, configFiles, overrides, help } = parsed.right;
  if (help && positional[0] === 'config') {
    io.out(await configHelpText());
    return 0;
  }
  if (help || positional.length === 0) {
    io.out(helpText());
    return help ? 0 : 2;
  }
  const [command, ...rest] = positional;
  if (command === 'config')
    return (await import('./config.js')).configCommand([...rest, ...configFiles], overrides, io);
  io.err(
    `danling: unknown command ${JSON.stringify(command)}; the commands are: ${COMMAND_LIST.map(([n]) => n).join(', ')}\n`,
  );
  return 2;
};
