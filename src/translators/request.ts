import { ConfigError } from '../backends/errors.js';
import { MAX_DATA_FRAGMENTS, MAX_PARITY_FRAGMENTS } from './erasure/codec.js';
import type { TranslatorSettings } from './stack.js';

/** The translator stack a user asks for (at mkfs, or to check a volume at mount). */
export interface TranslatorRequest {
  readonly crypt: boolean;
  readonly erasure?: { readonly k: number; readonly m: number };
}

export const NO_TRANSLATORS: TranslatorRequest = Object.freeze({ crypt: false });

/**
 * Parses `none`, `crypt`, `erasure:4+2`, `crypt,erasure:4+2` (order does not matter: the stack
 * is always crypt above erasure).
 * @param source what to name in the error, e.g. `VOLDFS_TRANSLATORS`
 * @throws ConfigError naming `source` and the accepted forms
 */
export function parseTranslatorRequest(text: string, source: string): TranslatorRequest {
  const form = `use none, crypt, erasure:K+M (e.g. erasure:4+2) or crypt,erasure:K+M`;
  let crypt = false;
  let erasure: TranslatorRequest['erasure'];
  for (const part of text.split(',').map((p) => p.trim().toLowerCase()).filter(Boolean)) {
    if (part === 'none') continue;
    if (part === 'crypt') {
      crypt = true;
      continue;
    }
    const match = /^erasure:(\d+)\+(\d+)$/.exec(part);
    if (!match) throw new ConfigError(`${source}=${text}: "${part}" is not a translator; ${form}`);
    const k = Number(match[1]);
    const m = Number(match[2]);
    if (k < 1 || k > MAX_DATA_FRAGMENTS || m < 1 || m > MAX_PARITY_FRAGMENTS) {
      throw new ConfigError(
        `${source}=${text}: erasure needs 1 to ${MAX_DATA_FRAGMENTS} data and 1 to ${MAX_PARITY_FRAGMENTS} parity fragments`,
      );
    }
    erasure = { k, m };
  }
  return Object.freeze({ crypt, erasure });
}

export function describeRequest(request: TranslatorRequest): string {
  const parts = [request.crypt ? 'crypt' : '', request.erasure ? `erasure:${request.erasure.k}+${request.erasure.m}` : ''];
  return parts.filter(Boolean).join(',') || 'none';
}

/** The request a volume's recorded settings correspond to. */
export function requestOf(settings: TranslatorSettings): TranslatorRequest {
  return {
    crypt: Boolean(settings.crypt),
    erasure: settings.erasure ? { k: settings.erasure.k, m: settings.erasure.m } : undefined,
  };
}

export function sameRequest(a: TranslatorRequest, b: TranslatorRequest): boolean {
  return describeRequest(a) === describeRequest(b);
}
