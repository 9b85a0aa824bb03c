import { readFileSync } from 'node:fs';

/** This voldfs's version, from package.json (src/cli and dist/cli are both two levels down). */
export const VOLDFS_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
