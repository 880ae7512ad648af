-- Hermes schema, SQLite dialect (`dev` mode and tests).
--
-- The twin of migrations/mysql/0001_init.sql: same tables, columns and
-- meaning. Times are INTEGER unix microseconds (UTC). Tables are STRICT, so
-- a value of the wrong type is refused instead of stored (an overflowing
-- counter would otherwise silently become a REAL).

CREATE TABLE customers (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 253),
    plan TEXT NOT NULL,
    active INTEGER NOT NULL CHECK (active IN (0, 1)),
    email TEXT NOT NULL CHECK (length(email) <= 320),
    api_key_hash TEXT NOT NULL CHECK (length(api_key_hash) = 64),
    requests_per_minute INTEGER CHECK (requests_per_minute >= 0),
    tool_calls_per_month INTEGER CHECK (tool_calls_per_month >= 0),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
) STRICT;

CREATE UNIQUE INDEX customers_api_key_hash ON customers (api_key_hash);

CREATE TABLE usage_ledger (
    customer_id TEXT NOT NULL,
    period TEXT NOT NULL CHECK (length(period) = 7),
    requests INTEGER NOT NULL DEFAULT 0 CHECK (requests >= 0),
    tool_calls INTEGER NOT NULL DEFAULT 0 CHECK (tool_calls >= 0),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (customer_id, period)
) STRICT;
