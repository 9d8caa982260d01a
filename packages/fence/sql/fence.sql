-- The singleton-operator fence for PostgreSQL (9.5 or later).
--
-- One row per SingletonJob key ("namespace/name", from SINGLETON_JOB_KEY)
-- holds the highest fencing token that has written. A writer claims the fence
-- as the FIRST statement of the transaction that does its write:
--
--   BEGIN;
--   SELECT singleton_fence_claim($1 /* SINGLETON_JOB_KEY */, $2 /* SINGLETON_FENCING_TOKEN */);
--   -- your writes
--   COMMIT;
--
-- The claim succeeds when the token is >= the highest seen (the same token may
-- write several times, e.g. in several transactions of one attempt) and raises
-- the fence to it; it fails with SQLSTATE SF409 (DETAIL: the highest token)
-- when a higher token has written, which aborts the transaction: roll back,
-- stop, and do not retry. The claim locks the fence row until COMMIT or
-- ROLLBACK, so writers of one key are serialised in token order: an older
-- writer that raced a newer one either commits first or fails its claim.
--
-- Without the function (no DDL rights for functions), the claim is the bare
-- statement below; zero rows returned means refused:
--
--   INSERT INTO singleton_fence AS f (job_key, token) VALUES ($1, $2)
--   ON CONFLICT (job_key) DO UPDATE SET token = EXCLUDED.token, updated_at = now()
--   WHERE f.token <= EXCLUDED.token
--   RETURNING f.token;
--
-- Run this file once, with your migrations. It is idempotent.

CREATE TABLE IF NOT EXISTS singleton_fence (
  job_key    text PRIMARY KEY,
  token      bigint NOT NULL CHECK (token > 0 AND token < 9007199254740992),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION singleton_fence_claim(p_job_key text, p_token bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  highest bigint;
BEGIN
  INSERT INTO singleton_fence AS f (job_key, token) VALUES (p_job_key, p_token)
  ON CONFLICT (job_key) DO UPDATE SET token = EXCLUDED.token, updated_at = now()
  WHERE f.token <= EXCLUDED.token;
  IF FOUND THEN
    RETURN p_token;
  END IF;
  -- Not updated, but locked by the INSERT: this is the committed highest token.
  SELECT f.token INTO highest FROM singleton_fence f WHERE f.job_key = p_job_key;
  RAISE EXCEPTION 'fenced out: token % for % is below the highest token seen, %', p_token, p_job_key, highest
    USING ERRCODE = 'SF409', DETAIL = highest::text,
          HINT = 'A newer run or attempt of this SingletonJob has written: roll back, stop, do not retry.';
END
$$;
