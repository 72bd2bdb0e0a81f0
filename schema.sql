-- xmpp-invites database schema.
--
-- Migrations are applied in order; each starts with a line `-- migration N: title` and runs in one
-- transaction, after which PRAGMA user_version = N. Never edit a migration that has shipped: add one.
-- Nothing is ever deleted: invites and their events are the log of who invited whom, who approved,
-- who joined and who declined. Triggers refuse DELETE on every table of record. The one exception
-- is working state that is no record (the sessions of ad-hoc commands, migration 13).
-- Times are milliseconds since the epoch (UTC).

-- migration 1: invites and their event log
CREATE TABLE invites (
  id                  TEXT PRIMARY KEY CHECK (length(id) = 10),
  kind                TEXT NOT NULL CHECK (kind IN ('account', 'account-locked', 'contact', 'contact-account')),
  state               TEXT NOT NULL CHECK (state IN ('pending', 'open', 'exhausted', 'rejected', 'revoked', 'declined')),
  -- bare JID of the user who invited; NULL when the operator created it from the CLI
  inviter             TEXT,
  -- the door the invite came through: command, create-account, cli, presence, send, web
  source              TEXT NOT NULL,
  invitee_email       TEXT,
  -- the address as compared for duplicates: domain lower-cased, local part case-folded
  invitee_email_key   TEXT,
  invitee_jid         TEXT,
  invitee_name        TEXT,
  -- the reserved username of an account-locked invite
  username            TEXT,
  -- the inviter's message
  note                TEXT,
  -- create-account's roster-subscription: the new account and the inviter become contacts
  roster_subscription INTEGER NOT NULL DEFAULT 0 CHECK (roster_subscription IN (0, 1)),
  max_uses            INTEGER NOT NULL DEFAULT 1 CHECK (max_uses >= 1),
  uses                INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0),
  -- uses held by claims that are neither spent nor released
  held                INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0),
  -- part of the token's derivation; bumped by resend, which voids the previous token
  generation          INTEGER NOT NULL DEFAULT 0 CHECK (generation >= 0),
  created_at          INTEGER NOT NULL,
  expires_at          INTEGER NOT NULL,
  approved_at         INTEGER,
  approved_by         TEXT,
  -- when the state left pending/open, or when expiry was recorded
  ended_at            INTEGER,
  expiry_recorded     INTEGER NOT NULL DEFAULT 0 CHECK (expiry_recorded IN (0, 1)),
  email_delivery      TEXT NOT NULL DEFAULT 'none' CHECK (email_delivery IN ('none', 'queued', 'sent', 'failed')),
  message_delivery    TEXT NOT NULL DEFAULT 'none' CHECK (message_delivery IN ('none', 'queued', 'sent', 'failed')),
  CHECK (uses + held <= max_uses),
  CHECK (kind <> 'account-locked' OR username IS NOT NULL)
);
CREATE INDEX invites_state ON invites (state, expires_at);
CREATE INDEX invites_inviter ON invites (inviter, created_at);
CREATE INDEX invites_email ON invites (invitee_email_key);
CREATE INDEX invites_jid ON invites (invitee_jid);
CREATE INDEX invites_username ON invites (username) WHERE username IS NOT NULL;

CREATE TABLE events (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  invite_id TEXT NOT NULL REFERENCES invites (id),
  at        INTEGER NOT NULL,
  -- created, approved, rejected, delivered, redeemed, declined, revoked, expired, resent, ...
  type      TEXT NOT NULL,
  -- bare JID, 'operator' (CLI), 'system' (periodic jobs) or 'web'
  actor     TEXT NOT NULL,
  reason    TEXT,
  -- JSON object with details (never a token)
  data      TEXT
);
CREATE INDEX events_invite ON events (invite_id, id);
CREATE INDEX events_type_at ON events (type, at);

CREATE TRIGGER invites_never_deleted BEFORE DELETE ON invites
BEGIN SELECT RAISE(ABORT, 'invites are never deleted'); END;
CREATE TRIGGER events_never_deleted BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are never deleted'); END;
CREATE TRIGGER events_never_changed BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are never changed'); END;

-- migration 2: claims, the log of every registration attempt that got as far as holding a use
CREATE TABLE claims (
  id          TEXT PRIMARY KEY,
  -- NULL when registration is open and no token was given
  invite_id   TEXT REFERENCES invites (id),
  username    TEXT NOT NULL,
  -- the door: component, web, bridge
  door        TEXT NOT NULL,
  requester   TEXT,
  ip          TEXT,
  -- held (one use and the username), spent (the account exists), released (it does not)
  state       TEXT NOT NULL CHECK (state IN ('held', 'spent', 'released')),
  created_at  INTEGER NOT NULL,
  settled_at  INTEGER,
  -- why it was settled as it was: created, conflict, refused: …, reconciled: …
  outcome     TEXT
);
-- One registration at a time per username, whatever the door.
CREATE UNIQUE INDEX claims_username_held ON claims (username) WHERE state = 'held';
CREATE INDEX claims_invite ON claims (invite_id);
CREATE INDEX claims_state ON claims (state, created_at);
CREATE TRIGGER claims_never_deleted BEFORE DELETE ON claims
BEGIN SELECT RAISE(ABORT, 'claims are never deleted'); END;

-- migration 3: the outbox, one durable queue for every message and e-mail the service delivers
CREATE TABLE outbox (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  channel     TEXT NOT NULL CHECK (channel IN ('xmpp', 'email')),
  -- the notification kind (pending, approved, …, invitation, welcome, reminder)
  kind        TEXT NOT NULL,
  -- a bare JID or an e-mail address
  recipient   TEXT NOT NULL,
  -- JSON array of the invite ids it concerns (folded pending notifications hold several)
  invite_ids  TEXT NOT NULL DEFAULT '[]',
  -- JSON object of parameters (a reason, a JID); never a token: tokens are rendered at send time
  params      TEXT NOT NULL DEFAULT '{}',
  state       TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
  attempts    INTEGER NOT NULL DEFAULT 0,
  last_error  TEXT,
  -- not sent before this time (backoff, folding window)
  not_before  INTEGER NOT NULL,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  sent_at     INTEGER,
  -- a stable Message-ID (e-mail) or stanza id (XMPP), the same on every attempt
  message_id  TEXT NOT NULL UNIQUE
);
CREATE INDEX outbox_due ON outbox (state, not_before);
CREATE INDEX outbox_recipient ON outbox (recipient, kind, created_at);
CREATE TRIGGER outbox_never_deleted BEFORE DELETE ON outbox
BEGIN SELECT RAISE(ABORT, 'outbox rows are never deleted'); END;

-- migration 4: the approval queue is read oldest first, page by page
CREATE INDEX invites_state_created ON invites (state, created_at, id);

-- migration 5: duplicates, invite requests carried in presence, subscriptions, opt-outs, reminders
-- Who is invited, compared as the duplicate rule says: an e-mail key (domain lower-cased, local part
-- case-folded) or a normalised bare JID.
ALTER TABLE invites ADD COLUMN invitee_key TEXT;
-- 'inviter|invitee_key' while the invite is pending or open and its expiry is not recorded: the
-- unique index makes a second such invite impossible, whatever door and however many at once.
ALTER TABLE invites ADD COLUMN active_key TEXT;
-- when the one reminder before expiry was queued
ALTER TABLE invites ADD COLUMN reminded_at INTEGER;
UPDATE invites SET invitee_key = coalesce(invitee_email_key, invitee_jid);
UPDATE invites SET active_key = inviter || '|' || invitee_key
  WHERE inviter IS NOT NULL AND invitee_key IS NOT NULL AND state IN ('pending', 'open') AND expiry_recorded = 0;
CREATE UNIQUE INDEX invites_active_pair ON invites (active_key) WHERE active_key IS NOT NULL;
CREATE INDEX invites_invitee_key ON invites (invitee_key, created_at);
-- Leaving pending/open, or recording expiry, ends the invite's hold on the pair.
CREATE TRIGGER invites_release_pair AFTER UPDATE OF state, expiry_recorded ON invites
  WHEN NEW.active_key IS NOT NULL AND (NEW.state NOT IN ('pending', 'open') OR NEW.expiry_recorded = 1)
BEGIN UPDATE invites SET active_key = NULL WHERE id = NEW.id; END;

-- Each <invite-request/> is processed once per sender, ever: its id attribute, or a hash of its
-- canonical form.
CREATE TABLE invite_requests (
  sender      TEXT NOT NULL,
  request_key TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  -- JSON: the per-invitee outcome sent back in the acknowledgement
  result      TEXT NOT NULL,
  PRIMARY KEY (sender, request_key)
);
CREATE TRIGGER invite_requests_never_deleted BEFORE DELETE ON invite_requests
BEGIN SELECT RAISE(ABORT, 'invite requests are never deleted'); END;

-- The component's own record of presence subscriptions with local users (RFC 6121 states).
CREATE TABLE subscriptions (
  jid         TEXT PRIMARY KEY,
  -- does the user receive our presence (from), do we receive theirs (to)
  subscription TEXT NOT NULL CHECK (subscription IN ('none', 'from', 'to', 'both')),
  -- we asked to subscribe to the user and wait for the answer
  pending_out INTEGER NOT NULL DEFAULT 0 CHECK (pending_out IN (0, 1)),
  updated_at  INTEGER NOT NULL
);

-- "Never invite me again": a keyed hash of the e-mail key (or JID), so the list of addresses that
-- opted out cannot be read back from the database.
CREATE TABLE opt_outs (
  address_hash TEXT PRIMARY KEY,
  created_at   INTEGER NOT NULL,
  -- the invite whose page it was done on
  invite_id    TEXT REFERENCES invites (id)
);
CREATE TRIGGER opt_outs_never_deleted BEFORE DELETE ON opt_outs
BEGIN SELECT RAISE(ABORT, 'opt-outs are never deleted'); END;

-- migration 6: the counts behind the limits
CREATE INDEX invites_created ON invites (created_at);
CREATE INDEX claims_door ON claims (door, created_at);
CREATE INDEX claims_ip ON claims (ip, created_at) WHERE ip IS NOT NULL;

-- migration 7: what is live (pending or open, expiry not recorded), found without reading history
-- Expired invites keep their state (expired is derived), so over the years most rows in state
-- pending or open are long expired, and invites_state (state, expires_at) holds them all. These
-- two indexes leave them out: the approval queue's page (the 21 oldest unexpired pending invites)
-- reads 21 entries instead of sorting every unexpired one, and the periodic expiry job (and the
-- reminder job) read only the invites that are due instead of every expiry ever recorded.
CREATE INDEX invites_live ON invites (state, created_at, id) WHERE expiry_recorded = 0;
CREATE INDEX invites_due ON invites (state, expires_at) WHERE expiry_recorded = 0;

-- migration 8: fewer indexes to write per invite
-- Most invites name no invitee: the indexes on invitee columns held a NULL entry for each of them,
-- written with every invite and never read. invitee_key (e-mail key or JID) is what every lookup
-- by invitee uses since migration 5, so the two older ones go, and it keeps only named invitees
-- (`invitee_key = ?` implies NOT NULL, so the planner still uses it).
DROP INDEX invites_email;
DROP INDEX invites_jid;
DROP INDEX invites_invitee_key;
CREATE INDEX invites_invitee_key ON invites (invitee_key, created_at) WHERE invitee_key IS NOT NULL;

-- migration 9: whether the account was absent when a claim was made
-- Before claiming, every door asks the server whether the account exists (`conflict` if it does).
-- A claim whose create had an unclear outcome is settled as spent only when the account was absent
-- at claim time and exists now: never for an account that existed before (which the claim did not
-- make). 1 = the server said absent; 0 or NULL (claims made before this migration) = not shown.
ALTER TABLE claims ADD COLUMN absent_at_claim INTEGER;

-- migration 10: JIDs compared as the servers compare them (nodeprep, nameprep)
-- Invitee JIDs were normalised with NFKC and lower-casing; the servers use stringprep, which also
-- folds ß to ss and final sigma to sigma, among others. Stringprep is not SQL: the keys (inviter,
-- invitee_jid, invitee_key, active_key, and the opt-out hashes of JID invitees) are rebuilt by this
-- migration's step in src/store/migration-steps.ts.

-- migration 11: rows of record change only where the service changes them
-- INSERT OR REPLACE (and UPDATE OR REPLACE) resolves a conflict by deleting the other row, and that
-- delete fires the "never deleted" triggers only with recursive triggers on: openDatabase turns
-- them on for every connection (store/database.ts), so such a statement aborts on every table that
-- refuses deletes. Below, the columns that say what an invite (a claim, an outbox row) is and who
-- made it are fixed once written; the service changes only state, uses and holds, times, delivery,
-- the token generation and the duplicate pair (active_key). Opt-outs and invite requests never
-- change at all.
CREATE TRIGGER invites_fixed_columns BEFORE UPDATE OF
    id, kind, inviter, source, invitee_email, invitee_email_key, invitee_jid, invitee_name, invitee_key,
    username, note, roster_subscription, max_uses, created_at ON invites
  WHEN NEW.id IS NOT OLD.id OR NEW.kind IS NOT OLD.kind OR NEW.inviter IS NOT OLD.inviter
    OR NEW.source IS NOT OLD.source OR NEW.invitee_email IS NOT OLD.invitee_email
    OR NEW.invitee_email_key IS NOT OLD.invitee_email_key OR NEW.invitee_jid IS NOT OLD.invitee_jid
    OR NEW.invitee_name IS NOT OLD.invitee_name OR NEW.invitee_key IS NOT OLD.invitee_key
    OR NEW.username IS NOT OLD.username OR NEW.note IS NOT OLD.note
    OR NEW.roster_subscription IS NOT OLD.roster_subscription OR NEW.max_uses IS NOT OLD.max_uses
    OR NEW.created_at IS NOT OLD.created_at
BEGIN SELECT RAISE(ABORT, 'an invite''s id, kind, inviter, source, invitee, username, note, roster subscription, uses allowed and creation time never change'); END;
CREATE TRIGGER claims_fixed_columns BEFORE UPDATE OF id, invite_id, username, door, requester, ip, created_at ON claims
  WHEN NEW.id IS NOT OLD.id OR NEW.invite_id IS NOT OLD.invite_id OR NEW.username IS NOT OLD.username
    OR NEW.door IS NOT OLD.door OR NEW.requester IS NOT OLD.requester OR NEW.ip IS NOT OLD.ip
    OR NEW.created_at IS NOT OLD.created_at
BEGIN SELECT RAISE(ABORT, 'a claim''s id, invite, username, door, requester, address and creation time never change'); END;
CREATE TRIGGER outbox_fixed_columns BEFORE UPDATE OF id, channel, kind, recipient, message_id, created_at ON outbox
  WHEN NEW.id IS NOT OLD.id OR NEW.channel IS NOT OLD.channel OR NEW.kind IS NOT OLD.kind
    OR NEW.recipient IS NOT OLD.recipient OR NEW.message_id IS NOT OLD.message_id OR NEW.created_at IS NOT OLD.created_at
BEGIN SELECT RAISE(ABORT, 'an outbox row''s id, channel, kind, recipient, message id and creation time never change'); END;
CREATE TRIGGER opt_outs_never_changed BEFORE UPDATE ON opt_outs
BEGIN SELECT RAISE(ABORT, 'opt-outs are never changed'); END;
CREATE TRIGGER invite_requests_never_changed BEFORE UPDATE ON invite_requests
BEGIN SELECT RAISE(ABORT, 'invite requests are never changed'); END;

-- migration 12: periodic jobs run by one instance per period
-- One row per periodic job of `serve` (src/jobs.ts): the instance that runs it this period (a random
-- id each process draws at start) and until when (ms since the epoch). An instance runs a job only
-- after taking its lease with one conditional statement (store/leases-repo.ts): the row is created,
-- or taken over once `held_until` has passed, or renewed by its holder. Each running instance also
-- renews a row `instance:<id>` of its own every few seconds: its presence. Leases are not records:
-- they are overwritten in place (never by INSERT OR REPLACE: see migration 11) or deleted, and not copied by
-- `db copy`.
CREATE TABLE job_leases (
  job TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  held_until INTEGER NOT NULL
);

-- migration 13: ad-hoc command sessions, shared by the instances
-- A multi-stage ad-hoc command (XEP-0050) keeps its session here between stages, so that the next
-- stage may reach any instance of the service: src/domain/command-sessions.ts has the rules (caps
-- per bare JID and in all), src/store/command-sessions-repo.ts the statements.
-- Unlike every other table, these rows are not records: they are working state that no guarantee
-- covers (nobody is told what a session held, and the event log records what a command did). So no
-- trigger guards them, and the service deletes from them: an ended session is remembered (to answer
-- session-expired rather than bad-sessionid) only up to the caps, then forgotten. The repository
-- writes them with plain INSERT, UPDATE and DELETE, never REPLACE; with no trigger here, migration
-- 11's recursive triggers have nothing to fire on these tables anyway.
CREATE TABLE command_sessions (
  -- 128 random bits, base64url
  id          TEXT PRIMARY KEY,
  node        TEXT NOT NULL,
  -- the full JID the session is bound to, and its bare JID (the unit of the per-user cap)
  owner       TEXT NOT NULL,
  bare        TEXT NOT NULL,
  -- order of the last save (open) or of the end (ended): least recently used first, and expiry order
  seq         INTEGER NOT NULL,
  -- open: when it times out, and what the next stage needs as JSON (the command's state, the actions
  -- allowed, the options of the list fields of the form sent); ended: all NULL
  expires_at  INTEGER,
  state       TEXT,
  actions     TEXT,
  offered     TEXT,
  CHECK ((expires_at IS NULL) = (actions IS NULL) AND (expires_at IS NULL) = (offered IS NULL)),
  CHECK (expires_at IS NOT NULL OR state IS NULL)
);
CREATE INDEX command_sessions_open ON command_sessions (bare, seq) WHERE expires_at IS NOT NULL;
CREATE INDEX command_sessions_expiry ON command_sessions (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX command_sessions_ended ON command_sessions (bare, seq) WHERE expires_at IS NULL;
CREATE INDEX command_sessions_ended_seq ON command_sessions (seq) WHERE expires_at IS NULL;
-- One row (id 1, made by the first write): how many sessions are open and ended, and the last seq
-- given, so that the counts behind the caps cost no scan. Every write of the sessions reads it first
-- and writes it last, in one transaction: a cap is checked and acted on while no other write runs.
CREATE TABLE command_session_counts (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  open_count  INTEGER NOT NULL CHECK (open_count >= 0),
  ended_count INTEGER NOT NULL CHECK (ended_count >= 0),
  last_seq    INTEGER NOT NULL
);

-- migration 14: each outbox row being sent names the instance sending it
-- `claimed_by` is the instance id (src/app.ts) that last took the row to send it; it matters while
-- the row is `sending`: only that instance records the outcome, and another instance takes the row
-- back to `queued` once that instance's presence (`instance:<id>` in job_leases) has ended. Rows
-- left `sending` from before this migration have none, and are taken back at once.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;

-- migration 15: room invitations (XEP-0045 rooms of rooms.service), one answer per invite and room
-- A new kind `room` (an existing account is invited to rooms: no account, no contact). SQLite cannot
-- change a CHECK in place, so the invites table is rebuilt with the same columns (in the same
-- order), indexes and triggers: its rows are copied aside, the table dropped and made again, and the
-- rows copied back. The references of events, claims and opt_outs stay on `invites`; their checks
-- are deferred to the end of the migration's transaction, when every invite is back.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE invites_before_rooms AS SELECT * FROM invites;
DROP TABLE invites;
CREATE TABLE invites (
  id                  TEXT PRIMARY KEY CHECK (length(id) = 10),
  kind                TEXT NOT NULL CHECK (kind IN ('account', 'account-locked', 'contact', 'contact-account', 'room')),
  state               TEXT NOT NULL CHECK (state IN ('pending', 'open', 'exhausted', 'rejected', 'revoked', 'declined')),
  -- bare JID of the user who invited; NULL when the operator created it from the CLI
  inviter             TEXT,
  -- the door the invite came through: command, create-account, cli, presence, send, web, invite-to-rooms
  source              TEXT NOT NULL,
  invitee_email       TEXT,
  -- the address as compared for duplicates: domain lower-cased, local part case-folded
  invitee_email_key   TEXT,
  invitee_jid         TEXT,
  invitee_name        TEXT,
  -- the reserved username of an account-locked invite
  username            TEXT,
  -- the inviter's message
  note                TEXT,
  -- create-account's roster-subscription: the new account and the inviter become contacts
  roster_subscription INTEGER NOT NULL DEFAULT 0 CHECK (roster_subscription IN (0, 1)),
  max_uses            INTEGER NOT NULL DEFAULT 1 CHECK (max_uses >= 1),
  uses                INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0),
  -- uses held by claims that are neither spent nor released
  held                INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0),
  -- part of the token's derivation; bumped by resend, which voids the previous token
  generation          INTEGER NOT NULL DEFAULT 0 CHECK (generation >= 0),
  created_at          INTEGER NOT NULL,
  expires_at          INTEGER NOT NULL,
  approved_at         INTEGER,
  approved_by         TEXT,
  -- when the state left pending/open, or when expiry was recorded
  ended_at            INTEGER,
  expiry_recorded     INTEGER NOT NULL DEFAULT 0 CHECK (expiry_recorded IN (0, 1)),
  email_delivery      TEXT NOT NULL DEFAULT 'none' CHECK (email_delivery IN ('none', 'queued', 'sent', 'failed')),
  message_delivery    TEXT NOT NULL DEFAULT 'none' CHECK (message_delivery IN ('none', 'queued', 'sent', 'failed')),
  invitee_key         TEXT,
  active_key          TEXT,
  reminded_at         INTEGER,
  CHECK (uses + held <= max_uses),
  CHECK (kind <> 'account-locked' OR username IS NOT NULL),
  CHECK (kind <> 'room' OR invitee_jid IS NOT NULL)
);
INSERT INTO invites SELECT * FROM invites_before_rooms;
DROP TABLE invites_before_rooms;
CREATE INDEX invites_state ON invites (state, expires_at);
CREATE INDEX invites_inviter ON invites (inviter, created_at);
CREATE INDEX invites_username ON invites (username) WHERE username IS NOT NULL;
CREATE INDEX invites_state_created ON invites (state, created_at, id);
CREATE UNIQUE INDEX invites_active_pair ON invites (active_key) WHERE active_key IS NOT NULL;
CREATE INDEX invites_created ON invites (created_at);
CREATE INDEX invites_live ON invites (state, created_at, id) WHERE expiry_recorded = 0;
CREATE INDEX invites_due ON invites (state, expires_at) WHERE expiry_recorded = 0;
CREATE INDEX invites_invitee_key ON invites (invitee_key, created_at) WHERE invitee_key IS NOT NULL;
CREATE TRIGGER invites_never_deleted BEFORE DELETE ON invites
BEGIN SELECT RAISE(ABORT, 'invites are never deleted'); END;
CREATE TRIGGER invites_release_pair AFTER UPDATE OF state, expiry_recorded ON invites
  WHEN NEW.active_key IS NOT NULL AND (NEW.state NOT IN ('pending', 'open') OR NEW.expiry_recorded = 1)
BEGIN UPDATE invites SET active_key = NULL WHERE id = NEW.id; END;
CREATE TRIGGER invites_fixed_columns BEFORE UPDATE OF
    id, kind, inviter, source, invitee_email, invitee_email_key, invitee_jid, invitee_name, invitee_key,
    username, note, roster_subscription, max_uses, created_at ON invites
  WHEN NEW.id IS NOT OLD.id OR NEW.kind IS NOT OLD.kind OR NEW.inviter IS NOT OLD.inviter
    OR NEW.source IS NOT OLD.source OR NEW.invitee_email IS NOT OLD.invitee_email
    OR NEW.invitee_email_key IS NOT OLD.invitee_email_key OR NEW.invitee_jid IS NOT OLD.invitee_jid
    OR NEW.invitee_name IS NOT OLD.invitee_name OR NEW.invitee_key IS NOT OLD.invitee_key
    OR NEW.username IS NOT OLD.username OR NEW.note IS NOT OLD.note
    OR NEW.roster_subscription IS NOT OLD.roster_subscription OR NEW.max_uses IS NOT OLD.max_uses
    OR NEW.created_at IS NOT OLD.created_at
BEGIN SELECT RAISE(ABORT, 'an invite''s id, kind, inviter, source, invitee, username, note, roster subscription, uses allowed and creation time never change'); END;

-- One answer per (invite, room): `open` (no answer yet), `accepting` (the invitee said yes; the
-- membership is being made, and is tried again until the MUC service gives a definite answer),
-- `accepted`, `declined`, `failed` (the service refused the membership: `reason` holds its error),
-- `expired` and `revoked` (the invite ended with the answer still open; a rejected invite's rooms are
-- revoked too).
CREATE TABLE room_invitations (
  invite_id   TEXT NOT NULL REFERENCES invites (id),
  -- the room's bare JID (a room of rooms.service), and its name when the invitation was made
  room        TEXT NOT NULL,
  room_name   TEXT,
  -- who is invited, as the invite names them (its invitee_key: a bare JID or an e-mail key)
  invitee_key TEXT,
  state       TEXT NOT NULL CHECK (state IN ('open', 'accepting', 'accepted', 'declined', 'failed', 'expired', 'revoked')),
  -- 'room|invitee_key' while open or accepting: at most one live invitation per room and invitee,
  -- whoever invites (the unique index is the guard against races)
  active_key  TEXT,
  -- the JID made a member (once accepted: the invitee's JID, or the account made with the invite)
  member_jid  TEXT,
  -- the invitee's note (declined) or the service's error (failed)
  reason      TEXT,
  created_at  INTEGER NOT NULL,
  answered_at INTEGER,
  PRIMARY KEY (invite_id, room)
);
CREATE UNIQUE INDEX room_invitations_active ON room_invitations (active_key) WHERE active_key IS NOT NULL;
CREATE INDEX room_invitations_invitee ON room_invitations (invitee_key, state) WHERE invitee_key IS NOT NULL;
CREATE INDEX room_invitations_room ON room_invitations (room, created_at);
CREATE INDEX room_invitations_accepting ON room_invitations (state, answered_at) WHERE state = 'accepting';
CREATE TRIGGER room_invitations_never_deleted BEFORE DELETE ON room_invitations
BEGIN SELECT RAISE(ABORT, 'room invitations are never deleted'); END;
CREATE TRIGGER room_invitations_fixed_columns BEFORE UPDATE OF invite_id, room, room_name, invitee_key, created_at ON room_invitations
  WHEN NEW.invite_id IS NOT OLD.invite_id OR NEW.room IS NOT OLD.room OR NEW.room_name IS NOT OLD.room_name
    OR NEW.invitee_key IS NOT OLD.invitee_key OR NEW.created_at IS NOT OLD.created_at
BEGIN SELECT RAISE(ABORT, 'a room invitation''s invite, room, invitee and creation time never change'); END;
-- Leaving open/accepting ends the hold on the pair (room, invitee).
CREATE TRIGGER room_invitations_release AFTER UPDATE OF state ON room_invitations
  WHEN NEW.active_key IS NOT NULL AND NEW.state NOT IN ('open', 'accepting')
BEGIN UPDATE room_invitations SET active_key = NULL WHERE invite_id = NEW.invite_id AND room = NEW.room; END;

-- migration 16: membership requests, a record of their own
-- A person asks to join at /request (src/domain/membership.ts). The e-mail address is verified by a
-- code derived from token_key and the request's id (never stored); an admin approves or rejects
-- (`approval` mode), or an account invite is made at once (`open` mode). States: unverified →
-- pending → approved | rejected; expired (unverified after 24 h). Nothing is deleted: a rejected
-- request is what the wait before asking again is counted from.
CREATE TABLE membership_requests (
  id              TEXT PRIMARY KEY CHECK (length(id) = 10),
  -- the address as typed, and as compared (domain lower-cased, local part case-folded)
  email           TEXT NOT NULL,
  email_key       TEXT NOT NULL,
  reason          TEXT,
  state           TEXT NOT NULL CHECK (state IN ('unverified', 'pending', 'approved', 'rejected', 'expired')),
  -- email_key while the request is live (unverified or pending): the unique index keeps one live
  -- request per address, however many arrive at once
  live_key        TEXT,
  -- the client address the request came from (the per-address limit counts these)
  ip              TEXT,
  created_at      INTEGER NOT NULL,
  verified_at     INTEGER,
  decided_at      INTEGER,
  -- the admin's bare JID, 'operator' (CLI) or 'system' (open mode)
  decided_by      TEXT,
  decision_reason TEXT,
  -- the account invite an approval made
  invite_id       TEXT REFERENCES invites (id)
);
CREATE UNIQUE INDEX membership_requests_live ON membership_requests (live_key) WHERE live_key IS NOT NULL;
CREATE INDEX membership_requests_state ON membership_requests (state, created_at, id);
CREATE INDEX membership_requests_email ON membership_requests (email_key, created_at);
CREATE INDEX membership_requests_ip ON membership_requests (ip, created_at) WHERE ip IS NOT NULL;
CREATE INDEX membership_requests_created ON membership_requests (created_at);
CREATE INDEX membership_requests_invite ON membership_requests (invite_id) WHERE invite_id IS NOT NULL;

CREATE TABLE membership_events (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  request_id TEXT NOT NULL REFERENCES membership_requests (id),
  at         INTEGER NOT NULL,
  -- requested, verified, approved, rejected, expired, asked-again
  type       TEXT NOT NULL,
  actor      TEXT NOT NULL,
  reason     TEXT,
  data       TEXT
);
CREATE INDEX membership_events_request ON membership_events (request_id, id);
CREATE INDEX membership_events_type_at ON membership_events (type, at);

CREATE TRIGGER membership_requests_never_deleted BEFORE DELETE ON membership_requests
BEGIN SELECT RAISE(ABORT, 'membership requests are never deleted'); END;
CREATE TRIGGER membership_requests_fixed_columns BEFORE UPDATE OF id, email, email_key, reason, ip, created_at ON membership_requests
  WHEN NEW.id IS NOT OLD.id OR NEW.email IS NOT OLD.email OR NEW.email_key IS NOT OLD.email_key
    OR NEW.reason IS NOT OLD.reason OR NEW.ip IS NOT OLD.ip OR NEW.created_at IS NOT OLD.created_at
BEGIN SELECT RAISE(ABORT, 'a membership request''s id, address, reason, client address and creation time never change'); END;
CREATE TRIGGER membership_events_never_deleted BEFORE DELETE ON membership_events
BEGIN SELECT RAISE(ABORT, 'membership events are never deleted'); END;
CREATE TRIGGER membership_events_never_changed BEFORE UPDATE ON membership_events
BEGIN SELECT RAISE(ABORT, 'membership events are never changed'); END;

-- migration 17: password reset invites
-- Kind `reset` (src/domain/resets.ts): an admin makes a one-use link with which the holder sets a
-- new password for one existing account. Kept apart from `invites` (whose kinds are fixed by a
-- CHECK that SQLite cannot change in place) with a log of its own. The token is the id and a MAC
-- under token_key with a label of its own, never stored. A use is claimed (open → held) by one
-- conditional UPDATE before the server is asked, then settled: used, or open again.
CREATE TABLE password_resets (
  id          TEXT PRIMARY KEY CHECK (length(id) = 10),
  -- the local part of the account on `host`
  username    TEXT NOT NULL,
  state       TEXT NOT NULL CHECK (state IN ('open', 'held', 'used', 'revoked')),
  -- the admin's bare JID, or 'operator' (CLI)
  created_by  TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  -- when the new password was set, or the link revoked
  ended_at    INTEGER
);
CREATE INDEX password_resets_username ON password_resets (username, created_at);
CREATE TABLE password_reset_events (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  reset_id  TEXT NOT NULL REFERENCES password_resets (id),
  at        INTEGER NOT NULL,
  -- created, claimed, used, failed, revoked
  type      TEXT NOT NULL,
  actor     TEXT NOT NULL,
  reason    TEXT,
  data      TEXT
);
CREATE INDEX password_reset_events_reset ON password_reset_events (reset_id, id);
CREATE TRIGGER password_resets_never_deleted BEFORE DELETE ON password_resets
BEGIN SELECT RAISE(ABORT, 'password resets are never deleted'); END;
CREATE TRIGGER password_resets_fixed_columns BEFORE UPDATE OF id, username, created_by, created_at, expires_at ON password_resets
  WHEN NEW.id IS NOT OLD.id OR NEW.username IS NOT OLD.username OR NEW.created_by IS NOT OLD.created_by
    OR NEW.created_at IS NOT OLD.created_at OR NEW.expires_at IS NOT OLD.expires_at
BEGIN SELECT RAISE(ABORT, 'a password reset''s id, account, maker, creation and expiry never change'); END;
CREATE TRIGGER password_reset_events_never_deleted BEFORE DELETE ON password_reset_events
BEGIN SELECT RAISE(ABORT, 'password reset events are never deleted'); END;
CREATE TRIGGER password_reset_events_never_changed BEFORE UPDATE ON password_reset_events
BEGIN SELECT RAISE(ABORT, 'password reset events are never changed'); END;
-- migration 18: the web console: sign-in links, sessions, and uses that may grow
-- A sign-in (src/domain/console-auth.ts) is asked for a JID of `host`: the row records it; the link
-- sent to that account carries the row's id and a MAC of it under `token_key` (derived like invite
-- tokens, never stored), valid for 10 minutes and once (`used_at`). `address` is a keyed hash of
-- the client's address (IPv6 by its /64), for the per-address limit. A session is the row of a
-- random id that only the browser's cookie holds: the database keeps its SHA-256, so a copy of the
-- database signs nobody in. Sessions end (logout, a new sign-in in the same browser, an admin's
-- revocation) by `ended_at`; they are records, never deleted.
CREATE TABLE console_logins (
  id          TEXT PRIMARY KEY,
  jid         TEXT NOT NULL,
  address     TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  used_at     INTEGER
);
CREATE INDEX console_logins_jid ON console_logins (jid, created_at);
CREATE INDEX console_logins_address ON console_logins (address, created_at);
CREATE TABLE console_sessions (
  id_hash     TEXT PRIMARY KEY,
  jid         TEXT NOT NULL,
  login_id    TEXT NOT NULL REFERENCES console_logins (id),
  created_at  INTEGER NOT NULL,
  -- the last request (written at most once a minute): the idle expiry counts from it
  seen_at     INTEGER NOT NULL,
  -- the absolute expiry
  expires_at  INTEGER NOT NULL,
  ended_at    INTEGER,
  -- logout, replaced (a new sign-in in the same browser), revoked
  ended_why   TEXT,
  CHECK ((ended_at IS NULL) = (ended_why IS NULL))
);
CREATE INDEX console_sessions_jid ON console_sessions (jid, created_at);
CREATE TRIGGER console_logins_never_deleted BEFORE DELETE ON console_logins
BEGIN SELECT RAISE(ABORT, 'sign-in links are never deleted'); END;
CREATE TRIGGER console_sessions_never_deleted BEFORE DELETE ON console_sessions
BEGIN SELECT RAISE(ABORT, 'console sessions are never deleted'); END;
CREATE TRIGGER console_logins_fixed_columns BEFORE UPDATE OF id, jid, address, created_at, expires_at ON console_logins
  WHEN NEW.id IS NOT OLD.id OR NEW.jid IS NOT OLD.jid OR NEW.address IS NOT OLD.address
    OR NEW.created_at IS NOT OLD.created_at OR NEW.expires_at IS NOT OLD.expires_at
BEGIN SELECT RAISE(ABORT, 'a sign-in link''s id, JID, address and times never change'); END;
CREATE TRIGGER console_sessions_fixed_columns BEFORE UPDATE OF id_hash, jid, login_id, created_at, expires_at ON console_sessions
  WHEN NEW.id_hash IS NOT OLD.id_hash OR NEW.jid IS NOT OLD.jid OR NEW.login_id IS NOT OLD.login_id
    OR NEW.created_at IS NOT OLD.created_at OR NEW.expires_at IS NOT OLD.expires_at
BEGIN SELECT RAISE(ABORT, 'a session''s id, JID, sign-in and times never change'); END;
-- An open invite's uses may be raised (`invite extend`, the console), never lowered: max_uses
-- leaves the fixed columns of migration 11 and may only grow.
DROP TRIGGER invites_fixed_columns;
CREATE TRIGGER invites_fixed_columns BEFORE UPDATE OF
    id, kind, inviter, source, invitee_email, invitee_email_key, invitee_jid, invitee_name, invitee_key,
    username, note, roster_subscription, created_at ON invites
  WHEN NEW.id IS NOT OLD.id OR NEW.kind IS NOT OLD.kind OR NEW.inviter IS NOT OLD.inviter
    OR NEW.source IS NOT OLD.source OR NEW.invitee_email IS NOT OLD.invitee_email
    OR NEW.invitee_email_key IS NOT OLD.invitee_email_key OR NEW.invitee_jid IS NOT OLD.invitee_jid
    OR NEW.invitee_name IS NOT OLD.invitee_name OR NEW.invitee_key IS NOT OLD.invitee_key
    OR NEW.username IS NOT OLD.username OR NEW.note IS NOT OLD.note
    OR NEW.roster_subscription IS NOT OLD.roster_subscription OR NEW.created_at IS NOT OLD.created_at
BEGIN SELECT RAISE(ABORT, 'an invite''s id, kind, inviter, source, invitee, username, note, roster subscription and creation time never change'); END;
CREATE TRIGGER invites_uses_only_grow BEFORE UPDATE OF max_uses ON invites
  WHEN NEW.max_uses < OLD.max_uses
BEGIN SELECT RAISE(ABORT, 'an invite''s uses allowed may grow, never shrink'); END;
-- migration 19: trust and deliverability (who vouched for whom, blocks, bounces, suppressions)
-- An account made through the service is its spent claim (the first one of its registration: the
-- claims of invites accepted alongside say `accepted with …`), the claim's invite names its inviter
-- and approver. This index finds an account's claim by username, and an inviter's accounts through
-- claims_invite; the invitation tree (src/domain/trust.ts) is read from those.
CREATE INDEX claims_spent_username ON claims (username, settled_at) WHERE state = 'spent';
-- `user block` / `user unblock`: the latest row of a JID says whether it is blocked, and why.
CREATE TABLE user_blocks (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  jid     TEXT NOT NULL,
  blocked INTEGER NOT NULL CHECK (blocked IN (0, 1)),
  reason  TEXT,
  -- 'operator' (CLI) or an admin's bare JID
  actor   TEXT NOT NULL,
  at      INTEGER NOT NULL
);
CREATE INDEX user_blocks_jid ON user_blocks (jid, id);
CREATE TRIGGER user_blocks_never_deleted BEFORE DELETE ON user_blocks
BEGIN SELECT RAISE(ABORT, 'blocks are never deleted'); END;
CREATE TRIGGER user_blocks_never_changed BEFORE UPDATE ON user_blocks
BEGIN SELECT RAISE(ABORT, 'blocks are never changed'); END;
-- Bounces that came back for an e-mail of the outbox (VERP: the envelope sender names the row).
CREATE TABLE bounces (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  outbox_id  INTEGER NOT NULL REFERENCES outbox (id),
  -- 1: a permanent failure (5.x.x), 0: a transient one (4.x.x), recorded only
  permanent  INTEGER NOT NULL CHECK (permanent IN (0, 1)),
  -- the DSN status (5.1.1) and the remote server's diagnostic, as reported
  status     TEXT NOT NULL,
  diagnostic TEXT,
  -- 'pipe' (mail bounce) or 'lmtp'
  via        TEXT NOT NULL,
  at         INTEGER NOT NULL
);
CREATE INDEX bounces_outbox ON bounces (outbox_id);
CREATE INDEX bounces_at ON bounces (at);
CREATE TRIGGER bounces_never_deleted BEFORE DELETE ON bounces
BEGIN SELECT RAISE(ABORT, 'bounces are never deleted'); END;
CREATE TRIGGER bounces_never_changed BEFORE UPDATE ON bounces
BEGIN SELECT RAISE(ABORT, 'bounces are never changed'); END;
-- Addresses that bounced for good: a keyed hash (as opt_outs), the latest row of a hash says whether
-- it is suppressed (a bounce) or not (`mail unsuppress`).
CREATE TABLE suppressions (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  address_hash TEXT NOT NULL,
  suppressed   INTEGER NOT NULL CHECK (suppressed IN (0, 1)),
  bounce_id    INTEGER REFERENCES bounces (id),
  actor        TEXT NOT NULL,
  at           INTEGER NOT NULL
);
CREATE INDEX suppressions_hash ON suppressions (address_hash, id);
CREATE TRIGGER suppressions_never_deleted BEFORE DELETE ON suppressions
BEGIN SELECT RAISE(ABORT, 'suppressions are never deleted'); END;
CREATE TRIGGER suppressions_never_changed BEFORE UPDATE ON suppressions
BEGIN SELECT RAISE(ABORT, 'suppressions are never changed'); END;
-- When the invitation e-mail bounced for good: the invite's e-mail delivery reads `bounced` (a
-- resend, which e-mails a new token, clears it).
ALTER TABLE invites ADD COLUMN email_bounced_at INTEGER;
-- migration 20: webhooks, a third channel of the outbox
-- The channel's CHECK admits 'webhook'. SQLite changes a CHECK only by building the table again: the
-- rows are copied as they are (ids included; `SELECT *` fails loudly rather than drop a column that a
-- later migration of the table would add), then the indexes and triggers are made again. A webhook
-- row's recipient is the endpoint's URL and its params hold the exact body, so every attempt sends
-- the same event id and the same bytes; the secret stays in the configuration.
-- bounces.outbox_id references outbox (migration 19): dropping the old table would fail that
-- reference for every bounce; checked at COMMIT instead, by when the new table holds the same ids.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE outbox_rebuilt (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  channel     TEXT NOT NULL CHECK (channel IN ('xmpp', 'email', 'webhook')),
  kind        TEXT NOT NULL,
  recipient   TEXT NOT NULL,
  invite_ids  TEXT NOT NULL DEFAULT '[]',
  params      TEXT NOT NULL DEFAULT '{}',
  state       TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
  attempts    INTEGER NOT NULL DEFAULT 0,
  last_error  TEXT,
  not_before  INTEGER NOT NULL,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  sent_at     INTEGER,
  message_id  TEXT NOT NULL UNIQUE,
  claimed_by  TEXT
);
INSERT INTO outbox_rebuilt SELECT * FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_rebuilt RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (state, not_before);
CREATE INDEX outbox_recipient ON outbox (recipient, kind, created_at);
CREATE TRIGGER outbox_never_deleted BEFORE DELETE ON outbox
BEGIN SELECT RAISE(ABORT, 'outbox rows are never deleted'); END;
CREATE TRIGGER outbox_fixed_columns BEFORE UPDATE OF id, channel, kind, recipient, message_id, created_at ON outbox
  WHEN NEW.id IS NOT OLD.id OR NEW.channel IS NOT OLD.channel OR NEW.kind IS NOT OLD.kind
    OR NEW.recipient IS NOT OLD.recipient OR NEW.message_id IS NOT OLD.message_id OR NEW.created_at IS NOT OLD.created_at
BEGIN SELECT RAISE(ABORT, 'an outbox row''s id, channel, kind, recipient, message id and creation time never change'); END;
-- migration 21: questions to the running service whether an account exists
-- The command line talks no XMPP, so it cannot ask the server whether an account exists (a password
-- reset link is made only for one that does: `invite create --kind reset`). It writes a question
-- here and waits; a running instance of `serve` takes it (one conditional UPDATE: exactly one
-- instance asks the server), asks through its provisioner and writes the answer (a second
-- conditional UPDATE). The asker reads the answer, or, when its wait is over, closes the question as
-- `unanswered` with the same conditional UPDATE, so that it acts on exactly what the row says:
-- src/domain/account-checks.ts has the rules, src/store/account-checks-repo.ts the statements.
-- The rows are the log of who asked about which account and what the server said: never deleted,
-- and once answered never changed.
CREATE TABLE account_checks (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  -- the local part of the account on `host`, normalised
  username    TEXT NOT NULL,
  -- 'operator' (CLI)
  asked_by    TEXT NOT NULL,
  asked_at    INTEGER NOT NULL,
  -- until when the asker waits: no instance takes the question after that
  wait_until  INTEGER NOT NULL,
  -- the instance (src/app.ts) that took the question to ask the server, and when
  taken_by    TEXT,
  taken_at    INTEGER,
  -- exists, missing; unclear: the server could not say (reason); unanswered: the asker stopped
  -- waiting before an answer came
  answer      TEXT CHECK (answer IN ('exists', 'missing', 'unclear', 'unanswered')),
  reason      TEXT,
  -- the instance that answered, or the asker ('operator') for unanswered
  answered_by TEXT,
  answered_at INTEGER,
  CHECK ((taken_by IS NULL) = (taken_at IS NULL)),
  CHECK ((answer IS NULL) = (answered_at IS NULL) AND (answer IS NULL) = (answered_by IS NULL)),
  CHECK (CASE WHEN answer = 'unclear' THEN reason IS NOT NULL ELSE reason IS NULL END)
);
-- The questions waiting for an answer, found without reading the log.
CREATE INDEX account_checks_open ON account_checks (id) WHERE answer IS NULL;
CREATE TRIGGER account_checks_never_deleted BEFORE DELETE ON account_checks
BEGIN SELECT RAISE(ABORT, 'account checks are never deleted'); END;
CREATE TRIGGER account_checks_fixed_columns BEFORE UPDATE OF id, username, asked_by, asked_at, wait_until ON account_checks
  WHEN NEW.id IS NOT OLD.id OR NEW.username IS NOT OLD.username OR NEW.asked_by IS NOT OLD.asked_by
    OR NEW.asked_at IS NOT OLD.asked_at OR NEW.wait_until IS NOT OLD.wait_until
BEGIN SELECT RAISE(ABORT, 'an account check''s id, account, asker, time and wait never change'); END;
CREATE TRIGGER account_checks_answered_never_changed BEFORE UPDATE ON account_checks
  WHEN OLD.answer IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'an answered account check never changes'); END;

-- migration 22: what is queued wakes every instance at once (LISTEN/NOTIFY)
-- PostgreSQL only (schema.pg.sql): the instances on one SQLite file are processes of one machine,
-- whose workers find each other's work by polling. Nothing changes here.
