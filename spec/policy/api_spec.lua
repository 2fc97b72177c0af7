-- The policy endpoints through the real host, PostgreSQL and Redis: search,
-- detail, favorites, recommendations with known answers, and the caches
-- following profile changes and collector runs without a restart.
-- Today is pinned to 2026-07-15 (LIFEPLAN_TODAY) so ages and periods are fixed.
local H     = require "spec.helpers.server"
local S     = require "spec.policy.support"
local cjson = require "cjson"

local RUN = S.run_id
local GYEONGBUK = "47111,47113,47130,47150,47170,47190,47210,47230,47250,47280,47290,47730,47750,47760,47770,47820,47830,47840,47850,47900,47920,47930,47940"

local P = {
  age      = S.record { plcyNm = "울릉 청년 해풍 일자리 " .. RUN, zipCd = "47940", sprtTrgtMinAge = "19", sprtTrgtMaxAge = "34" },
  sido     = S.record { plcyNm = "경북 청년 정착 지원 " .. RUN, lclsfNm = "주거", zipCd = GYEONGBUK },
  sgg      = S.record { plcyNm = "울릉군 청년 주거 " .. RUN, lclsfNm = "주거", zipCd = "47940" },
  median   = S.record { plcyNm = "울릉 중위소득 지원 " .. RUN, lclsfNm = "금융･복지･문화", zipCd = "47940",
                        earnCndSeCd = "0043003", earnEtcCn = "중위소득 100% 이하",
                        aplyPrdSeCd = "0057001", aplyYmd = "20260701 ~ 20260731" },
  annual   = S.record { plcyNm = "울릉 연소득 지원 " .. RUN, lclsfNm = "교육･직업훈련", zipCd = "47940",
                        earnCndSeCd = "0043002", earnMinAmt = "0", earnMaxAmt = "3000" },
  closed   = S.record { plcyNm = "울릉 마감 사업 " .. RUN, zipCd = "47940",
                        aplyPrdSeCd = "0057001", aplyYmd = "20260101 ~ 20260131" },
  percent  = S.record { plcyNm = "달성률 100%_" .. RUN, zipCd = "11680" },
}

local function load(list)
  local dir = H.tmpdir()
  S.write_json(dir .. "/p.json", S.response(list))
  local out, code = S.collect("--source " .. dir .. "/p.json")
  assert(code == 0, out)
  return out
end

local ID = {}

local function ids_of(items, key)
  local set = {}
  for _, it in ipairs(items) do set[(key and it[key] or it).id] = it end
  return set
end

describe("policy API", function()
  local srv

  setup(function()
    load { P.age, P.sido, P.sgg, P.median, P.annual, P.closed, P.percent }
    for k, r in pairs(P) do
      ID[k] = tonumber(S.scalar("SELECT id FROM policies WHERE source = 'ontong' AND external_id = '" .. r.plcyNo .. "'"))
    end
    srv = H.start { env = { LIFEPLAN_TODAY = "2026-07-15" } }
  end)
  teardown(function()
    if srv then srv:stop() end
  end)

  local function get(path, opts)
    local res = srv:request("GET", path, opts)
    return res
  end

  local function recommend(token, query)
    local res = get("/api/v1/policies/recommend?limit=100" .. (query or ""), S.auth(token))
    assert.are.equal(200, res.status, res.body)
    return res.json, ids_of(res.json.items, "policy"), res
  end

  describe("search", function()
    it("finds Korean substrings over title, keywords and description, every term required", function()
      local res = get("/api/v1/policies?q=" .. "%ED%95%B4%ED%92%8D%20" .. RUN) -- "해풍 RUN"
      assert.are.equal(200, res.status)
      assert.are.equal(1, #res.json.items)
      assert.are.equal(ID.age, res.json.items[1].id)
      assert.are.equal("울릉 청년 해풍 일자리 " .. RUN, res.json.items[1].title)
      assert.are.same({ code = "47940", name = "경상북도 울릉군" }, res.json.items[1].region)
      -- description text is searched too
      res = get("/api/v1/policies?q=%ED%85%8C%EC%8A%A4%ED%8A%B8%EC%9A%A9&limit=100") -- "테스트용"
      assert.truthy(ids_of(res.json.items)[ID.age])
    end)

    it("treats SQL and LIKE metacharacters as text", function()
      local res = get("/api/v1/policies?q=" .. "%25_" .. RUN) -- "%_RUN"
      assert.are.equal(200, res.status)
      assert.are.equal(1, #res.json.items)
      assert.are.equal(ID.percent, res.json.items[1].id)
      res = get("/api/v1/policies?q=%27%20OR%201%3D1%20--") -- "' OR 1=1 --"
      assert.are.equal(200, res.status)
      assert.are.equal(0, #res.json.items)
      assert.are.equal("[]", res.body:match('"items":(%[%])'))
      res = get("/api/v1/policies?q=%5C" .. RUN) -- "\RUN"
      assert.are.equal(200, res.status)
      assert.are.equal(0, #res.json.items)
    end)

    it("filters by category, region and status, and pages with a cursor", function()
      local res = get("/api/v1/policies?q=" .. RUN .. "&category=housing&limit=100")
      assert.are.same({ [ID.sido] = true, [ID.sgg] = true }, (function()
        local s = {}
        for _, it in ipairs(res.json.items) do s[it.id] = true end
        return s
      end)())
      res = get("/api/v1/policies?q=" .. RUN .. "&region=11680&limit=100")
      local set = ids_of(res.json.items)
      assert.truthy(set[ID.percent])
      assert.falsy(set[ID.age])
      res = get("/api/v1/policies?q=" .. RUN .. "&region=47&limit=100")
      set = ids_of(res.json.items)
      assert.truthy(set[ID.age] and set[ID.sido])
      assert.falsy(set[ID.percent])
      res = get("/api/v1/policies?q=" .. RUN .. "&status=closed&limit=100")
      assert.are.same({ ID.closed }, { res.json.items[1] and res.json.items[1].id })
      assert.are.equal(1, #res.json.items)
      assert.are.equal("closed", res.json.items[1].status)
      assert.are.equal("2026-01-31", res.json.items[1].applyEnd)
      -- paging: 7 of ours, 3 per page, no repeats, then null
      local seen, cursor, pages = {}, nil, 0
      repeat
        res = get("/api/v1/policies?q=" .. RUN .. "&limit=3" .. (cursor and ("&cursor=" .. cursor) or ""))
        assert.are.equal(200, res.status)
        for _, it in ipairs(res.json.items) do
          assert.is_nil(seen[it.id])
          seen[it.id] = true
        end
        cursor = res.json.nextCursor ~= cjson.null and res.json.nextCursor or nil
        pages = pages + 1
      until not cursor
      assert.are.equal(3, pages)
      local n = 0
      for _ in pairs(seen) do n = n + 1 end
      assert.are.equal(7, n)
    end)

    it("rejects bad parameters", function()
      assert.are.equal(422, get("/api/v1/policies?category=food").status)
      assert.are.equal(422, get("/api/v1/policies?limit=0").status)
      assert.are.equal(422, get("/api/v1/policies?region=99999").status)
      assert.are.equal(400, get("/api/v1/policies?cursor=!!").status)
    end)
  end)

  describe("detail", function()
    it("answers the full policy without a token, 404 for an unknown id", function()
      local res = get("/api/v1/policies/" .. ID.median)
      assert.are.equal(200, res.status)
      local d = res.json
      assert.are.equal("welfare", d.category)
      assert.are.equal("open", d.status)
      assert.are.same({ code = "47940", name = "경상북도 울릉군" }, d.region)
      assert.are.equal("median", d.conditions.income.kind)
      assert.are.equal(100, d.conditions.income.medianPct)
      assert.are.equal("중위소득 100% 이하", d.conditions.income.text)
      assert.are.same({ name = "온통청년", externalId = P.median.plcyNo,
        url = "https://www.youthcenter.go.kr/youthPolicy/ythPlcyTotalSearch/ythPlcyDetail/" .. P.median.plcyNo }, d.source)
      assert.is_nil(d.isFavorite)
      assert.is_nil(d.eligibility)
      assert.are.equal(404, get("/api/v1/policies/999999999").status)
      assert.are.equal(404, get("/api/v1/policies/abc").status)
    end)

    it("adds isFavorite and the user's eligibility with a valid token; 401 for a bad one", function()
      local token = S.user(srv, { birthDate = "1991-07-16", regionCode = "47940", annualIncome = 36000000, householdSize = 1 })
      local res = get("/api/v1/policies/" .. ID.median, S.auth(token))
      assert.are.equal(200, res.status)
      assert.is_false(res.json.isFavorite)
      assert.are.equal("ineligible", res.json.eligibility.status)
      assert.are.equal(401, get("/api/v1/policies/" .. ID.median, S.auth("not-a-token")).status)
    end)
  end)

  describe("favorites", function()
    it("are per user, idempotent both ways, and 404 for an unknown policy", function()
      local a = S.user(srv)
      local b = S.user(srv)
      assert.are.equal(401, srv:request("POST", "/api/v1/policies/" .. ID.age .. "/favorite").status)
      for _ = 1, 2 do
        assert.are.equal(204, srv:request("POST", "/api/v1/policies/" .. ID.age .. "/favorite", S.auth(a)).status)
      end
      assert.are.equal(204, srv:request("POST", "/api/v1/policies/" .. ID.sgg .. "/favorite", S.auth(a)).status)
      local fa = get("/api/v1/policies/favorites", S.auth(a)).json
      assert.are.same({ ID.sgg, ID.age }, { fa.items[1].id, fa.items[2].id })
      assert.are.equal(2, #fa.items)
      local fb = get("/api/v1/policies/favorites", S.auth(b))
      assert.are.equal(200, fb.status)
      assert.are.equal("[]", fb.body:match('"items":(%[%])'))
      assert.is_true(get("/api/v1/policies/" .. ID.age, S.auth(a)).json.isFavorite)
      assert.is_false(get("/api/v1/policies/" .. ID.age, S.auth(b)).json.isFavorite)
      -- b removing a's favourite changes nothing for a
      assert.are.equal(204, srv:request("DELETE", "/api/v1/policies/" .. ID.age .. "/favorite", S.auth(b)).status)
      assert.are.equal(2, #get("/api/v1/policies/favorites", S.auth(a)).json.items)
      for _ = 1, 2 do
        assert.are.equal(204, srv:request("DELETE", "/api/v1/policies/" .. ID.age .. "/favorite", S.auth(a)).status)
      end
      fa = get("/api/v1/policies/favorites", S.auth(a)).json
      assert.are.same({ ID.sgg }, { fa.items[1].id, fa.items[2] and fa.items[2].id })
      assert.are.equal(404, srv:request("POST", "/api/v1/policies/999999999/favorite", S.auth(a)).status)
      assert.are.equal(404, srv:request("DELETE", "/api/v1/policies/999999999/favorite", S.auth(a)).status)
    end)
  end)

  describe("recommend", function()
    it("needs a token", function()
      assert.are.equal(401, get("/api/v1/policies/recommend").status)
    end)

    it("judges age on its edge, region containment and 중위소득 by household size, with Korean reasons", function()
      -- 34 until tomorrow; 3,000,000 a month; 2인 가구 (4,199,292)
      local token = S.user(srv, { birthDate = "1991-07-16", regionCode = "47940", annualIncome = 36000000,
                                  householdSize = 2, employmentStatus = "unemployed" })
      local r, set = recommend(token)
      assert.are.equal("eligible", set[ID.age].eligibility)
      local age_reason
      for _, x in ipairs(set[ID.age].reasons) do if x.condition == "age" then age_reason = x end end
      assert.are.same({ condition = "age", status = "met", detail = "나이 34세: 19~34세 조건 충족" }, age_reason)
      assert.are.equal("eligible", set[ID.sido].eligibility)  -- 경북 covers 울릉군
      assert.are.equal("eligible", set[ID.sgg].eligibility)
      assert.are.equal("eligible", set[ID.median].eligibility) -- 2인 가구: 300만원 ≤ 419만원
      assert.is_nil(set[ID.annual])                          -- 3,600만원 > 3,000만원
      assert.is_nil(set[ID.closed])                          -- closed on 2026-07-15
      assert.is_nil(set[ID.percent])                         -- 서울 강남구 only
      assert.is_number(r.profileVersion)
      -- eligible first, best first
      local last = math.huge
      for _, it in ipairs(r.items) do
        assert.are.equal("eligible", it.eligibility)
        assert.is_true(it.score <= last)
        last = it.score
      end
    end)

    it("is possible, with the missing fields, where the profile lacks what a condition needs", function()
      local token = S.user(srv, { birthDate = "2000-01-01", regionCode = "47" })
      local _, set = recommend(token)
      assert.are.equal("eligible", set[ID.sido].eligibility)
      assert.is_nil(set[ID.sgg])
      assert.is_nil(set[ID.annual])
      -- the same judgement per policy (detail), independent of the ranking
      local function elig(id) return get("/api/v1/policies/" .. id, S.auth(token)).json.eligibility end
      local sgg = elig(ID.sgg)
      assert.are.equal("possible", sgg.status)          -- only the 시도 is known
      assert.are.same({ "regionCode" }, sgg.missingFields)
      local annual = elig(ID.annual)
      assert.are.equal("possible", annual.status)
      assert.truthy(table.concat(annual.missingFields, ","):find("annualIncome", 1, true))
      local unknown
      for _, x in ipairs(annual.reasons) do if x.condition == "income" then unknown = x end end
      assert.are.equal("unknown", unknown.status)
      assert.is_string(unknown.detail)
      -- includePossible adds possible ones after every eligible one
      local r = recommend(token, "&includePossible=true")
      local seen_possible, possible = false, 0
      for _, it in ipairs(r.items) do
        if it.eligibility == "possible" then
          seen_possible, possible = true, possible + 1
          assert.is_true(#it.missingFields > 0 or #it.reasons > 0)
        else
          assert.is_false(seen_possible)
        end
      end
      assert.is_true(r.possibleCount > 0) -- counted even when the page is all eligible
      assert.is_true(possible <= r.possibleCount)
    end)

    it("follows a profile change at once (the cache is keyed by profile version)", function()
      local token = S.user(srv, { birthDate = "1991-07-16", regionCode = "47940", annualIncome = 36000000, householdSize = 2 })
      local r1, set1, res1 = recommend(token)
      assert.are.equal("miss", res1.headers["x-cache"])
      local _, _, res2 = recommend(token)
      assert.are.equal("hit", res2.headers["x-cache"])
      assert.truthy(set1[ID.age] and set1[ID.median])
      local p = srv:request("PUT", "/api/v1/profile", { json = { birthDate = "1991-07-15", householdSize = 1 },
                                                        headers = { Authorization = "Bearer " .. token } })
      assert.are.equal(200, p.status)
      local r3, set3, res3 = recommend(token)
      assert.are.equal("miss", res3.headers["x-cache"])
      assert.is_true(r3.profileVersion > r1.profileVersion)
      assert.is_nil(set3[ID.age])    -- 35 now
      assert.is_nil(set3[ID.median]) -- 1인 가구: 300만원 > 256만원
      assert.truthy(set3[ID.sgg])
    end)

    it("follows a collector run without a restart (NOTIFY → new index, new cache keys)", function()
      local token = S.user(srv, { birthDate = "1995-01-01", regionCode = "47940", annualIncome = 20000000, householdSize = 1 })
      local _, before = recommend(token)
      local fresh = S.record { plcyNm = "울릉 신규 사업 " .. RUN, zipCd = "47940" }
      local title_q = "/api/v1/policies?q=%EC%8B%A0%EA%B7%9C%20" .. RUN -- "신규 RUN"
      assert.are.equal(0, #get(title_q).json.items) -- cached empty answer
      local changed = {}
      for k, v in pairs(P.age) do changed[k] = v end
      changed.sprtTrgtMaxAge = "25" -- now too old for age 31
      load { changed, fresh }
      local fresh_id = tonumber(S.scalar("SELECT id FROM policies WHERE external_id = '" .. fresh.plcyNo .. "'"))
      assert.truthy(before[ID.age])
      local ok = S.eventually(function()
        local _, set = recommend(token)
        return set[fresh_id] and not set[ID.age]
      end, 15)
      assert.truthy(ok)
      local found = S.eventually(function() return #get(title_q).json.items == 1 end, 15)
      assert.truthy(found)
      local d = get("/api/v1/policies/" .. ID.age).json
      assert.are.equal(25, d.conditions.age.max)
    end)
  end)
end)
