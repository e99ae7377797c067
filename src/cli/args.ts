/**
 * The argument parser of the run subcommands: positionals and the flags a command declares.
 * Strict: an unknown flag or a missing value is an error (the CLI exits 2). Pure.
 */
import * as E from 'fp-ts/lib/Either.js';

/** The flags one command takes: booleans (`--json`) and flags with a value (`--epoch 3`). */
export interface FlagSpec {
  readonly booleans?: readonly string[];
  readonly values?: readonly string[];
  /** Short names: `{ o: 'out' }`. */
  readonly aliases?: Readonly<Record<string, string>>;
}

/** Parsed arguments: the positionals in order and the flags given. */
export interface CommandArgs {
  readonly positional: readonly string[];
  readonly flags: Readonly<Record<string, string | true>>;
}

/**
 * Splits `argv` into positionals and declared flags (`--name value`, `--name=value`, `-o value`;
 * `--` ends the flags). Every problem is a message for the usage error.
 */
export const parseCommandArgs = (
  argv: readonly string[],
  spec: FlagSpec,
): E.Either<string, CommandArgs> => {
  const booleans = new Set(['help', ...(spec.booleans ?? [])]);
  const values = new Set(spec.values ?? []);
  const positional: string[] = [];
  const flags: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    const long = /^--([^=]+)(?:=(.*))?$/s.exec(arg);
    const short = /^-([A-Za-z])$/.exec(arg);
    if (long === null && short === null) {
      positional.push(arg);
      continue;
    }
    const name = long !== null ? (long[1] as string) : (spec.aliases?.[short?.[1] ?? ''] ?? '');
    const inline = long?.[2];
    if (name === 'h' || (short !== null && short[1] === 'h')) {
      flags['help'] = true;
      continue;
    }
    if (booleans.has(name)) {
      if (inline !== undefined)
        return E.left(`--${name} takes no value (got ${JSON.stringify(inline)})`);
      flags[name] = true;
    } else if (values.has(name)) {
      const value = inline ?? argv[i + 1];
      if (value === undefined || (inline === undefined && value.startsWith('--')))
        return E.left(`--${name} needs a value`);
      if (inline === undefined) i += 1;
      flags[name] = value;
    } else {
      const known = [...booleans, ...values].map((f) => `--${f}`).join(', ');
      return E.left(`unknown option ${arg}; this command takes ${known}`);
    }
  }
  return E.right({ positional, flags });
};

/** A flag's value as a non-negative integer, or an error naming the flag. */
export const intFlag = (name: string, value: string): E.Either<string, number> => {
  const n = Number(value);
  return /^\d+$/.test(value.trim()) && Number.isSafeInteger(n)
    ? E.right(n)
    : E.left(`--${name}: expected a non-negative integer, got ${JSON.stringify(value)}`);
};

/** Where a command writes (the CLI's io). */
export interface CommandIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly cwd?: string;
}

/** One subcommand: its name, usage line, help text and flags. */
export interface CommandDef {
  readonly name: string;
  readonly usage: string;
  readonly help: string;
  readonly flags: FlagSpec;
}

/**
 * Parses `argv` for `def` and runs `body`: `--help` prints the help (exit 0); a bad option is a
 * usage error (exit 2); `body` reports its own usage errors with {@link usageError}.
 */
export const runCommand = async (
  def: CommandDef,
  argv: readonly string[],
  io: CommandIo,
  body: (args: CommandArgs) => Promise<number>,
): Promise<number> => {
  const parsed = parseCommandArgs(argv, def.flags);
  if (E.isLeft(parsed)) return usageError(def, io, parsed.left);
  if (parsed.right.flags['help'] === true) {
    io.out(`Usage: ${def.usage}\n\n${def.help.trimEnd()}\n`);
    return 0;
  }
  return body(parsed.right);
};

/** Prints a usage error for `def` and returns 2. */
export const usageError = (def: CommandDef, io: CommandIo, message: string): number => {
  io.err(`danling ${def.name}: ${message}\nUsage: ${def.usage}\nSee danling ${def.name} --help.\n`);
  return 2;
};

/** A table: columns padded to their widest cell, two spaces apart. */
export const table = (rows: readonly (readonly string[])[]): string => {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
};
