// Runs the chart's Argo CD health check and resource actions
// (charts/singleton-operator/argocd/argocd-cm.yaml) with a real Lua 5.4
// interpreter (Debian's lua5.4), the way Argo CD does: the object as the
// global `obj`, the script's return value the answer. The object goes in as
// a generated Lua table literal; an action's returned object comes back as
// JSON through a small encoder. Without lua5.4 the callers skip, saying so.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const ARGOCD_CM = path.join(root, 'charts', 'singleton-operator', 'argocd', 'argocd-cm.yaml');
const HEALTH_KEY = 'resource.customizations.health.singleton.dev_SingletonJob';
const ACTIONS_KEY = 'resource.customizations.actions.singleton.dev_SingletonJob';

export const LUA = process.env.LUA_BIN ?? 'lua5.4';
export const haveLua = spawnSync(LUA, ['-v'], { encoding: 'utf8' }).status === 0;
export const luaMissing = `${LUA} not found (Debian: apt-get install lua5.4; .ci/run installs it)`;

export interface Health {
  status: string;
  message: string;
}

interface Scripts {
  health: string;
  discovery: string;
  actions: Record<string, string>;
}

export function scripts(): Scripts {
  const data = (parse(readFileSync(ARGOCD_CM, 'utf8')) as { data: Record<string, string> }).data;
  const actions = parse(data[ACTIONS_KEY]!) as {
    'discovery.lua': string;
    definitions: { name: string; 'action.lua': string }[];
  };
  return {
    health: data[HEALTH_KEY]!,
    discovery: actions['discovery.lua'],
    actions: Object.fromEntries(actions.definitions.map((d) => [d.name, d['action.lua']])),
  };
}

/** A Lua string literal of `s` (every byte outside printable ASCII, and `"` and `\`, as a decimal escape). */
function luaString(s: string): string {
  let out = '"';
  for (const byte of Buffer.from(s, 'utf8')) {
    out +=
      byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c
        ? String.fromCharCode(byte)
        : `\\${byte.toString().padStart(3, '0')}`;
  }
  return out + '"';
}

/** A Lua table literal of a decoded JSON value (null becomes nil, as in Argo CD's decoding). */
export function luaLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'string') return luaString(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `{${value.map(luaLiteral).join(', ')}}`;
  return `{${Object.entries(value as Record<string, unknown>)
    .map(([k, v]) => `[${luaString(k)}] = ${luaLiteral(v)}`)
    .join(', ')}}`;
}

/** Encodes the script's answer as JSON (tables with keys 1..n as arrays). */
const ENCODER = `
local function encode(v)
  local t = type(v)
  if t == "nil" then return "null" end
  if t == "boolean" or t == "number" then return tostring(v) end
  if t == "string" then
    return '"' .. v:gsub('[%c"\\\\]', function(c) return string.format("\\\\u%04x", c:byte()) end) .. '"'
  end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  if n > 0 and #v == n then
    local parts = {}
    for i = 1, n do parts[i] = encode(v[i]) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local parts = {}
  for k, x in pairs(v) do parts[#parts + 1] = encode(tostring(k)) .. ":" .. encode(x) end
  return "{" .. table.concat(parts, ",") .. "}"
end
`;

function run(script: string, obj: unknown): unknown {
  const program = `${ENCODER}\nobj = ${luaLiteral(obj)}\nlocal answer = (function()\n${script}\nend)()\nio.write(encode(answer))\n`;
  const r = spawnSync(LUA, ['-'], { input: program, encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`${LUA} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

export const health = (obj: unknown): Health => run(scripts().health, obj) as Health;
export const discovery = (obj: unknown): Record<string, { disabled: boolean }> =>
  run(scripts().discovery, obj) as Record<string, { disabled: boolean }>;
export const action = <T>(name: string, obj: T): T => {
  const script = scripts().actions[name];
  if (!script) throw new Error(`no action ${name} in ${ARGOCD_CM}`);
  return run(script, obj) as T;
};
