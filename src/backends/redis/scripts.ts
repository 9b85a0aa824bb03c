import { createHash } from 'node:crypto';

/**
 * Server-side scripts, so that a condition and the write it guards run as one atomic step.
 *
 * A record is a hash `{v: value, r: version}`; the version is random (see redis-store.ts), so
 * a script that finds its own new version already in place knows that an earlier attempt of
 * the same call succeeded (ioredis re-sends commands after a reconnect or a failover) and
 * reports success instead of a conflict.
 *
 * The `#!lua` shebang (Redis 7) makes the server refuse a write script up front when it is
 * out of memory, instead of failing half way through it.
 */
export interface LuaScript {
  readonly name: string;
  readonly source: string;
  readonly sha1: string;
}

function script(name: string, body: string): LuaScript {
  const source = `#!lua\n${body.trim()}\n`;
  return Object.freeze({ name, source, sha1: createHash('sha1').update(source).digest('hex') });
}

/**
 * KEYS[1] = key. ARGV = [condition 'a' (ifAbsent) | 'v' (ifVersion), expected version,
 * new version, value]. Returns 1 if written, 0 if the condition failed.
 */
export const CONDITIONAL_PUT = script(
  'conditional-put',
  `
local current = redis.call('HGET', KEYS[1], 'r')
if current == ARGV[3] then return 1 end
if ARGV[1] == 'a' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[4], 'r', ARGV[3])
return 1
`,
);

/** KEYS[1] = key, ARGV[1] = expected version. Returns 1 if deleted, 0 otherwise. */
export const CONDITIONAL_DELETE = script(
  'conditional-delete',
  `
if redis.call('HGET', KEYS[1], 'r') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
`,
);

/**
 * Atomic multi-key commit (single server only: the keys may lie in any slot).
 * KEYS = n op keys, then the check keys. ARGV[1] = n; then per op four values: condition
 * ('n' none, 'a' ifAbsent, 'v' ifVersion), expected version, new version ('' = delete), value;
 * then per check the expected version ('' = must be absent). Every check and condition is
 * tested before the first write. Returns 1 if applied, 0 if anything failed.
 */
export const COMMIT = script(
  'commit',
  `
local n = tonumber(ARGV[1])
for i = 1, n do
  local a = 2 + 4 * (i - 1)
  if ARGV[a + 2] ~= '' then
    if redis.call('HGET', KEYS[i], 'r') == ARGV[a + 2] then return 1 end
    break
  end
end
local checks = 2 + 4 * n
for j = n + 1, #KEYS do
  local want = ARGV[checks + j - n - 1]
  local current = redis.call('HGET', KEYS[j], 'r')
  if want == '' then
    if current then return 0 end
  elseif current ~= want then
    return 0
  end
end
for i = 1, n do
  local a = 2 + 4 * (i - 1)
  local kind = ARGV[a]
  if kind ~= 'n' then
    local current = redis.call('HGET', KEYS[i], 'r')
    if kind == 'a' then
      if current then return 0 end
    elseif current ~= ARGV[a + 1] then
      return 0
    end
  end
end
for i = 1, n do
  local a = 2 + 4 * (i - 1)
  if ARGV[a + 2] == '' then
    redis.call('DEL', KEYS[i])
  else
    redis.call('HSET', KEYS[i], 'v', ARGV[a + 3], 'r', ARGV[a + 2])
  end
end
return 1
`,
);
