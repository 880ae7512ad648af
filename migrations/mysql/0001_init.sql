-- Hermes schema, MySQL 8 / MariaDB 10.6+ dialect.
--
-- Times are BIGINT unix microseconds (UTC): sqlx's runtime-generic driver,
-- which both dialects are read through, carries integers and text but no
-- DATETIME, and one representation keeps the SQLite twin of this file
-- equivalent. `active` is SMALLINT for the same reason (TINYINT/BOOLEAN is
-- not readable through that driver).
--
-- Keep migrations/sqlite/0001_init.sql in step with this file.

CREATE TABLE customers (
    -- The Customer resource's metadata.name (RFC 1123, at most 253 ASCII characters).
    id VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    -- free | starter | pro | enterprise
    plan VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    active SMALLINT NOT NULL,
    email VARCHAR(320) NOT NULL,
    -- Lowercase hex SHA-256 of the API key; keys themselves are never stored.
    api_key_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    -- Per-customer overrides of the plan's limits; NULL keeps the plan's value.
    requests_per_minute BIGINT NULL,
    tool_calls_per_month BIGINT NULL,
    created_at BIGINT NOT NULL COMMENT 'unix microseconds, UTC',
    updated_at BIGINT NOT NULL COMMENT 'unix microseconds, UTC',
    -- Set when the Customer resource is deleted; the row is kept for billing.
    deleted_at BIGINT NULL COMMENT 'unix microseconds, UTC',
    PRIMARY KEY (id),
    UNIQUE KEY customers_api_key_hash (api_key_hash),
    CONSTRAINT customers_id_not_empty CHECK (CHAR_LENGTH(id) > 0),
    CONSTRAINT customers_api_key_hash_is_sha256_hex CHECK (CHAR_LENGTH(api_key_hash) = 64),
    CONSTRAINT customers_email_length CHECK (CHAR_LENGTH(email) <= 320),
    CONSTRAINT customers_active_is_bool CHECK (active IN (0, 1)),
    CONSTRAINT customers_requests_per_minute_non_negative CHECK (requests_per_minute >= 0),
    CONSTRAINT customers_tool_calls_per_month_non_negative CHECK (tool_calls_per_month >= 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per customer and billing period (`yyyy-mm`, UTC). No foreign key
-- to customers: usage is durable billing data and must be recorded even when
-- the server meters a customer whose row the operator has not written yet.
CREATE TABLE usage_ledger (
    customer_id VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    period CHAR(7) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    tool_calls BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL COMMENT 'unix microseconds, UTC',
    PRIMARY KEY (customer_id, period),
    CONSTRAINT usage_ledger_period_is_yyyy_mm CHECK (CHAR_LENGTH(period) = 7),
    CONSTRAINT usage_ledger_requests_non_negative CHECK (requests >= 0),
    CONSTRAINT usage_ledger_tool_calls_non_negative CHECK (tool_calls >= 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
