-- flows/small_talk.lua — greetings and thanks. No context to gather.
local M = {
  intent = "small_talk",
  summary = false, -- a greeting is not a summary: the offline note is left out
  instructions = "가볍게 인사에 답하고, 정책 찾기·지원 자격 확인·지출과 예산 정리·절약 방법을 도와줄 수 있다고 한 문장으로 안내하세요.",
}

local HELP = "청년 정책 찾기, 지원 자격 확인, 이번 달 지출·예산 정리, 절약 방법을 도와드릴 수 있어요."

function M.context(a)
  return { policies = {}, facts = {}, text = a.text }
end

function M.offline(ctx)
  local t = ctx.text or ""
  if t:find("고마", 1, true) or t:find("감사", 1, true) then
    return "도움이 되었다니 기뻐요! 더 궁금한 게 있으면 언제든 물어봐 주세요."
  end
  return "안녕하세요! 저는 lifeplan 도우미예요. " .. HELP
end

return M
