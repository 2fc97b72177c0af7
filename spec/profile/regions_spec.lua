-- profile.regions (the codes a profile may hold) against policy.regions (the
-- codes collected policies are stored with): a profile must compare directly
-- with policies, so both modules must agree on every current code and on the
-- old codes they map. Pure data modules: loaded without the host.
package.path = (os.getenv("LIFEPLAN_ROOT") or ".") .. "/modules/?.lua;" .. package.path

local profile_regions = require "profile.regions"
local policy_regions  = require "policy.regions"

-- 인천 districts of before 2026-07 that policy.regions still reads from old data
local OLD_INCHEON = { ["28110"] = true, ["28140"] = true, ["28260"] = true }

describe("profile.regions", function()
  it("lists the same current 시도 and 시군구 as policy.regions, with the same names", function()
    local listed = {}
    for _, s in ipairs(profile_regions.listing) do
      assert.are.equal(policy_regions.SIDO[s.code], s.name, s.code)
      for _, g in ipairs(s.sigungu) do
        listed[g.code] = true
        assert.are.equal(g.code, policy_regions.canonical(g.code), g.code)
        if g.code ~= "36110" then
          assert.are.equal(policy_regions.NAME[g.code], g.fullName, g.code)
        end
      end
    end
    for _, code in ipairs(policy_regions.all_sgg()) do
      if not OLD_INCHEON[code] then assert.is_true(listed[code], code) end
    end
    local sido, sigungu = profile_regions.count()
    assert.are.equal(17, sido)
    assert.are.equal(256, sigungu)
  end)

  it("maps old codes to the same current code as policy.regions does", function()
    for _, code in ipairs { "42110", "42", "45113", "45", "12110", "12210", "12330", "12870" } do
      local mine = profile_regions.normalize(code)
      assert.is_string(mine, code)
      assert.are.equal(policy_regions.canonical(code), mine, code)
    end
    -- 군위군 moved to 대구 in 2023; policy data only has the current code
    assert.are.equal("27720", profile_regions.normalize("47720"))
    assert.are.equal("27720", policy_regions.canonical("27720"))
  end)

  it("refuses a 시 that has 구, and districts split by a reorganisation, saying why", function()
    for code, why in pairs { ["41110"] = "수원시", ["48120"] = "창원시", ["28110"] = "28155",
                             ["28260"] = "28290", ["41590"] = "41591", ["12"] = "29" } do
      local ok, msg = profile_regions.normalize(code)
      assert.is_nil(ok, code)
      assert.is_truthy(msg:find(why, 1, true), code .. ": " .. msg)
    end
  end)
end)
