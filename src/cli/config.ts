/** `danling config`: merge config files and overrides, validate, print the config as YAML. */
import * as E from 'fp-ts/lib/Either.js';
import { stringify } from 'yaml';
import { configId, configName } from '../state/config/Config.js';
import { decodeConfigWithWarnings } from '../state/config/decodeConfig.js';
import type { JsonObject } from '../state/Json.js';
import { mergeDeep } from '../state/config/merge.js';
import { applyOverrides } from '../state/config/overrides.js';
import { readConfigFile } from '../effects/storage/configFile.js';
import type { CliIo } from './cli.js';

/** `danling config ...`: merge files and overrides, validate, print. Returns the exit status. */
export const configCommand = async (
  files: readonly string[],
  overrides: Parameters<typeof applyOverrides>[1],
  io: CliIo,
): Promise<number> => {
  let merged: JsonObject = {};
  const problems: string[] = [];
  for (const file of files) {
    const read = await readConfigFile(file);
    if (E.isLeft(read)) problems.push(read.left.message);
    else merged = mergeDeep(merged, read.right as JsonObject, { overwrite: true });
  }
  if (problems.length > 0) {
    io.err(`danling: cannot read the config:\n${problems.join('\n')}\n`);
    return 2;
  }
  let input = applyOverrides(merged, overrides);
  if (input['experimentId'] === undefined) {
    // createRunner fills in the commit hash inside a git repository: print the id it will use.
    const { gitCommit } = await import('../effects/shell/runner.js');
    const commit = await gitCommit(io.cwd ?? process.cwd());
    if (commit !== undefined) input = { ...input, experimentId: commit };
  }
  const decoded = decodeConfigWithWarnings(input);
  if (E.isLeft(decoded)) {
    const n = decoded.left.problems.length;
    io.err(
      `danling: invalid config (${n} problem${n === 1 ? '' : 's'}):\n${decoded.left.message}\n`,
    );
    return 2;
  }
  const { config, warnings } = decoded.right;
  for (const w of warnings) io.err(`danling: warning: ${w.message}\n`);
  if (config.epochEnd === undefined && config.stepEnd === undefined) {
    io.err(
      'danling: warning: epochEnd / stepEnd: the config has no end; a training run refuses to start without epochEnd or stepEnd\n',
    );
  }
  const { runId, ...rest } = config;
  io.out(
    stringify({ name: configName(config), id: configId(config), runId, ...rest }, { lineWidth: 0 }),
  );
  return 0;
};
