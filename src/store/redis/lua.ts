import type { CounterLayout } from '../counter-store.ts';
import { ringShape } from '../memory/ring-series.ts';

// The Lua scripts of the Redis counter store. Each CounterStore operation is ONE
// EVALSHA: the script reads, decides and writes a sender's keys atomically on the
// server, so concurrent nodes can never both admit "the last message" of a limit.
//
// The scripts reproduce the embedded store (src/store/memory/) exactly:
//   - rate rings: per window `subBuckets + 1` sub-bucket cells, one shared last-update
//     time per sender, Uint16 cells that saturate at 65,535; stored packed (struct,
//     little-endian uint16) in one hash field, in the memory store's cell order;
//   - breach and auth-failure rings of 4 sub-buckets;
//   - source addresses: a ZSET ip -> last-seen second (at most MAX_IPS, the least
//     recently seen is forgotten) plus a hash ip -> "count|first|country|lat|lon";
//     distinct IPs in a window = ZCOUNT (last-seen > now - window), exact while the
//     sender has fewer than HLL_T addresses; from then on per-bucket HyperLogLogs
//     (see docs/distributed.md) and the count is max(exact retained, PFCOUNT);
//   - countries: a ZSET country -> last-seen second (exact: there are few countries);
//   - baseline EWMA value and time, first-seen time, in the same hash;
//   - the suspended flag in its own key, without expiry tied to traffic.
// Layout constants are baked into the script text, so a layout change is a new SHA.
//
// Every key of a sender shares the hash tag `{s:<sender>}`: one Redis Cluster slot.
// The observe script declares the sender's counters hash and the index key; the sender's
// other keys (flag, addresses, countries, HLL buckets) are derived from the declared hash
// by name, keep its hash tag and so live in the same slot (which Redis Cluster accepts;
// tested against a real Cluster in test/conformance/redis-cluster.test.ts).

export const MAX_IPS = 256;
/** HLL buckets per distinct window (like the breach ring: 4 steps). */
export const HLL_SUB = 4;

export interface ScriptParams {
  readonly layout: CounterLayout;
  /** Seconds a sender's counter keys live after its last event. */
  readonly counterTtl: number;
  /** Seconds an index bucket (day) lives. */
  readonly indexTtl: number;
  /** Distinct-IP count above which HyperLogLogs are kept. */
  readonly hllThreshold: number;
}

export function counterTtlFor(layout: CounterLayout): number {
  const longest = Math.max(
    ...layout.windows.map((w) => w + ringShape(w, layout.subBuckets).bucket),
    layout.breachWindow * 1.25 + 1,
    layout.authFailureWindow * 1.25 + 1,
    ...layout.distinctWindows.map((d) => d * 1.25 + 1),
    layout.baselineTau,
  );
  // As the embedded store's idle eviction: the longest horizon plus a day.
  return Math.ceil(longest) + 86400;
}

function header(p: ScriptParams): string {
  const l = p.layout;
  const shapes = l.windows.map((w) => ringShape(w, l.subBuckets));
  const offsets: number[] = [];
  let off = 0;
  for (const s of shapes) {
    offsets.push(off);
    off += 2 * s.cells;
  }
  const breach = ringShape(l.breachWindow, 4);
  const breachOff = off;
  off += breach.cells;
  const auth = ringShape(l.authFailureWindow, 4);
  const authOff = off;
  off += auth.cells;
  const hllBucket = l.distinctWindows.map((d) => Math.max(1, Math.ceil(d / HLL_SUB)));
  const arr = (xs: readonly number[]): string => `{${xs.join(',')}}`;
  return `
local NW = ${l.windows.length}
local WIN = ${arr(l.windows)}
local RB = ${arr(shapes.map((s) => s.bucket))}
local RC = ${l.subBuckets + 1}
local ROFF = ${arr(offsets.map((o) => o + 1))}
local BB, BC, BOFF = ${breach.bucket}, ${breach.cells}, ${breachOff + 1}
local AB, AC, AOFF = ${auth.bucket}, ${auth.cells}, ${authOff + 1}
local STRIDE = ${off}
local FMT = '<' .. string.rep('H', STRIDE)
local ND = ${l.distinctWindows.length}
local DW = ${arr(l.distinctWindows)}
local HB = ${arr(hllBucket)}
local HSUB = ${HLL_SUB}
local TAU = ${l.baselineTau}
local CTTL = ${p.counterTtl * 1000}
local ITTL = ${p.indexTtl * 1000}
local MAX_IPS = ${MAX_IPS}
local HLL_T = ${p.hllThreshold}
local CELL_MAX = 65535
-- Refusal and failed-login cells saturate like the embedded store's 8-bit cells.
local EVENT_MAX = 255

local function loadCells(packed)
  local c = {}
  if packed then
    c = {struct.unpack(FMT, packed)}
    c[STRIDE + 1] = nil
  else
    for i = 1, STRIDE do c[i] = 0 end
  end
  return c
end

-- ring-series.ts advance(): bring a ring last moved at prevSec to nowSec.
local function advance(c, base, bucket, ncells, prevSec, nowSec)
  local prev = math.floor(prevSec / bucket)
  local idx = math.floor(nowSec / bucket)
  if prevSec == 0 or idx - prev >= ncells then
    for i = 0, ncells - 1 do c[base + i] = 0 end
    return base + (idx % ncells)
  end
  if idx <= prev then return base + (prev % ncells) end
  for i = prev + 1, idx do c[base + (i % ncells)] = 0 end
  return base + (idx % ncells)
end

local function ringSum(c, base, ncells)
  local s = 0
  for i = 0, ncells - 1 do s = s + c[base + i] end
  return s
end

-- ring-series.ts sumAt(): the count a reader sees at nowSec without moving the ring.
local function sumAt(c, base, bucket, ncells, prevSec, nowSec)
  if prevSec == 0 then return 0 end
  local prev = math.floor(prevSec / bucket)
  local idx = math.max(prev, math.floor(nowSec / bucket))
  local s = 0
  for b = math.max(idx - ncells + 1, prev - ncells + 1), prev do s = s + c[base + (b % ncells)] end
  return s
end

local function addSat(c, at, n, max)
  local v = c[at] + n
  if v > max then v = max end
  c[at] = v
end

local function isSuspended(v)
  return v ~= false and v ~= nil and string.sub(v, 1, 1) == '1'
end

-- Distinct addresses in each distinct window: exact from the ZSET, or with HyperLogLogs
-- (per-bucket keys ipz..':'..window..':'..bucket, PFCOUNT over the window's buckets).
local function distinctIps(ipz, now, card)
  local out = {}
  for d = 1, ND do
    local n = redis.call('ZCOUNT', ipz, '(' .. (now - DW[d]), '+inf')
    if card >= HLL_T then
      local cur = math.floor(now / HB[d])
      local keys = {}
      for b = cur - HSUB, cur do keys[#keys + 1] = ipz .. ':' .. DW[d] .. ':' .. b end
      local approx = redis.call('PFCOUNT', unpack(keys))
      if approx > n then n = approx end
    end
    out[d] = n
  end
  return out
end

-- Members seen within each distinct window (countries, networks): ZSET member -> last second.
local function distinctCountries(ccz, now)
  local out = {}
  for d = 1, ND do out[d] = redis.call('ZCOUNT', ccz, '(' .. (now - DW[d]), '+inf') end
  return out
end

local function splitStat(s)
  local count, first, cc, lat, lon = string.match(s, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  return tonumber(count) or 0, tonumber(first) or 0, cc or '', lat or '', lon or ''
end
`;
}

/**
 * observe. KEYS: 1 counters hash (`<prefix>:{s:<id>}:c`; the sender's other keys are
 * derived from it and share its hash tag), 2 index bucket. ARGV: one string of fields
 * separated by newlines (fewer arguments to encode and parse: measured 3-5 µs less client CPU
 * per call): now (s), stage (r|m|a), authOk (0|1), messages, recipients, ip ('' = none),
 * hasPlace (0|1), country, lat, lon (hundredths, '' = none), limits as
 * "m,r,m,r,...", the address's network (src/store/source-prefix.ts; '' = none), opens (0|1:
 * counter-store.ts opensTransaction), and last the sender (the rest of the string, whatever
 * it contains).
 */
export function observeScript(p: ScriptParams): string {
  return `${header(p)}
local H, IDX = KEYS[1], KEYS[2]
local base = string.sub(H, 1, -2)
local SUS, IPZ, IPD, CCZ = base .. 'sus', base .. 'ip', base .. 'ipd', base .. 'cc'
local a = ARGV[1]
local f = {}
local pos = 1
for i = 1, 13 do
  local nl = string.find(a, '\\n', pos, true)
  f[i] = string.sub(a, pos, nl - 1)
  pos = nl + 1
end
local now = tonumber(f[1])
local stage = f[2]
local authOk = f[3] == '1'
local msgs = tonumber(f[4])
local rcpts = tonumber(f[5])
local ip = f[6]
local hasPlace = f[7] == '1'
local pcc, plat, plon = f[8], f[9], f[10]
local lims = {}
for v in string.gmatch(f[11], '[^,]+') do lims[#lims + 1] = tonumber(v) end
local pfx = f[12]
local opens = f[13] == '1'
local PXZ, PXF = base .. 'px', base .. 'pxf'
local sender = string.sub(a, pos)
local nlim = #lims / 2

local h = redis.call('HMGET', H, 'r', 'l', 'f', 'bv', 'bt')
local c = loadCells(h[1])
local prevSec = tonumber(h[2]) or 0
local first = tonumber(h[3]) or 0
if first == 0 then first = now end
local lastSec = prevSec
if now > prevSec then lastSec = now end
-- Expiry times and the activity index are refreshed at most once a minute per sender
-- (and whenever a key is created), which saves most of their cost.
local fresh = prevSec == 0 or math.floor(now / 60) ~= math.floor(prevSec / 60)

local before = {}
local cur = {}
for w = 1, NW do
  local base = ROFF[w]
  cur[w] = advance(c, base, RB[w], RC, prevSec, now)
  advance(c, base + RC, RB[w], RC, prevSec, now)
  before[w] = {ringSum(c, base, RC), ringSum(c, base + RC, RC)}
end

local suspended = isSuspended(redis.call('GET', SUS))
local exW, exSeries, exCount, exLimit = 0, '', 0, 0
if stage ~= 'a' and not suspended then
  for w = 1, math.min(nlim, NW) do
    local lm = lims[2 * w - 1]
    local lr = lims[2 * w]
    if msgs > 0 and before[w][1] + msgs > lm then
      exW, exSeries, exCount, exLimit = w, 'messages', before[w][1], lm
      break
    elseif rcpts > 0 and before[w][2] + rcpts > lr then
      exW, exSeries, exCount, exLimit = w, 'recipients', before[w][2], lr
      break
    end
  end
end
local admitted = exW == 0 and not suspended

local after = before
if stage == 'm' and admitted then
  after = {}
  for w = 1, NW do
    addSat(c, cur[w], msgs, CELL_MAX)
    addSat(c, cur[w] + RC, rcpts, CELL_MAX)
    after[w] = {before[w][1] + msgs, before[w][2] + rcpts}
  end
end

local bAt = advance(c, BOFF, BB, BC, prevSec, now)
if exW > 0 and opens then addSat(c, bAt, 1, EVENT_MAX) end
local breaches = ringSum(c, BOFF, BC)

local aAt = advance(c, AOFF, AB, AC, prevSec, now)
local authFailures = ringSum(c, AOFF, AC)
if stage == 'a' and not authOk then addSat(c, aAt, 1, EVENT_MAX) end

local bv = tonumber(h[4]) or 0
local bt = tonumber(h[5]) or 0
local rate = 0
if bv ~= 0 then
  local dt = now - bt
  if dt < 0 then dt = 0 end
  rate = bv * math.exp(-dt / TAU) / TAU * 3600
end
-- Write back only when something changed: a cell was added to, a ring moved to a new
-- bucket (cells were cleared), the sender is new, or a minute passed (so the last-update
-- time is never more than a minute old). Keeping an older last-update time within the
-- same buckets of every ring changes nothing: the rings depend only on bucket numbers.
local dirty = fresh or not h[1] or (stage == 'm' and admitted) or (exW > 0 and opens) or (stage == 'a' and not authOk)
if not dirty then
  for w = 1, NW do
    if math.floor(now / RB[w]) > math.floor(prevSec / RB[w]) then dirty = true break end
  end
  if math.floor(now / BB) > math.floor(prevSec / BB) or math.floor(now / AB) > math.floor(prevSec / AB) then dirty = true end
end
if dirty then
  local fields = {'r', struct.pack(FMT, unpack(c)), 'l', lastSec, 'f', first}
  if stage == 'm' and admitted then
    fields[#fields + 1] = 'bv'
    fields[#fields + 1] = string.format('%.17g', rate * TAU / 3600 + msgs)
    fields[#fields + 1] = 'bt'
    fields[#fields + 1] = now
  end
  redis.call('HSET', H, unpack(fields))
end
if fresh then redis.call('PEXPIRE', H, CTTL) end

-- The last place seen from another address (impossible-travel checks).
local prev = {'', '', '', '', 0}
if hasPlace and ip ~= '' then
  local start = 0
  local found = false
  while not found do
    local batch = redis.call('ZREVRANGE', IPZ, start, start + 7, 'WITHSCORES')
    if #batch == 0 then break end
    for i = 1, #batch, 2 do
      if batch[i] ~= ip then
        local st = redis.call('HGET', IPD, batch[i])
        if st then
          local _, _, scc, slat, slon = splitStat(st)
          if scc ~= '' then
            prev = {batch[i], scc, slat, slon, tonumber(batch[i + 1])}
            found = true
            break
          end
        end
      end
    end
    start = start + 8
  end
end

-- An address counts once per transaction (first RCPT) and per successful login.
local card = 0
if ip ~= '' and ((stage == 'r' and opens) or (stage == 'a' and authOk)) then
  local st = redis.call('HGET', IPD, ip)
  local count, firstS, scc, slat, slon = 0, now, '', '', ''
  if st then count, firstS, scc, slat, slon = splitStat(st) end
  if hasPlace then scc, slat, slon = pcc, plat, plon end
  redis.call('HSET', IPD, ip, (count + 1) .. '|' .. firstS .. '|' .. scc .. '|' .. slat .. '|' .. slon)
  redis.call('ZADD', IPZ, now, ip)
  card = redis.call('ZCARD', IPZ)
  local crossed = (not st) and card == HLL_T
  if card > MAX_IPS then
    local gone = redis.call('ZPOPMIN', IPZ, card - MAX_IPS)
    for i = 1, #gone, 2 do redis.call('HDEL', IPD, gone[i]) end
    card = MAX_IPS
  end
  if scc ~= '' and scc ~= '--' then
    if redis.call('ZADD', CCZ, now, scc) == 1 or fresh then redis.call('PEXPIRE', CCZ, CTTL) end
  end
  -- Source networks (/24, /48): last seen and first seen, at most MAX_IPS kept.
  if pfx ~= '' then
    local newPfx = redis.call('ZADD', PXZ, now, pfx) == 1
    if newPfx then
      redis.call('HSET', PXF, pfx, now)
      local pc = redis.call('ZCARD', PXZ)
      if pc > MAX_IPS then
        local gone = redis.call('ZPOPMIN', PXZ, pc - MAX_IPS)
        for i = 1, #gone, 2 do redis.call('HDEL', PXF, gone[i]) end
      end
    end
    if newPfx or fresh then
      redis.call('PEXPIRE', PXZ, CTTL)
      redis.call('PEXPIRE', PXF, CTTL)
    end
  end
  if card >= HLL_T then
    for d = 1, ND do
      local curB = math.floor(now / HB[d])
      local ttl = (DW[d] + 2 * HB[d]) * 1000
      if crossed then
        -- Just crossed the threshold: seed the buckets with the retained addresses.
        local members = redis.call('ZRANGEBYSCORE', IPZ, '(' .. ((curB - HSUB) * HB[d] - 1), '+inf', 'WITHSCORES')
        for i = 1, #members, 2 do
          local b = math.floor(tonumber(members[i + 1]) / HB[d])
          if b >= curB - HSUB and b <= curB then
            local k = IPZ .. ':' .. DW[d] .. ':' .. b
            redis.call('PFADD', k, members[i])
            redis.call('PEXPIRE', k, ttl)
          end
        end
      else
        local k = IPZ .. ':' .. DW[d] .. ':' .. curB
        redis.call('PFADD', k, ip)
        redis.call('PEXPIRE', k, ttl)
      end
    end
  end
  if fresh or not st then
    redis.call('PEXPIRE', IPZ, CTTL)
    redis.call('PEXPIRE', IPD, CTTL)
  end
else
  card = redis.call('ZCARD', IPZ)
end

local dIps = distinctIps(IPZ, now, card)
local dCc = distinctCountries(CCZ, now)
local dPx = distinctCountries(PXZ, now)
local pfxFirst = -1
if pfx ~= '' then pfxFirst = tonumber(redis.call('HGET', PXF, pfx)) or -1 end

if fresh and redis.call('ZADD', IDX, now, sender) == 1 then redis.call('PEXPIRE', IDX, ITTL) end

local out = {suspended and 1 or 0, admitted and 1 or 0, exW, exSeries, exCount, exLimit, breaches, authFailures,
  now - first, string.format('%.17g', rate), prev[1], prev[2], prev[3], prev[4], prev[5]}
for w = 1, NW do
  out[#out + 1] = after[w][1]
  out[#out + 1] = after[w][2]
end
for d = 1, ND do out[#out + 1] = dIps[d] end
for d = 1, ND do out[#out + 1] = dCc[d] end
for d = 1, ND do out[#out + 1] = dPx[d] end
out[#out + 1] = pfxFirst
return out
`;
}

/**
 * peek (read-only). KEYS: 1 counters hash, 2 suspended flag, 3 address ZSET, 4 country ZSET.
 * ARGV: now. Returns suspended, then messages/recipients per window, distinct IPs, distinct countries.
 */
export function peekScript(p: ScriptParams): string {
  return `${header(p)}
local H, SUS, IPZ, CCZ = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = tonumber(ARGV[1])
local h = redis.call('HMGET', H, 'r', 'l')
local out = {isSuspended(redis.call('GET', SUS)) and 1 or 0}
local c = loadCells(h[1])
local prevSec = tonumber(h[2]) or 0
for w = 1, NW do
  out[#out + 1] = sumAt(c, ROFF[w], RB[w], RC, prevSec, now)
  out[#out + 1] = sumAt(c, ROFF[w] + RC, RB[w], RC, prevSec, now)
end
local dIps = distinctIps(IPZ, now, redis.call('ZCARD', IPZ))
local dCc = distinctCountries(CCZ, now)
for d = 1, ND do out[#out + 1] = dIps[d] end
for d = 1, ND do out[#out + 1] = dCc[d] end
return out
`;
}

/**
 * The value of one top metric for one sender (read-only). KEYS: 1 counters hash,
 * 2 address ZSET, 3 country ZSET. ARGV: now, metric (m|r|i|c), window index (1-based,
 * for m|r) or window seconds (for i|c).
 */
export function topValueScript(p: ScriptParams): string {
  return `${header(p)}
local H, IPZ, CCZ = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[1])
local metric = ARGV[2]
local arg = tonumber(ARGV[3])
if metric == 'i' then return redis.call('ZCOUNT', IPZ, '(' .. (now - arg), '+inf') end
if metric == 'c' then return redis.call('ZCOUNT', CCZ, '(' .. (now - arg), '+inf') end
local h = redis.call('HMGET', H, 'r', 'l')
if not h[1] then return 0 end
local c = loadCells(h[1])
local base = ROFF[arg]
if metric == 'r' then base = base + RC end
return sumAt(c, base, RB[arg], RC, tonumber(h[2]) or 0, now)
`;
}

/**
 * Suspended flag. KEYS: 1 flag. ARGV: mode (set|clear|resync), ttl ms (set/resync),
 * tombstone ttl ms, resync start (ms, Redis time). The value is "1:<ms>" (suspended) or
 * "0:<ms>" (released; a tombstone so that a resync that read PostgreSQL before the
 * release cannot re-suspend the sender). Times come from Redis TIME.
 */
export const SUSPEND_SCRIPT = `
local k = KEYS[1]
local mode = ARGV[1]
local t = redis.call('TIME')
local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if mode == 'set' then
  redis.call('SET', k, '1:' .. nowMs, 'PX', ARGV[2])
  return 1
elseif mode == 'clear' then
  redis.call('SET', k, '0:' .. nowMs, 'PX', ARGV[3])
  return 0
end
-- resync: re-assert an open suspension read from PostgreSQL at ARGV[4].
local v = redis.call('GET', k)
if v and string.sub(v, 1, 1) == '0' and tonumber(string.sub(v, 3)) >= tonumber(ARGV[4]) then return 0 end
redis.call('SET', k, '1:' .. (v and string.sub(v, 1, 1) == '1' and string.sub(v, 3) or nowMs), 'PX', ARGV[2])
return 1
`;

/** Redis time in ms (for resync). */
export const TIME_SCRIPT = `
local t = redis.call('TIME')
return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;
