-- How many times each search began to run. A search whose server died while it ran is run again
-- on the next start; one that took the server down twice is marked failed instead of run again.
ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
