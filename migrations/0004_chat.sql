-- 0004_chat: chatbot conversations.

-- chat_sessions: a user's conversation; the title defaults to the first
-- question, shortened. Listed most recently active first.
CREATE TABLE chat_sessions (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      text NOT NULL DEFAULT '' CHECK (char_length(title) <= 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_sessions_user_idx ON chat_sessions (user_id, updated_at DESC, id DESC);
CREATE TRIGGER chat_sessions_touch BEFORE UPDATE ON chat_sessions
    FOR EACH ROW EXECUTE FUNCTION lp_touch_updated_at();

-- chat_messages: one complete message (an answer is stored only once it is
-- whole). user_id repeats the session's owner so every query can be scoped
-- by user directly. citations is [{"policyId": n, "title": "..."}] of
-- policies that were really in the flow's context. intent is the chat
-- module's code (snake_case); degraded marks an offline fallback answer.
CREATE TABLE chat_messages (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id  bigint NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('user', 'assistant')),
    content     text NOT NULL CHECK (role = 'assistant' OR char_length(content) BETWEEN 1 AND 2000),
    intent      text CHECK (intent ~ '^[a-z][a-z0-9_]*$'),
    citations   jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(citations) = 'array'),
    degraded    boolean NOT NULL DEFAULT false,
    provider    text,                                  -- anthropic / openai / offline
    tokens_in   integer CHECK (tokens_in >= 0),
    tokens_out  integer CHECK (tokens_out >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_messages_session_idx ON chat_messages (session_id, id);
CREATE INDEX chat_messages_user_idx ON chat_messages (user_id, created_at);
