/** What the SQL of the repositories shares, on both engines. */

/**
 * "No limit" where SQL needs one (OFFSET without LIMIT is PostgreSQL's only; SQLite's LIMIT -1 is
 * SQLite's only): the largest BIGINT, which both accept.
 */
export const NO_LIMIT = '9223372036854775807';
