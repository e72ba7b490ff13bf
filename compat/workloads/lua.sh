# compat: lua 5.4: tables, string patterns, closures, coroutines, metatables, io and os
# packages: lua5.4,dash
# quick: yes
# timeout: 60
set -eu
lua5.4 - <<'LUA'
print(_VERSION)
local t = {}
for i = 1, 1000 do t[#t + 1] = (i * 7919) % 1000 end
table.sort(t)
print("sorted", t[1], t[500], t[1000], #t)
local words = {}
for w in ("the quick brown fox jumps over the lazy dog the end"):gmatch("%a+") do words[w] = (words[w] or 0) + 1 end
local keys = {}
for k in pairs(words) do keys[#keys + 1] = k end
table.sort(keys)
local parts = {}
for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. words[k] end
print("words", table.concat(parts, " "))
print("gsub", (("hello world"):gsub("o", "0")), ("%5.2f|%d|%s|%q"):format(3.14159, 42, "x", "a\nb"))
local function counter() local n = 0; return function() n = n + 1; return n end end
local c = counter(); c(); c()
print("closure", c())
local co = coroutine.create(function(a) local s = a; while true do local x = coroutine.yield(s); s = s + x end end)
local _, v = coroutine.resume(co, 1)
for i = 1, 10 do _, v = coroutine.resume(co, i) end
print("coroutine", v)
local V = {}
V.__index = V
V.__add = function(a, b) return setmetatable({x = a.x + b.x, y = a.y + b.y}, V) end
V.__tostring = function(a) return "(" .. a.x .. "," .. a.y .. ")" end
print("metatable", tostring(setmetatable({x = 1, y = 2}, V) + setmetatable({x = 3, y = 4}, V)))
print("math", math.maxinteger, 7 // 2, 7 / 2, 2 ^ 10, math.floor(-3.5), string.format("%.3f", math.pi))
print("utf8", utf8.len("héllo"), utf8.char(72, 233))
local f = assert(io.open("lua-out.txt", "w"))
for i = 1, 100 do f:write(i, " ", i * i, "\n") end
f:close()
local n, sum = 0, 0
for line in io.lines("lua-out.txt") do n = n + 1; sum = sum + tonumber(line:match("%d+ (%d+)")) end
print("io", n, sum)
print("os", os.getenv("HOME"), os.time({year = 2024, month = 1, day = 1, hour = 0}), os.date("!%Y-%m-%d", 0))
local p = io.popen("echo from-popen")
print("popen", p:read("l"))
p:close()
print("pcall", pcall(function() error({code = 5}) end), select(2, pcall(error, "msg", 0)))
print("execute", os.execute("exit 3"))
LUA
echo "exit $?"
