-- policy/regions.lua — 시도 / 시군구 codes as the 온통청년 data uses them
-- (행정표준코드, 5-digit 시군구), their Korean names, and the rules the
-- collector applies to a policy's region list:
--   * old 강원 42 / 전북 45 codes → 51 / 52 (what the matching engine and the
--     profile use);
--   * the 2026-07-01 merger of 광주 and 전남 (new 시도 12) → the 29 / 46 codes
--     still used by profiles and the engine (MOIS notice of the code change);
--   * a list covering (nearly) every 시군구 → nationwide ({});
--   * a list covering every 시군구 of a 시도 → that 2-digit 시도 code.
-- Pure data and functions, no I/O.
local M = {}

M.SIDO = {
  ["11"] = "서울특별시", ["26"] = "부산광역시", ["27"] = "대구광역시", ["28"] = "인천광역시",
  ["29"] = "광주광역시", ["30"] = "대전광역시", ["31"] = "울산광역시", ["36"] = "세종특별자치시",
  ["41"] = "경기도", ["43"] = "충청북도", ["44"] = "충청남도", ["46"] = "전라남도",
  ["47"] = "경상북도", ["48"] = "경상남도", ["50"] = "제주특별자치도", ["51"] = "강원특별자치도",
  ["52"] = "전북특별자치도",
}

-- 시군구 per 시도, in code order (the 255 codes of the real 2026-06 data,
-- plus the 2026-07 인천 districts).
local SGG = {
  ["11"] = { "11110 종로구", "11140 중구", "11170 용산구", "11200 성동구", "11215 광진구",
    "11230 동대문구", "11260 중랑구", "11290 성북구", "11305 강북구", "11320 도봉구",
    "11350 노원구", "11380 은평구", "11410 서대문구", "11440 마포구", "11470 양천구",
    "11500 강서구", "11530 구로구", "11545 금천구", "11560 영등포구", "11590 동작구",
    "11620 관악구", "11650 서초구", "11680 강남구", "11710 송파구", "11740 강동구" },
  ["26"] = { "26110 중구", "26140 서구", "26170 동구", "26200 영도구", "26230 부산진구",
    "26260 동래구", "26290 남구", "26320 북구", "26350 해운대구", "26380 사하구",
    "26410 금정구", "26440 강서구", "26470 연제구", "26500 수영구", "26530 사상구",
    "26710 기장군" },
  ["27"] = { "27110 중구", "27140 동구", "27170 서구", "27200 남구", "27230 북구",
    "27260 수성구", "27290 달서구", "27710 달성군", "27720 군위군" },
  ["28"] = { "28110 중구", "28125 제물포구", "28140 동구", "28155 영종구", "28177 미추홀구",
    "28185 연수구", "28200 남동구", "28237 부평구", "28245 계양구", "28260 서구",
    "28275 서해구", "28290 검단구", "28710 강화군", "28720 옹진군" },
  ["29"] = { "29110 동구", "29140 서구", "29155 남구", "29170 북구", "29200 광산구" },
  ["30"] = { "30110 동구", "30140 중구", "30170 서구", "30200 유성구", "30230 대덕구" },
  ["31"] = { "31110 중구", "31140 남구", "31170 동구", "31200 북구", "31710 울주군" },
  ["36"] = { "36110 세종시" },
  ["41"] = { "41111 수원시 장안구", "41113 수원시 권선구", "41115 수원시 팔달구",
    "41117 수원시 영통구", "41131 성남시 수정구", "41133 성남시 중원구", "41135 성남시 분당구",
    "41150 의정부시", "41171 안양시 만안구", "41173 안양시 동안구", "41192 부천시 원미구",
    "41194 부천시 소사구", "41196 부천시 오정구", "41210 광명시", "41220 평택시",
    "41250 동두천시", "41271 안산시 상록구", "41273 안산시 단원구", "41281 고양시 덕양구",
    "41285 고양시 일산동구", "41287 고양시 일산서구", "41290 과천시", "41310 구리시",
    "41360 남양주시", "41370 오산시", "41390 시흥시", "41410 군포시", "41430 의왕시",
    "41450 하남시", "41461 용인시 처인구", "41463 용인시 기흥구", "41465 용인시 수지구",
    "41480 파주시", "41500 이천시", "41550 안성시", "41570 김포시", "41591 화성시 만세구",
    "41593 화성시 효행구", "41595 화성시 병점구", "41597 화성시 동탄구", "41610 광주시",
    "41630 양주시", "41650 포천시", "41670 여주시", "41800 연천군", "41820 가평군",
    "41830 양평군" },
  ["43"] = { "43111 청주시 상당구", "43112 청주시 서원구", "43113 청주시 흥덕구",
    "43114 청주시 청원구", "43130 충주시", "43150 제천시", "43720 보은군", "43730 옥천군",
    "43740 영동군", "43745 증평군", "43750 진천군", "43760 괴산군", "43770 음성군",
    "43800 단양군" },
  ["44"] = { "44131 천안시 동남구", "44133 천안시 서북구", "44150 공주시", "44180 보령시",
    "44200 아산시", "44210 서산시", "44230 논산시", "44250 계룡시", "44270 당진시",
    "44710 금산군", "44760 부여군", "44770 서천군", "44790 청양군", "44800 홍성군",
    "44810 예산군", "44825 태안군" },
  ["46"] = { "46110 목포시", "46130 여수시", "46150 순천시", "46170 나주시", "46230 광양시",
    "46710 담양군", "46720 곡성군", "46730 구례군", "46770 고흥군", "46780 보성군",
    "46790 화순군", "46800 장흥군", "46810 강진군", "46820 해남군", "46830 영암군",
    "46840 무안군", "46860 함평군", "46870 영광군", "46880 장성군", "46890 완도군",
    "46900 진도군", "46910 신안군" },
  ["47"] = { "47111 포항시 남구", "47113 포항시 북구", "47130 경주시", "47150 김천시",
    "47170 안동시", "47190 구미시", "47210 영주시", "47230 영천시", "47250 상주시",
    "47280 문경시", "47290 경산시", "47730 의성군", "47750 청송군", "47760 영양군",
    "47770 영덕군", "47820 청도군", "47830 고령군", "47840 성주군", "47850 칠곡군",
    "47900 예천군", "47920 봉화군", "47930 울진군", "47940 울릉군" },
  ["48"] = { "48121 창원시 의창구", "48123 창원시 성산구", "48125 창원시 마산합포구",
    "48127 창원시 마산회원구", "48129 창원시 진해구", "48170 진주시", "48220 통영시",
    "48240 사천시", "48250 김해시", "48270 밀양시", "48310 거제시", "48330 양산시",
    "48720 의령군", "48730 함안군", "48740 창녕군", "48820 고성군", "48840 남해군",
    "48850 하동군", "48860 산청군", "48870 함양군", "48880 거창군", "48890 합천군" },
  ["50"] = { "50110 제주시", "50130 서귀포시" },
  ["51"] = { "51110 춘천시", "51130 원주시", "51150 강릉시", "51170 동해시", "51190 태백시",
    "51210 속초시", "51230 삼척시", "51720 홍천군", "51730 횡성군", "51750 영월군",
    "51760 평창군", "51770 정선군", "51780 철원군", "51790 화천군", "51800 양구군",
    "51810 인제군", "51820 고성군", "51830 양양군" },
  ["52"] = { "52111 전주시 완산구", "52113 전주시 덕진구", "52130 군산시", "52140 익산시",
    "52180 정읍시", "52190 남원시", "52210 김제시", "52710 완주군", "52720 진안군",
    "52730 무주군", "52740 장수군", "52750 임실군", "52770 순창군", "52790 고창군",
    "52800 부안군" },
}

-- The districts a 시도 is fully covered by. 인천 lists both the districts of
-- before and after its 2026-07 reorganisation; either set covers the city.
local COVER = {
  ["28"] = { { "28110", "28140", "28177", "28185", "28200", "28237", "28245", "28260", "28710", "28720" },
             { "28125", "28155", "28177", "28185", "28200", "28237", "28245", "28275", "28290", "28710", "28720" } },
}

M.NAME = {}   -- 5-digit code → "서울특별시 강남구"
M.SHORT = {}  -- 5-digit code → "강남구"
for sido, list in pairs(SGG) do
  local codes = {}
  for _, entry in ipairs(list) do
    local code, name = entry:match("^(%d+) (.+)$")
    M.NAME[code] = M.SIDO[sido] .. " " .. name
    M.SHORT[code] = name
    codes[#codes + 1] = code
  end
  if not COVER[sido] then
    -- 대구 군위군 joined in 2023; the real data lists it, older lists do not.
    if sido == "27" then
      COVER[sido] = { codes, { "27110", "27140", "27170", "27200", "27230", "27260", "27290", "27710" } }
    else
      COVER[sido] = { codes }
    end
  end
end

-- 광주·전남 통합 (new 시도 12, from 2026-07-01) → the codes before the merger.
local MERGED_12 = {
  ["12110"] = "46110", ["12130"] = "46130", ["12150"] = "46150", ["12170"] = "46170",
  ["12190"] = "46230", ["12210"] = "29110", ["12240"] = "29140", ["12270"] = "29155",
  ["12300"] = "29170", ["12330"] = "29200", ["12710"] = "46710", ["12720"] = "46720",
  ["12730"] = "46730", ["12740"] = "46770", ["12750"] = "46780", ["12760"] = "46790",
  ["12770"] = "46800", ["12780"] = "46810", ["12790"] = "46820", ["12800"] = "46830",
  ["12810"] = "46840", ["12820"] = "46860", ["12830"] = "46870", ["12840"] = "46880",
  ["12850"] = "46890", ["12860"] = "46900", ["12870"] = "46910",
}

-- One code as stored: 5-digit 시군구 or 2-digit 시도 with the old/merged
-- numbering mapped; nil when it is not a code we know.
function M.canonical(code)
  code = tostring(code or ""):gsub("%s+", "")
  if code:match("^%d%d$") then
    if code == "42" then code = "51" elseif code == "45" then code = "52" end
    return M.SIDO[code] and code or nil
  end
  if not code:match("^%d%d%d%d%d$") then return nil end
  if MERGED_12[code] then return MERGED_12[code] end
  local sido = code:sub(1, 2)
  if sido == "42" then code = "51" .. code:sub(3) elseif sido == "45" then code = "52" .. code:sub(3) end
  if M.NAME[code] then return code end
  return nil
end

-- Nationwide when the source lists at least this many distinct 시군구.
M.NATIONWIDE_MIN = 200

-- A source list ("11110,11140,...") → sorted array of stored codes ({} =
-- nationwide), or nil, reason when a code is not one we know.
function M.normalize_list(s)
  if type(s) ~= "string" then s = "" end
  local set, n = {}, 0
  for raw in s:gmatch("[^,%s]+") do
    local c = M.canonical(raw)
    if not c then return nil, "unknown region code " .. raw end
    if not set[c] then set[c] = true; n = n + 1 end
  end
  if n == 0 or n >= M.NATIONWIDE_MIN then return {} end
  -- a 시도 code covers its districts; a fully covered 시도 becomes its code
  for sido, variants in pairs(COVER) do
    if not set[sido] then
      for _, codes in ipairs(variants) do
        local all = true
        for _, c in ipairs(codes) do if not set[c] then all = false; break end end
        if all then set[sido] = true; break end
      end
    end
  end
  local out = {}
  for c in pairs(set) do
    if #c == 2 or not set[c:sub(1, 2)] then out[#out + 1] = c end
  end
  table.sort(out)
  return out
end

-- The API's `region` of a policy: nil (nationwide); {code, name} of its one
-- region; for several districts of one 시도, that 시도's code with the
-- districts named ("광주광역시 동구, 서구"); else the first code "외 N곳".
-- The detail's `regions` lists every code.
function M.summary(codes)
  if type(codes) ~= "table" or #codes == 0 then return nil end
  if #codes == 1 then
    local c = codes[1]
    return { code = c, name = M.SIDO[c] or M.NAME[c] or c }
  end
  local sido = codes[1]:sub(1, 2)
  for _, c in ipairs(codes) do
    if c:sub(1, 2) ~= sido then sido = nil; break end
  end
  if sido then
    local names = {}
    for i, c in ipairs(codes) do
      if i > 3 then names[#names + 1] = "외 " .. (#codes - 3) .. "곳"; break end
      names[#names + 1] = M.SHORT[c] or M.SIDO[c] or c
    end
    return { code = sido, name = M.SIDO[sido] .. " " .. table.concat(names, ", ") }
  end
  local first = codes[1]
  return { code = first, name = (M.SIDO[first] or M.NAME[first] or first) .. " 외 " .. (#codes - 1) .. "곳" }
end

-- Every known 5-digit code (for the demo generator).
function M.all_sgg()
  local out = {}
  for code in pairs(M.NAME) do out[#out + 1] = code end
  table.sort(out)
  return out
end

return M
