/**
 * Warnings are values, like errors: a tag naming what happened and a message that names the
 * file, the field and what to do. Effects return them; the shell logs them (`logger.warn`).
 *
 * Tag rule (errors and warnings alike): PascalCase, the subject first and what happened to it
 * second (`CheckpointCorrupt`, `ConfigKeyUnknown`, `MetricsTornLine`); no `Error` suffix on a
 * tag (the union types of a family are named `...Error`).
 */
export interface Warning<Tag extends string = string> {
  readonly _tag: Tag;
  readonly message: string;
}

/** The one constructor of a warning. */
export const warning = <Tag extends string>(tag: Tag, message: string): Warning<Tag> => ({
  _tag: tag,
  message,
});
