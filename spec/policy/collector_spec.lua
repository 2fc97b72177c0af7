-- The collector (`lifeplan collect`) against a local 온통청년 stand-in and the
-- real getPlcy records of spec/policy/fixtures, on the real database.
local H = require "spec.helpers.server"
local S = require "spec.policy.support"

local function policy(ext, cols)
  return S.sql("SELECT " .. (cols or "id, title, updated_at") .. " FROM policies WHERE source = 'ontong' AND external_id = '" .. ext .. "'")[1]
end

describe("lifeplan collect", function()
  local up

  before_each(function()
    up = S.ontong({}, "test-key")
  end)
  after_each(function()
    up.stop()
  end)

  it("pages through the API with the key, stores every record and NOTIFYs the new version", function()
    local recs = {}
    for i = 1, 7 do recs[i] = S.record { plcyNm = "페이지 정책 " .. i } end
    up.set(recs)
    local before = tonumber(S.scalar("SELECT version FROM policy_set"))
    local out, code = S.collect("--source " .. up.url .. " --page-size 3", { ONTONG_API_KEY = "test-key" })
    assert.are.equal(0, code, out)
    local s = S.summary(out)
    assert.are.same({ 7, 7, 0, 0, 0 }, { s.fetched, s.inserted, s.updated, s.unchanged, s.skipped })
    assert.is_true(s.version > before)
    local reqs = up.requests()
    assert.are.equal(3, #reqs)
    for i, q in ipairs(reqs) do
      assert.truthy(q:find("apiKeyNm=test-key", 1, true))
      assert.truthy(q:find("pageNum=" .. i, 1, true))
      assert.truthy(q:find("pageSize=3", 1, true))
      assert.truthy(q:find("rtnType=json", 1, true))
    end
    for i = 1, 7 do assert.are.equal("페이지 정책 " .. i, policy(recs[i].plcyNo)[2]) end
    local log = S.sql("SELECT status, fetched, inserted, policy_set_version, source_ref FROM collect_logs WHERE id = " .. s.log)[1]
    assert.are.same({ "succeeded", "7", "7", tostring(s.version) }, { log[1], log[2], log[3], log[4] })
    assert.is_nil(log[5]:find("test-key", 1, true)) -- the key never reaches the log
  end)

  it("ends the run as failed on a resultCode 401 page (HTTP 200) and writes nothing", function()
    up.set { S.record() }
    local rec = up.requests()
    local out, code = S.collect("--source " .. up.url, { ONTONG_API_KEY = "wrong-key" })
    assert.are_not.equal(0, code)
    assert.truthy(out:find("resultCode 401", 1, true), out)
    local s = S.summary(out)
    assert.are.equal(0, s.inserted)
    local log = S.sql("SELECT status, error FROM collect_logs WHERE id = " .. s.log)[1]
    assert.are.equal("failed", log[1])
    assert.truthy(log[2]:find("401", 1, true))
    assert.are.equal(#rec + 1, #up.requests()) -- an auth error is not retried
  end)

  it("retries a page that fails with 503 and then succeeds", function()
    local r = S.record()
    up.set { r }
    up.fail(2)
    local out, code = S.collect("--source " .. up.url, { ONTONG_API_KEY = "test-key" })
    assert.are.equal(0, code, out)
    assert.are.equal(1, S.summary(out).inserted)
    assert.are.equal(3, #up.requests())
    assert.is_not_nil(policy(r.plcyNo))
  end)

  it("gives up after bounded retries and records the error", function()
    up.set { S.record() }
    up.fail(100)
    local out, code = S.collect("--source " .. up.url, { ONTONG_API_KEY = "test-key", COLLECT_RETRIES = "2" })
    assert.are_not.equal(0, code)
    assert.are.equal(3, #up.requests())
    assert.truthy(out:find("gave up after 3 attempts", 1, true), out)
  end)

  it("skips and reports a malformed record without stopping the run or damaging the stored version", function()
    local good, victim = S.record { plcyNm = "정상 정책" }, S.record { plcyNm = "원래 제목" }
    up.set { good, victim }
    local out, code = S.collect("--source " .. up.url, { ONTONG_API_KEY = "test-key" })
    assert.are.equal(0, code, out)
    local before = policy(victim.plcyNo, "title, content_hash, updated_at")

    local broken = {}
    for k, v in pairs(victim) do broken[k] = v end
    broken.plcyNm = "바뀐 제목"
    broken.aplyPrdSeCd, broken.aplyYmd = "0057001", "20261301 ~ 20261399" -- no such dates
    local bad_cat = S.record { lclsfNm = "알수없는분류" }
    local fresh = S.record { plcyNm = "새 정책" }
    up.set { good, broken, "not a record", bad_cat, fresh }
    out, code = S.collect("--source " .. up.url, { ONTONG_API_KEY = "test-key" })
    assert.are.equal(0, code, out)
    local s = S.summary(out)
    assert.are.same({ 5, 1, 0, 1, 3 }, { s.fetched, s.inserted, s.updated, s.unchanged, s.skipped })
    assert.truthy(out:find("skipped " .. victim.plcyNo .. ": aplyYmd", 1, true), out)
    assert.truthy(out:find("lclsfNm", 1, true))
    assert.are.same(before, policy(victim.plcyNo, "title, content_hash, updated_at"))
    assert.is_not_nil(policy(fresh.plcyNo))
    local details = S.scalar("SELECT skipped_details::text FROM collect_logs WHERE id = " .. s.log)
    assert.truthy(details:find(victim.plcyNo, 1, true))
    assert.truthy(details:find(bad_cat.plcyNo, 1, true))
  end)

  it("logs one change_logs row per changed field and leaves unchanged records alone", function()
    local a, b = S.record { plcyNm = "변경 전", sprtTrgtMaxAge = "34", sprtTrgtMinAge = "19" }, S.record()
    up.set { a, b }
    local out = S.collect("--source " .. up.url, { ONTONG_API_KEY = "test-key" })
    local v1 = S.summary(out).version
    local b_before = policy(b.plcyNo, "updated_at, content_hash")
    a.plcyNm, a.sprtTrgtMaxAge = "변경 후", "39"
    b.inqCnt = "999" -- a field we do not keep: not a change
    up.set { a, b }
    local out2, code = S.collect("--source " .. up.url, { ONTONG_API_KEY = "test-key" })
    assert.are.equal(0, code, out2)
    local s = S.summary(out2)
    assert.are.same({ 0, 1, 1 }, { s.inserted, s.updated, s.unchanged })
    assert.is_true(s.version > v1)
    local id = policy(a.plcyNo)[1]
    local rows = S.sql("SELECT field, old_value::text, new_value::text FROM change_logs WHERE collect_log_id = "
      .. s.log .. " AND policy_id = " .. id .. " ORDER BY field")
    assert.are.same({
      { "age_max", "34", "39" },
      { "title", '"변경 전"', '"변경 후"' },
    }, rows)
    assert.are.equal("변경 후", policy(a.plcyNo)[2])
    assert.are.same(b_before, policy(b.plcyNo, "updated_at, content_hash"))
  end)

  it("changes nothing when run again on the same input", function()
    local recs = { S.record(), S.record { lclsfNm = "주거", zipCd = "11110,11140" } }
    up.set(recs)
    S.collect("--source " .. up.url, { ONTONG_API_KEY = "test-key" })
    local snapshot = S.sql("SELECT id, updated_at, content_hash FROM policies WHERE external_id IN ('"
      .. recs[1].plcyNo .. "','" .. recs[2].plcyNo .. "') ORDER BY id")
    local version = S.scalar("SELECT version FROM policy_set")
    local changes = S.scalar("SELECT count(*) FROM change_logs")
    local out, code = S.collect("--source " .. up.url, { ONTONG_API_KEY = "test-key" })
    assert.are.equal(0, code, out)
    local s = S.summary(out)
    assert.are.same({ 2, 0, 0, 2, 0 }, { s.fetched, s.inserted, s.updated, s.unchanged, s.skipped })
    assert.are.same(snapshot, S.sql("SELECT id, updated_at, content_hash FROM policies WHERE external_id IN ('"
      .. recs[1].plcyNo .. "','" .. recs[2].plcyNo .. "') ORDER BY id"))
    assert.are.equal(version, S.scalar("SELECT version FROM policy_set"))
    assert.are.equal(changes, S.scalar("SELECT count(*) FROM change_logs"))
  end)

  it("writes nothing on --dry-run", function()
    local r = S.record()
    local dir = H.tmpdir()
    S.write_json(dir .. "/p.json", S.response { r })
    local out, code = S.collect("--source " .. dir .. "/p.json --dry-run")
    assert.are.equal(0, code, out)
    assert.are.equal(1, S.summary(out).inserted)
    assert.is_nil(policy(r.plcyNo))
    assert.are.equal("t", S.scalar("SELECT dry_run FROM collect_logs WHERE id = " .. S.summary(out).log))
  end)

  it("normalises the real 온통청년 records of the fixtures", function()
    for _, f in ipairs { "ontong_getPlcy_page1_10records_2026-06.json", "ontong_getPlcy_capture_1record_2026-09.json" } do
      local out, code = S.collect("--source " .. H.root .. "/spec/policy/fixtures/" .. f)
      assert.are.equal(0, code, out)
      local s = S.summary(out)
      assert.are.equal(0, s.skipped)
      assert.are.equal(s.fetched, s.inserted + s.updated + s.unchanged)
    end
    local cols = "category, region_codes::text, age_min, age_max, income_kind, income_max, income_median_pct, income_text, apply_period, apply_start, apply_end, employment_codes::text, education_codes::text"
    -- 청년주택드림청약통장: nationwide (255 codes), 연 5,000만원, always open
    assert.are.same({ "housing", "{}", "19", "34", "annual", "50000000", "", "", "always", "", "", "{}", "{}" },
      policy("20260616005400113238", cols))
    -- 서울 중개보수: every 서울 district → 11; 중위소득 150% with the text kept
    assert.are.same({ "housing", "{11}", "19", "39", "median", "", "150",
      "중위소득 150% 이하, 거래금액 2억원 이하 무주택 임차가구", "fixed", "2026-04-01", "2026-04-14", "{}", "{}" },
      policy("20260618005400213241", cols))
    -- 성인진로상담: 1~99 is no age condition; the five 광주 districts → 29
    assert.are.same({ "education", "{29}", "", "", "none", "", "", "", "always", "", "", "{}", "{}" },
      policy("20260618005400213240", cols))
    -- 달서구 행정체험: one 시군구, 미취업자
    assert.are.same({ "jobs", "{27290}", "19", "34", "none", "", "", "", "fixed", "2026-06-15", "2026-06-24", "{unemployed}", "{}" },
      policy("20260622005400213244", cols))
    -- the September capture (256 codes incl. the new 광주·전남 and 인천 ones): nationwide, 대학 재학
    assert.are.same({ "education", "{}", "19", "35", "none", "", "", "", "fixed", "2026-07-01", "2026-11-17", "{}", "{university_student}" },
      policy("20260903005400113371", cols))
    -- the mangled HTML entities of the real aplyUrlAddr are repaired
    local url = policy("20260625005400113245", "apply_url")[1]
    assert.truthy(url:find("&notSrcKeyword=", 1, true))
    assert.truthy(url:find("&currentPageNo=1", 1, true))
  end)
end)
