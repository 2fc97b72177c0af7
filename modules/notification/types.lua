-- notification/types.lua — the shapes of notifications: API JSON, query
-- parameters, paging cursors, the push payload and the Korean texts each
-- kind of notification carries. Pure functions, no I/O.
local json    = require "lp.json"
local crypto  = require "lp.crypto"
local problem = require "shared.problem"

local M = {}

M.TYPES = { policy_match = true, deadline = true, budget = true }

M.DEFAULT_LIMIT = 20
M.MAX_LIMIT     = 100

local function opt(v)
  if v == nil then return json.null end
  return v
end

-- A notifications row (lp.db shape) → the API's notification.
function M.notification(row)
  local data = row.data
  if type(data) ~= "table" then data = {} end
  return {
    id        = row.id,
    type      = row.type,
    title     = row.title,
    body      = row.body,
    data      = data,
    readAt    = opt(row.read_at),
    createdAt = row.created_at,
  }
end

-- What the push gateway receives: the notification plus whose it is.
function M.push_payload(row)
  local n = M.notification(row)
  n.userId = row.user_id
  return n
end

-- Cursors are opaque to clients: the last id of the page, base64url'd.
function M.encode_cursor(id)
  return crypto.b64url_encode("n" .. tostring(id))
end

function M.decode_cursor(s)
  local ok, raw = pcall(crypto.b64url_decode, s)
  local id = ok and type(raw) == "string" and raw:match("^n(%d+)$")
  id = id and tonumber(id)
  if not id or id < 1 or id > 2 ^ 53 then problem.bad_request("cursor is not valid") end
  return id
end

-- GET /notifications query → {unread_only, limit, cursor (id or nil)}.
function M.list_query(q)
  local errors = {}
  local unread = false
  if q.unreadOnly ~= nil and q.unreadOnly ~= "" then
    if q.unreadOnly == "true" then
      unread = true
    elseif q.unreadOnly ~= "false" then
      errors[#errors + 1] = { field = "unreadOnly", message = "must be true or false" }
    end
  end
  local limit = M.DEFAULT_LIMIT
  if q.limit ~= nil and q.limit ~= "" then
    local n = tostring(q.limit):match("^%d+$") and tonumber(q.limit)
    if not n or n < 1 or n > M.MAX_LIMIT then
      errors[#errors + 1] = { field = "limit", message = "must be an integer from 1 to " .. M.MAX_LIMIT }
    else
      limit = n
    end
  end
  if #errors > 0 then problem.validation(errors) end
  local cursor
  if q.cursor ~= nil and q.cursor ~= "" then cursor = M.decode_cursor(q.cursor) end
  return { unread_only = unread, limit = limit, cursor = cursor }
end

-- A path id: a positive integer, or nil (answered 404 like a missing row).
function M.path_id(s)
  if type(s) ~= "string" or not s:match("^%d+$") or #s > 15 then return nil end
  local n = tonumber(s)
  if n < 1 then return nil end
  return n
end

-- ---- texts ----------------------------------------------------------------

local CATEGORY_LABELS = {
  jobs = "일자리", housing = "주거", education = "교육･직업훈련",
  welfare = "금융･복지･문화", participation = "참여･기반",
}

-- A new or changed policy the user is eligible for.
function M.policy_match(policy)
  local label = CATEGORY_LABELS[policy.category]
  local body = string.format("'%s' 정책의 신청 조건을 모두 충족해요.", policy.title)
  local y, m, d = tostring(policy.apply_end or ""):match("^(%d+)-(%d+)-(%d+)$")
  if y then
    body = body .. string.format(" 신청 마감은 %d월 %d일이에요.", tonumber(m), tonumber(d))
  end
  return {
    type  = "policy_match",
    title = label and ("새로운 맞춤 정책: " .. label) or "새로운 맞춤 정책이 있어요",
    body  = body .. " 지금 확인해 보세요.",
    data  = { policyId = policy.id, category = policy.category },
    dedupe_key = "policy_match:" .. policy.id,
  }
end

-- Deadline reminders: SQL builds the per-policy text with format(), so the
-- templates are passed as parameters (%1$s title, %2$s apply end).
M.DEADLINE = {
  [7] = { title = "관심 정책 마감 7일 전",
          body  = "'%1$s' 신청이 %2$s에 마감돼요. 마감 전에 신청을 준비해 보세요." },
  [1] = { title = "관심 정책 마감 하루 전",
          body  = "'%1$s' 신청이 내일(%2$s) 마감돼요. 잊지 말고 신청하세요." },
}

function M.deadline_key(policy_id, apply_end, days)
  return string.format("deadline:%s:%s:%d", policy_id, apply_end, days)
end

return M
