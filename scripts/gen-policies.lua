#!/usr/bin/env luajit
-- scripts/gen-policies.lua — synthetic 온통청년 getPlcy records for load tests
-- and benchmarks, with distributions like the real data (≈2,700 policies:
-- mostly local programmes of one 시군구, a fifth nationwide; age 19~34 or
-- 19~39; most without an income rule; jobs the largest category).
--
--   luajit scripts/gen-policies.lua [COUNT=10000] [OUT=-] [SEED=1] [TODAY=YYYY-MM-DD]
--
-- Writes one getPlcy response ({"resultCode":200,...,"youthPolicyList":[...]})
-- that `lifeplan collect --source OUT` loads. External ids start with 2099 so
-- they never collide with real or demo records; the same seed gives the same
-- set, so re-loading it changes nothing.
local root = arg[0]:match("^(.*)/scripts/[^/]*$") or "."
package.path = root .. "/modules/?.lua;" .. package.path
local cjson   = require "cjson"
local regions = require "policy.regions"

local count = tonumber(arg[1] or "") or 10000
local out = arg[2] or "-"
math.randomseed(tonumber(arg[3] or "") or 1)
local today = arg[4] or os.date("%Y-%m-%d")

local function pick(t) return t[math.random(#t)] end
-- weighted pick: {{weight, value}, ...}
local function wpick(t)
  local sum = 0
  for _, x in ipairs(t) do sum = sum + x[1] end
  local r = math.random() * sum
  for _, x in ipairs(t) do
    r = r - x[1]
    if r <= 0 then return x[2] end
  end
  return t[#t][2]
end

local CATEGORY = {
  { 35, { "일자리", { "취업", "창업" }, { "구직활동 지원금", "일경험 인턴십", "창업 지원금", "취업 역량 강화 교육", "면접 정장 대여", "중소기업 취업 장려금", "청년 창업 공간 입주" } } },
  { 15, { "주거", { "전월세 및 주거급여 지원", "주택 및 거주지" }, { "월세 지원", "전세자금 대출이자 지원", "부동산 중개보수 지원", "신혼부부 주거비 지원", "공공임대 우선 공급", "이사비 지원" } } },
  { 20, { "교육･직업훈련", { "교육비지원", "직업훈련" }, { "자격증 응시료 지원", "어학 시험 응시료 지원", "디지털 역량 교육", "해외 연수", "진로 상담", "학자금 대출이자 지원" } } },
  { 22, { "금융･복지･문화", { "금융", "건강", "문화" }, { "자산형성 통장", "마음건강 상담", "문화 바우처", "교통비 지원", "건강검진 지원", "금융 상담" } } },
  { 8, { "참여･기반", { "청년참여" }, { "청년 정책 참여단", "청년 공간 운영", "청년 네트워크 활동비", "지역 청년 서포터즈" } } },
}

local sgg = regions.all_sgg()
local by_sido = {}
for _, c in ipairs(sgg) do
  local s = c:sub(1, 2)
  by_sido[s] = by_sido[s] or {}
  table.insert(by_sido[s], c)
end
-- local programmes roughly by population
local SIDO_WEIGHT = {
  { 19, "11" }, { 26, "41" }, { 6, "26" }, { 5, "28" }, { 4.5, "27" }, { 3, "29" }, { 3, "30" },
  { 2, "31" }, { 1, "36" }, { 3, "43" }, { 4, "44" }, { 3.5, "46" }, { 5, "47" }, { 6.5, "48" },
  { 1.3, "50" }, { 3, "51" }, { 3.5, "52" },
}

local function ymd(t) return os.date("%Y%m%d", t) end
local y, m, d = today:match("^(%d+)-(%d+)-(%d+)$")
local now = os.time { year = tonumber(y), month = tonumber(m), day = tonumber(d), hour = 12 }
local DAY = 86400

local records = {}
for i = 1, count do
  local cat = wpick(CATEGORY)
  local zip, place
  local scope = wpick { { 20, "nation" }, { 15, "sido" }, { 65, "sgg" } }
  if scope == "nation" then
    zip = table.concat(sgg, ",")
    place = "전국"
  else
    local sido = wpick(SIDO_WEIGHT)
    if scope == "sido" then
      zip = table.concat(by_sido[sido], ",")
      place = regions.SIDO[sido]
    else
      local c = pick(by_sido[sido])
      zip = c
      place = regions.NAME[c]
    end
  end
  local age = wpick { { 50, { 19, 34 } }, { 35, { 19, 39 } }, { 5, { 18, 34 } }, { 5, { 15, 39 } }, { 5, { 0, 0 } } }
  local earn = wpick {
    { 60, { "0043001", 0, 0, "" } },
    { 10, { "0043002", 0, pick { 3000, 3500, 4000, 5000, 6000, 7500 }, "" } },
    { 20, { "0043003", 0, 0, "중위소득 " .. pick { 60, 100, 120, 150, 180 } .. "% 이하" } },
    { 5, { "0043003", 0, 0, "월 " .. pick { 250, 300, 385, 400 } .. "만원 이하" } },
    { 5, { "0043003", 0, 0, "가구 재산 3억원 이하 및 건강보험료 기준 충족" } },
  }
  local job = wpick { { 55, "0013010" }, { 30, "0013003" }, { 10, "0013001" }, { 5, "0013006" } }
  local school = wpick { { 85, "0049010" }, { 10, "0049005" }, { 5, "0049007" } }
  local sbiz = wpick { { 92, "0014010" }, { 4, "0014001" }, { 2, "0014003" }, { 2, "0014002" } }
  local kind = wpick { { 40, "0057002" }, { 50, "0057001" }, { 10, "0057003" } }
  local aply = ""
  if kind == "0057001" then
    local start = now + math.random(-180, 120) * DAY
    aply = ymd(start) .. " ~ " .. ymd(start + math.random(10, 60) * DAY)
  end
  local topic = pick(cat[3])
  local name = string.format("%s 청년 %s", place, topic)
  records[i] = {
    plcyNo = string.format("2099%016d", i),
    plcyNm = name .. (i % 7 == 0 and (" " .. (2026 + i % 2) .. "년") or ""),
    plcyKywdNm = pick { "보조금", "교육지원", "주거지원", "취업지원", "금융", "보조금,취업지원" },
    plcyExplnCn = string.format("%s에 사는 청년을 위한 %s 사업입니다. 신청 자격과 지원 내용을 확인하세요.", place, topic),
    lclsfNm = cat[1], mclsfNm = pick(cat[2]),
    plcySprtCn = pick { "월 20만원, 최대 12개월", "1인 최대 100만원", "연 최대 300만원", "무료 교육 및 상담", "대출이자 연 2% 지원" },
    sprvsnInstCdNm = place == "전국" and pick { "고용노동부", "국토교통부", "보건복지부", "교육부", "금융위원회" } or place,
    operInstCdNm = "", aplyPrdSeCd = kind, aplyYmd = aply, bizPrdBgngYmd = "20260101", bizPrdEndYmd = "20261231",
    plcyAplyMthdCn = "온라인 신청", aplyUrlAddr = "https://www.youthcenter.go.kr",
    refUrlAddr1 = "", refUrlAddr2 = "",
    sprtTrgtMinAge = tostring(age[1]), sprtTrgtMaxAge = tostring(age[2]), sprtTrgtAgeLmtYn = "N",
    mrgSttsCd = wpick { { 95, "0055003" }, { 5, "0055001" } },
    earnCndSeCd = earn[1], earnMinAmt = tostring(earn[2]), earnMaxAmt = tostring(earn[3]), earnEtcCn = earn[4],
    addAplyQlfcCndCn = math.random() < 0.3 and "세부 자격은 공고문을 확인하세요" or "",
    ptcpPrpTrgtCn = "", zipCd = zip, plcyMajorCd = "0011009", jobCd = job, schoolCd = school, sbizCd = sbiz,
    inqCnt = tostring(math.random(0, 5000)),
    frstRegDt = "2026-01-02 09:00:00", lastMdfcnDt = "2026-01-02 09:00:00",
  }
end

local body = cjson.encode { resultCode = 200, resultMessage = "generated by scripts/gen-policies.lua",
  result = { pagging = { totCount = count, pageNum = 1, pageSize = count }, youthPolicyList = records } }
if out == "-" then
  io.write(body)
else
  local f = assert(io.open(out, "w"))
  f:write(body)
  f:close()
  io.stderr:write(string.format("wrote %d policies to %s\n", count, out))
end
