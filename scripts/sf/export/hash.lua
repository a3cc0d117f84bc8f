-- sf.export.hash: a 128-bit hash of a string as 32 hex digits, for the
-- trigger store (has a user's record changed since it was last sent?). Two
-- multiply-xorshift lanes over 32-byte blocks and a murmur3 finaliser: for
-- change detection, not security.
--
--   local hash = require "sf.export.hash"
--   hash("text")  --> "9c1e...": 32 lowercase hex digits
local function fmix(h)
  h = h ~ (h >> 33)
  h = h * -49064778989728563    -- 0xff51afd7ed558ccd
  h = h ~ (h >> 33)
  h = h * -4265267296055464877  -- 0xc4ceb9fe1a85ec53
  return h ~ (h >> 33)
end

local unpack = string.unpack

return function(s)
  local n = #s
  local pad = (32 - n % 32) % 32
  if pad > 0 then s = s .. string.rep("\0", pad) end
  local h1, h2 = -3750763034362895579, 7046029254386353131
  for i = 1, #s, 32 do
    local a, b, c, d = unpack("<i8i8i8i8", s, i)
    h1 = (h1 ~ a) * 1099511628211; h1 = h1 ~ (h1 >> 29)
    h2 = (h2 ~ b) * -7046029254386353131; h2 = h2 ~ (h2 >> 31)
    h1 = (h1 ~ c) * -4658895280553007687; h1 = h1 ~ (h1 >> 27)
    h2 = (h2 ~ d) * 1609587929392839161; h2 = h2 ~ (h2 >> 30)
  end
  h1, h2 = fmix(h1 ~ n), fmix(h2 ~ (n << 1))
  h1, h2 = h1 ~ h2, h2 ~ h1 * 3
  return string.format("%016x%016x", h1, h2)
end
