-- /api/v1/profile, /api/v1/profile/options and /api/v1/regions through the
-- real binary and PostgreSQL.
local H = require "spec.helpers.server"
local A = require "spec.helpers.auth"
local cjson = require "cjson.safe"

local NULL = cjson.null

local function today_seoul()
  return os.date("!*t", os.time() + 9 * 3600)
end

local function date_years_ago(years, day_offset)
  local t = today_seoul()
  local ts = os.time { year = t.year - years, month = t.month, day = t.day + (day_offset or 0), hour = 12 }
  return os.date("%Y-%m-%d", ts)
end

describe("profile", function()
  local srv, u

  setup(function()
    srv = H.start {}
    u = A.register(srv, A.email("prof"))
    assert.are.equal(201, u.status)
  end)
  teardown(function() srv:stop() end)

  local function get(token)
    return srv:request("GET", "/api/v1/profile", { headers = A.bearer(token or u.token) })
  end
  local function put(body, token)
    return srv:request("PUT", "/api/v1/profile", { json = body, headers = A.bearer(token or u.token) })
  end
  local function assert_422(r, field)
    assert.are.equal(422, r.status, r.body)
    assert.are.equal("validation_failed", r.json.code)
    local fields = {}
    for _, e in ipairs(r.json.errors) do fields[e.field] = e.message end
    assert.is_string(fields[field], field .. " in " .. r.body)
  end

  it("GET on a new account: every field null, lists null, version 1, completeness 0, inferred zero", function()
    local v = A.register(srv, A.email("fresh"))
    local r = get(v.token)
    assert.are.equal(200, r.status)
    local p = r.json
    for _, f in ipairs { "birthDate", "regionCode", "employmentStatus", "education", "major", "specialStatus",
                         "maritalStatus", "householdSize", "housingType", "annualIncome", "interests" } do
      assert.are.equal(NULL, p[f], f)
    end
    assert.are.equal(1, p.version)
    assert.are.equal(0, p.completeness)
    assert.are.same({ monthlyIncome = 0, monthlyExpense = 0, basedOnMonths = 0 }, p.inferred)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT", p.updatedAt)
  end)

  it("needs a token", function()
    local r = srv:request("GET", "/api/v1/profile")
    assert.are.equal(401, r.status)
    assert.are.equal('Bearer error="invalid_token"', r.headers["www-authenticate"])
    r = srv:request("PUT", "/api/v1/profile", { json = { householdSize = 1 } })
    assert.are.equal(401, r.status)
  end)

  it("PUT updates only the fields given, bumps version, and GET shows the same", function()
    local v = A.register(srv, A.email("put"))
    local birth = date_years_ago(26)
    local r = put({ birthDate = birth, regionCode = "11680", employmentStatus = "unemployed",
                    education = "university_graduate", major = "engineering",
                    specialStatus = { "woman", "sme_employee" }, maritalStatus = "single",
                    householdSize = 1, housingType = "monthly_rent", annualIncome = 24000000,
                    interests = { "housing", "jobs" } }, v.token)
    assert.are.equal(200, r.status, r.body)
    local p = r.json
    assert.are.equal(2, p.version)
    assert.are.equal(birth, p.birthDate)
    assert.are.equal("11680", p.regionCode)
    assert.are.equal(24000000, p.annualIncome)
    -- lists come back de-duplicated in the order of /profile/options
    assert.are.same({ "sme_employee", "woman" }, p.specialStatus)
    assert.are.same({ "jobs", "housing" }, p.interests)
    assert.are.equal(1, p.completeness)
    assert.are.same(p, get(v.token).json)

    -- a partial update leaves the rest alone
    r = put({ householdSize = 2 }, v.token)
    assert.are.equal(3, r.json.version)
    assert.are.equal(2, r.json.householdSize)
    assert.are.equal("11680", r.json.regionCode)

    -- null clears; completeness drops
    r = put({ major = NULL, specialStatus = NULL }, v.token)
    assert.are.equal(4, r.json.version)
    assert.are.equal(NULL, r.json.major)
    assert.are.equal(NULL, r.json.specialStatus)
    assert.are.equal(0.8, r.json.completeness)

    -- [] is "none of these", distinct from null, and counts as known
    r = put({ specialStatus = {} }, v.token)
    assert.are.equal(5, r.json.version)
    assert.is_truthy(r.body:find('"specialStatus":[]', 1, true))
    assert.are.equal(0.9, r.json.completeness)

    -- no change → no new version; duplicates and order do not make a change
    r = put({ householdSize = 2, interests = { "housing", "jobs", "jobs" } }, v.token)
    assert.are.equal(5, r.json.version)
    r = put({}, v.token)
    assert.are.equal(5, r.json.version)

    -- the server's own fields may be echoed back and are ignored
    local full = get(v.token).json
    r = put(full, v.token)
    assert.are.equal(200, r.status, r.body)
    assert.are.equal(5, r.json.version)
    r = put({ version = 99, completeness = 0, inferred = { monthlyIncome = 5 }, updatedAt = "x" }, v.token)
    assert.are.equal(5, r.json.version)
    assert.are.equal(0, r.json.inferred.monthlyIncome)
  end)

  it("validates birthDate: a real date, not in the future, age 14–100", function()
    for _, bad in ipairs { "1999-13-01", "2001-02-29", "1999-02-30", "19990101", "1999-1-1", 19990101, true,
                           date_years_ago(0, 1), date_years_ago(13), date_years_ago(101) } do
      assert_422(put { birthDate = bad }, "birthDate")
    end
    assert.are.equal(200, put({ birthDate = date_years_ago(14) }).status)
    assert.are.equal(200, put({ birthDate = date_years_ago(100) }).status)
    assert.are.equal(200, put({ birthDate = "2000-02-29" }).status)
  end)

  it("validates regionCode against the regions table and stores old 강원/전북 codes as the new ones", function()
    for _, bad in ipairs { "99999", "11999", "99", "1168", "116800", "abcde", 11680, "42999" } do
      assert_422(put { regionCode = bad }, "regionCode")
    end
    local cases = { ["11680"] = "11680", ["11"] = "11", ["42110"] = "51110", ["42"] = "51",
                    ["45113"] = "52113", ["45"] = "52", ["52790"] = "52790", ["47720"] = "27720",
                    ["36110"] = "36110", ["41192"] = "41192" }
    for given, stored in pairs(cases) do
      local r = put { regionCode = given }
      assert.are.equal(200, r.status, given)
      assert.are.equal(stored, r.json.regionCode, given)
    end
  end)

  it("validates every enumeration against API.md's codes", function()
    local options = srv:request("GET", "/api/v1/profile/options").json
    for _, field in ipairs { "employmentStatus", "education", "major", "maritalStatus", "housingType" } do
      assert_422(put { [field] = "nonsense" }, field)
      assert_422(put { [field] = 3 }, field)
      assert_422(put { [field] = { "single" } }, field)
      for _, o in ipairs(options[field]) do
        local r = put { [field] = o.code }
        assert.are.equal(200, r.status, field .. "=" .. o.code)
        assert.are.equal(o.code, r.json[field])
      end
    end
    for _, field in ipairs { "specialStatus", "interests" } do
      assert_422(put { [field] = "woman" }, field)
      assert_422(put { [field] = { "nonsense" } }, field)
      assert_422(put { [field] = { 1 } }, field)
      assert_422(put { [field] = { a = "jobs" } }, field)
      local all = {}
      for i, o in ipairs(options[field]) do all[i] = o.code end
      local r = put { [field] = all }
      assert.are.equal(200, r.status)
      assert.are.same(all, r.json[field])
    end
  end)

  it("validates householdSize (1–10) and annualIncome (non-negative integer won)", function()
    for _, bad in ipairs { 0, 11, -1, 2.5, "3", true } do assert_422(put { householdSize = bad }, "householdSize") end
    assert.are.equal(1, put({ householdSize = 1 }).json.householdSize)
    assert.are.equal(10, put({ householdSize = 10 }).json.householdSize)
    for _, bad in ipairs { -1, 1.5, "1000", 1e13 } do assert_422(put { annualIncome = bad }, "annualIncome") end
    assert.are.equal(0, put({ annualIncome = 0 }).json.annualIncome)
    assert.are.equal(123456789012, put({ annualIncome = 123456789012 }).json.annualIncome)
  end)

  it("rejects unknown fields, and a failed PUT changes nothing", function()
    local before = get().json
    assert_422(put { nickname = "x" }, "nickname")
    local r = put { householdSize = 3, annualIncome = -5 }
    assert_422(r, "annualIncome")
    assert.are.same(before, get().json)
  end)

  it("answers 400 / 415 / 413 for malformed, non-JSON and oversized bodies", function()
    local r = srv:request("PUT", "/api/v1/profile", { body = "{", headers = {
      Authorization = "Bearer " .. u.token, ["Content-Type"] = "application/json" } })
    assert.are.equal(400, r.status)
    assert.are.equal("bad_request", r.json.code)
    r = srv:request("PUT", "/api/v1/profile", { body = '"str"', headers = {
      Authorization = "Bearer " .. u.token, ["Content-Type"] = "application/json" } })
    assert.are.equal(400, r.status)
    r = srv:request("PUT", "/api/v1/profile", { body = "householdSize=1", headers = {
      Authorization = "Bearer " .. u.token, ["Content-Type"] = "text/plain" } })
    assert.are.equal(415, r.status)
    r = srv:request("PUT", "/api/v1/profile", { body = '{"major":"' .. string.rep("x", 1100000) .. '"}', headers = {
      Authorization = "Bearer " .. u.token, ["Content-Type"] = "application/json" } })
    assert.are.equal(413, r.status)
  end)

  it("another user's token never sees or changes this profile", function()
    local a = A.register(srv, A.email("iso-a"))
    local b = A.register(srv, A.email("iso-b"))
    assert.are.equal(200, put({ householdSize = 4, regionCode = "26350" }, a.token).status)
    local seen = get(b.token).json
    assert.are.equal(NULL, seen.householdSize)
    assert.are.equal(NULL, seen.regionCode)
    assert.are.equal(200, put({ householdSize = 7 }, b.token).status)
    local mine = get(a.token).json
    assert.are.equal(4, mine.householdSize)
    assert.are.equal("26350", mine.regionCode)
    assert.are.equal(2, mine.version)
  end)
end)

describe("profile options and regions", function()
  local srv
  setup(function() srv = H.start {} end)
  teardown(function() srv:stop() end)

  it("GET /profile/options lists API.md's codes with Korean labels, without a token", function()
    local r = srv:request("GET", "/api/v1/profile/options")
    assert.are.equal(200, r.status)
    local expect = {
      employmentStatus = { "employed", "self_employed", "unemployed", "freelancer", "day_laborer", "founder",
                           "short_term", "farmer", "other" },
      education = { "below_high_school", "high_school_student", "high_school_expected", "high_school_graduate",
                    "university_student", "university_expected", "university_graduate", "graduate_degree", "other" },
      major = { "humanities", "social", "business", "natural", "engineering", "arts", "agriculture", "other" },
      specialStatus = { "sme_employee", "woman", "basic_livelihood", "single_parent", "disabled", "farmer",
                        "soldier", "local_talent" },
      maritalStatus = { "single", "married" },
      housingType = { "own_home", "jeonse", "monthly_rent", "with_parents", "dormitory", "other" },
      interests = { "jobs", "housing", "education", "welfare", "participation" },
    }
    for field, codes in pairs(expect) do
      local got = {}
      for i, o in ipairs(r.json[field]) do
        got[i] = o.code
        assert.matches("[\128-\255]", o.label) -- Korean (non-ASCII) label
      end
      assert.are.same(codes, got, field)
    end
    assert.are.equal("재직자", r.json.employmentStatus[1].label)
    assert.are.equal("월세", r.json.housingType[3].label)
  end)

  it("GET /regions lists the 17 시도 and their 시군구 with current codes", function()
    local r = srv:request("GET", "/api/v1/regions")
    assert.are.equal(200, r.status)
    local sido = {}
    local codes, total = {}, 0
    for _, s in ipairs(r.json.items) do
      sido[#sido + 1] = s.code
      assert.is_true(#s.sigungu > 0, s.code)
      for _, g in ipairs(s.sigungu) do
        assert.matches("^%d%d%d%d%d$", g.code)
        assert.are.equal(s.code, g.code:sub(1, 2))
        assert.is_nil(codes[g.code], "duplicate " .. g.code)
        codes[g.code] = g
        total = total + 1
      end
    end
    table.sort(sido)
    assert.are.same({ "11", "26", "27", "28", "29", "30", "31", "36", "41", "43", "44", "46", "47", "48",
                      "50", "51", "52" }, sido)
    assert.is_true(total >= 250, "only " .. total .. " 시군구")
    assert.are.equal("강남구", codes["11680"].name)
    assert.are.equal("춘천시", codes["51110"].name)
    assert.are.equal("전주시", codes["52110"].name)
    assert.are.equal("군위군", codes["27720"].name)
    assert.are.equal("41110", codes["41111"].parentCode)
    assert.are.equal("서귀포시", codes["50130"].name)
    -- 25 구 in Seoul
    local seoul = 0
    for c in pairs(codes) do if c:sub(1, 2) == "11" then seoul = seoul + 1 end end
    assert.are.equal(25, seoul)
    for c in pairs(codes) do
      assert.is_nil(c:match("^4[25]"), "old code " .. c)
    end
  end)

  it("the OpenAPI document describes the auth and profile routes", function()
    local doc = srv:request("GET", "/api/v1/openapi.json").json
    for _, p in ipairs { "/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/refresh",
                         "/api/v1/auth/logout", "/api/v1/auth/account", "/api/v1/profile",
                         "/api/v1/profile/options", "/api/v1/regions" } do
      assert.is_table(doc.paths[p], p)
    end
    assert.is_table(doc.paths["/api/v1/auth/account"].delete)
    assert.is_table(doc.paths["/api/v1/profile"].put)
    assert.is_table(doc.components.schemas.Profile)
    assert.is_table(doc.components.schemas.AuthTokens)
  end)
end)
