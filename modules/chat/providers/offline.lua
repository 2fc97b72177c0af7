-- chat/providers/offline.lua — the responder that needs no model: it writes
-- a Korean answer from the flow's own context with the flow's template
-- (the top matching policies with their reasons, this month's spending by
-- category...) and says plainly that it is a summary. It is the provider
-- when no API key is set, and the fallback when a real provider fails
-- (then the message is stored with degraded = true).
--
-- Interface: see providers/anthropic.lua; it also reads req.flow, req.ctx
-- and req.degraded.
local M = {}

local NOTE = "※ 저장된 정보로 정리한 요약 답변입니다."
local NOTE_DEGRADED = "※ 지금은 AI 상담 연결이 원활하지 않아, 저장된 정보로 정리한 요약으로 답변드려요."

function M.compose(flow, ctx, degraded)
  local body = flow and flow.offline and flow.offline(ctx or {}) or
      "질문을 이해하지 못했어요. 정책 찾기, 지원 자격, 이번 달 지출과 예산, 절약 방법을 물어보세요."
  if degraded then return NOTE_DEGRADED .. "\n\n" .. body end
  if flow and flow.summary == false then return body end -- a greeting is no summary
  return NOTE .. "\n\n" .. body
end

function M.stream(_, req, on_text)
  local text = M.compose(req.flow, req.ctx, req.degraded)
  -- Line by line, so a streaming client sees the answer arrive as it would
  -- from a model.
  for line in text:gmatch("[^\n]*\n?") do
    if line ~= "" then on_text(line) end
  end
  return { text = text, stop_reason = "end_turn" }
end

return M
