-- 0002_ledger: the household ledger (가계부) — transactions, budgets, and the
-- idempotency keys that keep a retried POST /transactions from booking twice.

-- transactions: one income or expense. amount is positive won; the sign is
-- type. The category must belong to the type (API.md's two lists).
-- occurred_on is a calendar date (already a Seoul date, so months are
-- [first day, first day + 1 month) with no time-zone arithmetic).
CREATE TABLE transactions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type        text NOT NULL CHECK (type IN ('income', 'expense')),
    amount      bigint NOT NULL CHECK (amount > 0),
    category    text NOT NULL,
    occurred_on date NOT NULL,
    memo        text CHECK (char_length(memo) <= 200),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT transactions_category_check CHECK (
        (type = 'expense' AND category IN ('food', 'cafe', 'transport', 'housing', 'utilities',
            'telecom', 'shopping', 'health', 'education', 'culture', 'travel', 'insurance',
            'savings', 'loan', 'gift', 'etc'))
        OR (type = 'income' AND category IN ('salary', 'side', 'allowance', 'benefit', 'interest',
            'etc_income')))
);
-- The month list (newest first, keyset paging on (occurred_on, id)) and the
-- month summary both range-scan this index.
CREATE INDEX transactions_user_date_idx ON transactions (user_id, occurred_on DESC, id DESC);
CREATE TRIGGER transactions_touch BEFORE UPDATE ON transactions
    FOR EACH ROW EXECUTE FUNCTION lp_touch_updated_at();

-- idempotency_keys: the Idempotency-Key of a POST /transactions, per user.
-- Claim a key with INSERT ... ON CONFLICT DO NOTHING before doing the work
-- (status NULL = in progress), then store the response. request_hash tells a
-- replay (same body → same response) from a misuse (other body → 409/422).
-- A row past expires_at (24 h) counts as absent; delete it and claim anew.
CREATE TABLE idempotency_keys (
    user_id        bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key            text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    request_hash   text NOT NULL,                 -- hex SHA-256 of method, path and body
    status         smallint CHECK (status BETWEEN 100 AND 599),
    response       text,                          -- the response body as sent
    transaction_id bigint REFERENCES transactions (id) ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL DEFAULT now() + interval '24 hours',
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

-- budgets: one line per user, month and expense category; category NULL is
-- the month's overall budget. month is the first day of the month. Amount 0
-- is "remove the line", so stored amounts are positive. NULLS NOT DISTINCT
-- makes the overall line unique too and lets
-- INSERT ... ON CONFLICT (user_id, month, category) upsert it.
CREATE TABLE budgets (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    month      date NOT NULL CHECK (extract(day FROM month) = 1),
    category   text CHECK (category IN ('food', 'cafe', 'transport', 'housing', 'utilities',
                   'telecom', 'shopping', 'health', 'education', 'culture', 'travel',
                   'insurance', 'savings', 'loan', 'gift', 'etc')),
    amount     bigint NOT NULL CHECK (amount > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT budgets_user_month_category_key UNIQUE NULLS NOT DISTINCT (user_id, month, category)
);
CREATE TRIGGER budgets_touch BEFORE UPDATE ON budgets
    FOR EACH ROW EXECUTE FUNCTION lp_touch_updated_at();
