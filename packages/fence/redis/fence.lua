-- The singleton-operator fence for Redis: compare the writer's fencing token
-- with the highest token the fence key holds and, atomically, either apply the
-- writes and raise the fence, or refuse them all.
--
-- KEYS[1]        the fence key, e.g. "singleton-fence:{payroll/nightly-payroll}"
--                (one per SingletonJob key, SINGLETON_JOB_KEY; never give it a TTL)
-- KEYS[2..]      the keys the writes touch (in Redis Cluster: same hash tag as the fence key)
-- ARGV[1]        the writer's token, SINGLETON_FENCING_TOKEN (decimal, 1 <= token < 2^53)
-- ARGV[2]        n, the number of write commands, then for each command:
--                  its name (e.g. SET, HSET, DEL), the index in KEYS of its key (>= 2),
--                  m, the number of arguments after the key, then those m arguments
--
-- Reply: {"APPLIED", token} when the token is >= the highest seen (the same
-- token may write again), or {"FENCED", highest} when a higher token has
-- written: nothing was written. Stop, do not retry.
-- A malformed call is an error reply before anything is written. A command
-- that fails at run time (e.g. WRONGTYPE) is an error reply too, but Redis has
-- no rollback: the commands before it stay applied and the fence is not raised.

local token = ARGV[1]
if type(token) ~= 'string' or not string.match(token, '^[1-9][0-9]*$') or #token > 16
    or tonumber(token) >= 9007199254740992 then
  return redis.error_reply('ERR singleton fence: token ' .. tostring(token) .. ' is not an integer 1 <= token < 2^53')
end

local n = tonumber(ARGV[2])
if n == nil or n < 0 or n ~= math.floor(n) then
  return redis.error_reply('ERR singleton fence: ARGV[2] must be the number of write commands')
end
local commands = {}
local i = 3
for c = 1, n do
  local name, keyIndex, m = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  if name == nil or keyIndex == nil or m == nil or m < 0 then
    return redis.error_reply('ERR singleton fence: write command ' .. c .. ' is incomplete')
  end
  if keyIndex < 2 or KEYS[keyIndex] == nil then
    return redis.error_reply('ERR singleton fence: write command ' .. c .. ' must name a key in KEYS[2..]')
  end
  local args = { name, KEYS[keyIndex] }
  for a = 1, m do
    if ARGV[i + 2 + a] == nil then
      return redis.error_reply('ERR singleton fence: write command ' .. c .. ' has fewer than ' .. m .. ' arguments')
    end
    args[#args + 1] = ARGV[i + 2 + a]
  end
  commands[c] = args
  i = i + 3 + m
end
if ARGV[i] ~= nil then
  return redis.error_reply('ERR singleton fence: arguments left over after ' .. n .. ' write commands')
end

local highest = redis.call('GET', KEYS[1])
if highest and tonumber(highest) > tonumber(token) then
  return { 'FENCED', highest }
end
for c = 1, n do
  redis.call(unpack(commands[c]))
end
redis.call('SET', KEYS[1], token)
return { 'APPLIED', token }
