/**
 * The spec's generic file members, re-exported as one namespace (`io` in `danling/effects`):
 * their names (`json`, `save`, `load`, ...) are too generic for the package's root.
 */
export { json, yaml, fromJson, fromYaml, save, load, unwrap } from './configFiles.js';
