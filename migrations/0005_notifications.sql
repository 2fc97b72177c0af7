-- 0005_notifications: what the app shows in its inbox, and job claims so
-- that with several workers or hosts exactly one does each job.

-- notifications: dedupe_key is unique per user, so creating one is
-- INSERT ... ON CONFLICT (user_id, dedupe_key) DO NOTHING and a re-run,
-- a second host or a restart never notifies twice. Keys by type:
--   policy_match  'policy_match:<policyId>'
--   deadline      'deadline:<policyId>:<applyEnd YYYY-MM-DD>:<7|1>'
--   budget        'budget:<YYYY-MM>:<category|total>:<80|100>'
-- data carries the ids the app navigates with (policyId, month, category).
-- pushed_at is set once the push webhook accepted it; the row is the truth.
CREATE TABLE notifications (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type          text NOT NULL CHECK (type IN ('policy_match', 'deadline', 'budget')),
    title         text NOT NULL,
    body          text NOT NULL,
    data          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object'),
    dedupe_key    text NOT NULL CHECK (dedupe_key <> ''),
    read_at       timestamptz,
    push_attempts integer NOT NULL DEFAULT 0 CHECK (push_attempts >= 0),
    pushed_at     timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notifications_user_dedupe_key UNIQUE (user_id, dedupe_key)
);
CREATE INDEX notifications_user_idx ON notifications (user_id, id DESC);
CREATE INDEX notifications_unread_idx ON notifications (user_id, id DESC) WHERE read_at IS NULL;
CREATE INDEX notifications_unpushed_idx ON notifications (id) WHERE pushed_at IS NULL;

-- job_runs: one row per run of a job, claimed with
-- INSERT ... ON CONFLICT (job, run_key) DO NOTHING RETURNING — the host that
-- gets the row does the work. run_key names the unit of work: the Seoul date
-- for 'deadlines', the policy-set version for 'policy_match'. A 'failed' row,
-- or a 'running' one whose claimed_at is old (its host died), may be taken
-- over with a conditional UPDATE.
CREATE TABLE job_runs (
    job         text NOT NULL CHECK (job ~ '^[a-z][a-z0-9_]*$'),
    run_key     text NOT NULL,
    status      text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
    claimed_by  text,                                  -- host/worker id, for people reading it
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    result      jsonb,                                 -- e.g. {"created": 12}
    error       text,
    PRIMARY KEY (job, run_key)
);
