// Streams from the fake LLM (spec/chat/fake_llm) with the official SDKs, so
// the fake is known to speak the real wire formats. Run by check.sh.
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import assert from "node:assert/strict";

const FAKE = process.env.FAKE_URL;
const script = (steps) =>
  fetch(`${FAKE}/_fake/script`, { method: "POST", headers: { "content-type": "application/json" },
                                  body: JSON.stringify({ steps }) });
let passed = 0;
const ok = (name) => { passed++; console.log(`ok ${passed} - ${name}`); };

const anthropic = new Anthropic({ apiKey: "sk-ant-fake", baseURL: FAKE, maxRetries: 2 });

await script([{ text: "안녕하세요, 가짜 모델입니다.", chunk: 3, usage_in: 11, usage_out: 7 }]);
{
  const stream = anthropic.messages.stream({ model: "claude-fake", max_tokens: 100,
    messages: [{ role: "user", content: "안녕" }] });
  let text = "";
  stream.on("text", (t) => { text += t; });
  const msg = await stream.finalMessage();
  assert.equal(text, "안녕하세요, 가짜 모델입니다.");
  assert.equal(msg.content[0].text, text);
  assert.equal(msg.stop_reason, "end_turn");
  assert.equal(msg.usage.input_tokens, 11);
  assert.equal(msg.usage.output_tokens, 7);
  ok("anthropic: messages.stream text, final message, usage");
}

await script([{ text: "이벤트 순서", chunk: 2 }]);
{
  const events = [];
  const stream = await anthropic.messages.create({ model: "claude-fake", max_tokens: 100, stream: true,
    messages: [{ role: "user", content: "안녕" }] });
  for await (const ev of stream) events.push(ev.type);
  assert.equal(events[0], "message_start");
  assert.equal(events[1], "content_block_start");
  assert.ok(events.includes("content_block_delta"));
  assert.deepEqual(events.slice(-3), ["content_block_stop", "message_delta", "message_stop"]);
  ok("anthropic: raw event sequence");
}

await script([{ status: 429, retry_after: "0" }, { text: "재시도 후 성공" }]);
{
  const msg = await anthropic.messages.stream({ model: "claude-fake", max_tokens: 100,
    messages: [{ role: "user", content: "안녕" }] }).finalMessage();
  assert.equal(msg.content[0].text, "재시도 후 성공");
  ok("anthropic: the SDK retries the fake's 429 with retry-after");
}

await script([{ status: 401 }]);
await assert.rejects(
  anthropic.messages.create({ model: "claude-fake", max_tokens: 10, messages: [{ role: "user", content: "x" }] }),
  (e) => e instanceof Anthropic.AuthenticationError && e.status === 401);
ok("anthropic: HTTP error body is the SDK's error shape");

await script([{ text: "중간에 과부하 오류가 납니다", chunk: 2, error_after: 2 }]);
await assert.rejects(
  (async () => {
    const s = anthropic.messages.stream({ model: "claude-fake", max_tokens: 100, messages: [{ role: "user", content: "x" }] });
    await s.finalMessage();
  })(),
  (e) => /overloaded_error/.test(String(e.message ?? e)) || e?.error?.error?.type === "overloaded_error");
ok("anthropic: a mid-stream error event is raised by the SDK");

const openai = new OpenAI({ apiKey: "sk-fake", baseURL: `${FAKE}/v1`, maxRetries: 2 });

await script([{ text: "OpenAI 형식의 답변입니다.", chunk: 3, usage_in: 13, usage_out: 9 }]);
{
  const stream = await openai.chat.completions.create({ model: "gpt-fake", stream: true,
    stream_options: { include_usage: true }, messages: [{ role: "user", content: "안녕" }] });
  let text = "", usage = null, finish = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) { text += c.delta?.content ?? ""; finish = c.finish_reason ?? finish; }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, "OpenAI 형식의 답변입니다.");
  assert.equal(finish, "stop");
  assert.equal(usage.prompt_tokens, 13);
  assert.equal(usage.completion_tokens, 9);
  ok("openai: chat.completions stream text, finish_reason, usage, [DONE]");
}

await script([{ status: 503 }, { text: "두 번째 시도" }]);
{
  const r = await openai.chat.completions.create({ model: "gpt-fake", messages: [{ role: "user", content: "x" }] });
  assert.equal(r.choices[0].message.content, "두 번째 시도");
  ok("openai: the SDK retries the fake's 503; non-streamed response shape");
}

await script([{ text: "스트림 중 오류", chunk: 2, error_after: 1, error_type: "server_error" }]);
await assert.rejects((async () => {
  const s = await openai.chat.completions.create({ model: "gpt-fake", stream: true, messages: [{ role: "user", content: "x" }] });
  for await (const _ of s) { /* drain */ }
})(), (e) => e instanceof OpenAI.APIError);
ok("openai: a mid-stream error chunk is raised by the SDK");

console.log(`${passed} passed, 0 failed`);
