-- flows/unknown.lua — anything the rules could not place. No context: the
-- model may still answer general money questions; offline, say what the
-- assistant can do.
local M = {
  intent = "unknown",
  summary = false,
  instructions = "질문이 청년 정책이나 사용자의 돈 관리와 관련 있으면 일반적인 안내를 하고, 관련 없으면 정중히 "
    .. "도울 수 있는 범위(정책 찾기, 지원 자격, 지출·예산, 절약)를 알려주세요. 모르는 사실은 지어내지 마세요.",
}

function M.context(a)
  return { policies = {}, facts = {}, text = a.text }
end

function M.offline()
  return "그 질문에는 제가 정확히 답하기 어려워요. 저는 청년 정책 찾기, 정책 지원 자격 확인, "
      .. "이번 달 지출·예산 정리, 절약 방법을 도와드릴 수 있어요. 예: \"나한테 맞는 주거 정책 알려줘\", "
      .. "\"이번 달 식비 얼마나 썼어?\""
end

return M
