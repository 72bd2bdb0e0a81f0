-- mod_xmpp_invites: lets Prosody check and spend the invites of an xmpp-invites component while
-- clients register at the server (XEP-0445 pre-authenticated in-band registration, XEP-0379
-- pre-authenticated roster subscription, XEP-0401 `register;preauth=` and `roster;preauth=;ibr=y`).
--
-- The wire protocol is described in PROTOCOL.md beside this file (`urn:xmpp-invites:bridge:0`).
--
-- Configuration, under the VirtualHost:
--   modules_enabled = { ..., "xmpp_invites" }
--   xmpp_invites_component = "invites.example.com"   -- required
--   xmpp_invites_timeout = 10                          -- seconds to wait for the component
-- and the folder of this file in the global `plugin_paths`. Do not set `allow_registration`: the
-- module enables in-band registration itself, so that registration stays closed whenever the module
-- is not loaded.
--
-- Prosody 0.12+. This module never logs invite tokens or passwords.

local st = require "util.stanza";
local jid_util = require "util.jid";
local async = require "util.async";
local promise = require "util.promise";
local errors = require "util.error";
local new_id = require "util.id".medium;
local new_cache = require "util.cache".new;
local usermanager = require "core.usermanager";
local rostermanager = require "core.rostermanager";
local modulemanager = require "core.modulemanager";
local nodeprep = require "util.encodings".stringprep.nodeprep;

local jid_bare, jid_split, jid_prep = jid_util.bare, jid_util.split, jid_util.prep;

local NS = "urn:xmpp-invites:bridge:0";
local NS_PARS = "urn:xmpp:pars:0";
local NS_COMMANDS = "http://jabber.org/protocol/commands";
local NS_REGISTER = "jabber:iq:register";
local NS_DATA = "jabber:x:data";
local VERSION = "0";

local host = module.host;

---------------------------------------------------------------------------------------------------
-- Configuration and load-time checks
---------------------------------------------------------------------------------------------------

if module:get_host_type() ~= "local" then
	error("mod_xmpp_invites must be enabled under a VirtualHost, not on a Component or globally", 0);
end

local component_option = module:get_option_string("xmpp_invites_component");
if not component_option or component_option == "" then
	error("mod_xmpp_invites: the option xmpp_invites_component is required: set it under the VirtualHost "
		.. "to the xmpp-invites component's JID, e.g. xmpp_invites_component = \"invites." .. host .. "\"", 0);
end
local component = jid_prep(component_option);
do
	local c_node, c_host, c_resource = jid_split(component or "");
	if not component or c_node or c_resource or not c_host then
		error(("mod_xmpp_invites: xmpp_invites_component must be a bare domain such as \"invites.%s\", not %q")
			:format(host, component_option), 0);
	end
end

local iq_timeout = module:get_option_number("xmpp_invites_timeout", 10);
local require_encryption = module:get_option_boolean("c2s_require_encryption",
	module:get_option_boolean("require_encryption", true));

-- Prosody's own invitation modules gate the same hooks with a different token store: running both
-- would make every registration depend on two unrelated token systems.
local conflicting = { invites_register = true, invites_adhoc = true };
-- Debian's prosody.cfg.lua (bookworm's 0.12, and 13) enables them globally: say how to disable them.
local how_to_disable = ('write modules_disabled = { "invites", "invites_adhoc", "invites_register" } under '
	.. 'VirtualHost %q (or remove them from the global modules_enabled)'):format(host);
for name in pairs(conflicting) do
	if modulemanager.is_loaded(host, name) then
		error(("mod_xmpp_invites cannot run beside Prosody's mod_%s on %s: %s; the xmpp-invites component "
			.. "replaces Prosody's invites"):format(name, host, how_to_disable), 0);
	end
end

-- A conflicting module loaded AFTER this one (load order within a host is not defined, and modules
-- can be loaded at run time) does not unload this module: unloading would leave mod_register_ibr
-- (loaded by module:depends below) behind and could open registration. Instead the module stays
-- loaded and fails closed: every preauth and registration is refused with an error in the log,
-- until the conflicting module is unloaded again.
local blocked_by = {};
-- The name of a conflicting module that is loaded, or nil. One value only: next() also returns the
-- table's value, which a log call would print as a stray extra argument ("… [true]").
local function blocked()
	return (next(blocked_by));
end
module:hook("module-loaded", function (event)
	if event.host == host and conflicting[event.module] then
		blocked_by[event.module] = true;
		module:log("error", "mod_%s was loaded beside mod_xmpp_invites: registration on %s is refused until "
			.. "it is unloaded: %s", event.module, host, how_to_disable);
	end
end);
module:hook("module-unloaded", function (event)
	if event.host == host and blocked_by[event.module] then
		blocked_by[event.module] = nil;
		module:log("info", "mod_%s was unloaded: registration through xmpp-invites is possible again", event.module);
	end
end);

if module:get_option_boolean("allow_registration", false) then
	module:log("warn", "allow_registration is set on %s: remove it. mod_xmpp_invites enables in-band "
		.. "registration itself; with allow_registration, registration stays open if this module fails to load", host);
end

if prosody.process_type == "prosody" then
	module:depends("register_ibr");
end

module:add_feature(NS);

---------------------------------------------------------------------------------------------------
-- Talking to the component
---------------------------------------------------------------------------------------------------

-- Rejecters of requests still waiting for the component, so that unloading the module never leaves
-- a client stream paused forever (module timers stop firing once the module is unloaded).
local outstanding = {};

-- Conditions that say "the component could not be asked", rather than "the component refused".
local unreachable_conditions = {
	["remote-server-timeout"] = true; -- Prosody bounces IQs to a disconnected component with this
	["remote-server-not-found"] = true;
	["recipient-unavailable"] = true;
	["service-unavailable"] = true;
	["resource-constraint"] = true;
	["internal-server-error"] = true;
	["undefined-condition"] = true;
};

local unreachable_text = "The invitation service is not reachable right now, please try again later";

-- Turns a rejection from `request` into the error the client should see: the component's own
-- condition, type and text when the component answered, else service-unavailable (wait). Never
-- anything that could be mistaken for success.
local function client_error(err)
	local answered = type(err) == "table" and err.context and err.context.stanza
		and err.context.stanza.attr.from == component;
	if answered and err.condition and not unreachable_conditions[err.condition] then
		return { type = err.type or "cancel", condition = err.condition, text = err.text };
	end
	return { type = "wait", condition = "service-unavailable", text = unreachable_text };
end

local function error_condition(err)
	return type(err) == "table" and err.condition or tostring(err);
end

-- Sends one bridge request; resolves with the component's result stanza, rejects with a util.error.
local function request(iq_type, name, attrs)
	attrs.xmlns = NS;
	attrs.version = VERSION;
	local iq = st.iq({ type = iq_type, from = host, to = component, id = new_id() }):tag(name, attrs):up();
	local sent = module:send_iq(iq, nil, iq_timeout);
	return promise.new(function (resolve, reject)
		outstanding[reject] = true;
		sent:next(function (event)
			outstanding[reject] = nil;
			local reply = event.stanza;
			-- Prosody 0.12's send_iq RESOLVES with the error when the IQ is bounced locally (a
			-- disconnected component: remote-server-timeout), because its wrapped origin matches
			-- replies by name and id only. Only a type='result' is a result.
			if reply and reply.attr.type == "result" then
				resolve(reply);
			elseif reply and reply.attr.type == "error" then
				reject(errors.from_stanza(reply));
			else
				reject(errors.new({ type = "wait", condition = "undefined-condition", text = "Unexpected reply" }));
			end
		end, function (err)
			outstanding[reject] = nil;
			reject(err);
		end);
	end);
end

local function reply_error(origin, stanza, e)
	origin.send(st.error_reply(stanza, e.type, e.condition, e.text));
end

---------------------------------------------------------------------------------------------------
-- Settles, kept in storage until the component acknowledges them
---------------------------------------------------------------------------------------------------

-- keyval store "xmpp_invites_settles", host-level entry (nil key, so that no account's data and no
-- account deletion ever touches it): { [claim_id] = "done" | "released" }
local settle_store = module:open_store("xmpp_invites_settles");
local HOST_KEY = nil;
local settles_in_flight = {};
-- Whether the store may hold settles: avoids reading it every retry period when it is empty.
local maybe_pending = true;

local function read_pending()
	local pending, err = settle_store:get(HOST_KEY);
	if err then
		module:log("error", "Could not read pending settles: %s", err);
	end
	return pending, err;
end

local function forget_settle(claim_id)
	local pending, err = read_pending();
	if err then return; end
	if pending and pending[claim_id] then
		pending[claim_id] = nil;
		local ok, set_err = settle_store:set(HOST_KEY, next(pending) and pending or nil);
		if not ok then
			module:log("error", "Could not update pending settles: %s", set_err);
		end
	end
end

local function send_settle(claim_id, outcome)
	if settles_in_flight[claim_id] then return; end
	settles_in_flight[claim_id] = true;
	request("set", "settle", { claim = claim_id, outcome = outcome }):next(function ()
		settles_in_flight[claim_id] = nil;
		module:log("debug", "Claim %s settled (%s)", claim_id, outcome);
		forget_settle(claim_id);
	end, function (err)
		settles_in_flight[claim_id] = nil;
		if error_condition(err) == "item-not-found" then
			-- Unknown to the component: it has settled the claim itself, or never had it.
			module:log("debug", "Claim %s is unknown to the component, forgetting it", claim_id);
			forget_settle(claim_id);
		else
			module:log("warn", "Could not settle claim %s (%s) yet: %s; will retry", claim_id, outcome,
				error_condition(err));
		end
	end):catch(function (e)
		module:log("error", "Error while settling a claim: %s", e);
	end);
end

-- Stores the settle first (so that it survives a restart), then sends it.
local function settle(claim_id, outcome)
	local pending = read_pending() or {};
	pending[claim_id] = outcome;
	local ok, set_err = settle_store:set(HOST_KEY, pending);
	if not ok then
		module:log("error", "Could not store the settle of claim %s: %s", claim_id, set_err);
	end
	maybe_pending = true;
	send_settle(claim_id, outcome);
end

local function retry_settles()
	if not maybe_pending then return; end
	local pending, err = read_pending();
	if err then return; end
	if not pending or next(pending) == nil then
		maybe_pending = false;
		return;
	end
	for claim_id, outcome in pairs(pending) do
		send_settle(claim_id, outcome);
	end
end

---------------------------------------------------------------------------------------------------
-- XEP-0445: pre-authenticated in-band registration at the server
---------------------------------------------------------------------------------------------------

local legacy_invite_stream_feature = st.stanza("register", { xmlns = "urn:xmpp:invite" }):up();
local invite_stream_feature = st.stanza("register", { xmlns = "urn:xmpp:ibr-token:0" }):up();
module:hook("stream-features", function (event)
	local session, features = event.origin, event.features;
	-- Advertise to unauthenticated clients only, as mod_register_ibr and mod_invites_register do.
	if session.type ~= "c2s_unauthed" or (require_encryption and not session.secure) then
		return;
	end
	features:add_child(legacy_invite_stream_feature);
	features:add_child(invite_stream_feature);
end);

-- The client presents its token before registering. The component checks it (expiry included:
-- XEP-0445 checks expiry when the token is first presented); on success the session remembers the
-- token so that the registration that follows claims with preauth='true'.
module:hook("stanza/iq/" .. NS_PARS .. ":preauth", function (event)
	local origin, stanza = event.origin, event.stanza;
	if origin.type ~= "c2s_unauthed" then
		origin.send(st.error_reply(stanza, "cancel", "service-unavailable"));
		return true;
	end
	if stanza.attr.type ~= "set" then
		origin.send(st.error_reply(stanza, "modify", "bad-request", "The preauth request must be an IQ set"));
		return true;
	end
	if require_encryption and not origin.secure then
		origin.send(st.error_reply(stanza, "modify", "policy-violation", "Encryption is required"));
		return true;
	end
	local token = stanza.tags[1].attr.token;
	if not token or token == "" then
		origin.send(st.error_reply(stanza, "modify", "bad-request", "The token attribute is missing"));
		return true;
	end
	if blocked() then
		module:log("error", "Refusing a preauth: mod_%s is loaded beside mod_xmpp_invites", blocked());
		origin.send(st.error_reply(stanza, "wait", "service-unavailable", unreachable_text));
		return true;
	end

	-- A new preauth replaces an earlier one on this stream, whatever its outcome.
	origin.xmpp_invites_preauth = nil;

	local function on_result(result)
		local check = result:get_child("check", NS);
		origin.xmpp_invites_preauth = {
			token = token;
			kind = check and check.attr.kind;
			username = check and check.attr.username;
		};
		(origin.log or module._log)("debug", "Invite token accepted by the component (kind %s)",
			check and check.attr.kind or "?");
		origin.send(st.reply(stanza));
	end
	local function on_error(err)
		local e = client_error(err);
		(origin.log or module._log)("debug", "Invite token refused: %s", error_condition(err));
		reply_error(origin, stanza, e);
	end

	local p = request("get", "check", { token = token, ip = origin.ip });
	if async.ready() then
		local result, err = async.wait_for(p);
		if result then on_result(result) else on_error(err) end
	else
		-- Not inside a runner (should not happen for c2s in 0.12): answer from the promise instead.
		p:next(on_result, on_error):catch(function (e)
			module:log("error", "Error while answering a preauth: %s", e);
		end);
	end
	return true;
end, 10);

-- Registration attempts through mod_register_ibr. The wrapper runs around the whole
-- jabber:iq:register handling, which is synchronous apart from our own wait for the claim, so that
-- when it returns we KNOW whether the account was created: user-registered fires (then the claim
-- is settled 'done') or it did not (the attempt failed after the claim, e.g. the username appeared
-- meanwhile, storage failed, or a module after us refused: the claim is settled 'released' at
-- once, freeing the use). If the handler throws, nothing is settled here and the component resolves
-- the claim itself with account-exists after its claim lifetime.
local function form_token(query)
	local form = query and query:get_child("x", NS_DATA);
	if not form then return nil; end
	for field in form:childtags("field") do
		if field.attr.var == "token" then
			local value = field:get_child_text("value");
			if value and value ~= "" then return value; end
		end
	end
	return nil;
end

module:wrap_event("stanza/iq/" .. NS_REGISTER .. ":query", function (handlers, event_name, event_data)
	local session, stanza = event_data.origin, event_data.stanza;
	if stanza.attr.type ~= "set" or session.type ~= "c2s_unauthed" then
		return handlers(event_name, event_data);
	end
	local attempt = { form_token = form_token(stanza.tags[1]) };
	session.xmpp_invites_attempt = attempt;
	local ret = handlers(event_name, event_data);
	if session.xmpp_invites_attempt == attempt then
		session.xmpp_invites_attempt = nil;
	end
	if attempt.claim and not attempt.settled then
		module:log("debug", "Registration of %s failed after its claim: releasing claim %s", attempt.username,
			attempt.claim);
		attempt.settled = true;
		settle(attempt.claim, "released");
	end
	return ret;
end);

-- Claims of registrations through paths other than mod_register_ibr's (no stream, no wrapper)
-- whose user-registered event has not been seen yet, by username. Forgotten after 5 minutes (the
-- component resolves such a claim itself with account-exists).
local pending_claims = {};

local function refuse(event, err_type, condition, text)
	event.allowed = false;
	event.error_type, event.error_condition, event.reason = err_type, condition, text;
	-- Prosody 0.12's mod_register_ibr prefers event.error (a util.error) when present.
	event.error = nil;
end

-- Lowest priority: every other module (limits, blocklists, tombstones...) has had its say; act only
-- when none of them refused.
module:hook("user-registering", function (event)
	if event.allowed == false then return; end
	local username = event.username;
	local session = event.session;
	-- (Fired on this host's events: it is this host's registration, whatever event.host says.)

	if blocked() then
		module:log("error", "Refusing a registration: mod_%s is loaded beside mod_xmpp_invites", blocked());
		refuse(event, "wait", "service-unavailable", unreachable_text);
		return;
	end
	if not username or username == "" then
		refuse(event, "modify", "not-acceptable", "The requested username is invalid.");
		return;
	end
	if usermanager.user_exists(username, host) then
		refuse(event, "cancel", "conflict", "The requested username already exists.");
		return;
	end

	local attempt = session and session.xmpp_invites_attempt;
	local preauth = session and session.xmpp_invites_preauth;
	local token, preauthed;
	if attempt and attempt.form_token then
		token = attempt.form_token;
		preauthed = preauth ~= nil and preauth.token == token;
	elseif preauth then
		token, preauthed = preauth.token, true;
	end

	-- Every c2s stanza is processed inside an async runner (session.thread) in Prosody 0.12, so the
	-- handler can wait for the component. Check before sending anything: a claim made when we
	-- cannot wait for its answer would stay held at the component until it reconciles it.
	if not async.ready() then
		module:log("error", "user-registering fired outside an async runner: cannot ask the component, refusing");
		refuse(event, "wait", "service-unavailable", unreachable_text);
		return;
	end
	local result, err = async.wait_for(request("set", "claim", {
		token = token;
		username = username;
		ip = event.ip or (session and session.ip);
		preauth = preauthed and "true" or nil;
	}));
	if not result then
		local e = client_error(err);
		module:log("debug", "Registration of %s refused by the component: %s", username, error_condition(err));
		refuse(event, e.type, e.condition, e.text);
		return;
	end
	local claim = result:get_child("claim", NS);
	local claim_id = claim and claim.attr.id;
	if not claim_id or claim_id == "" then
		-- The component holds something we cannot name: it resolves it itself after its claim lifetime.
		module:log("error", "The component accepted the claim for %s without a claim id; refusing", username);
		refuse(event, "wait", "internal-server-error", "The invitation service gave an invalid answer");
		return;
	end
	module:log("debug", "Claim %s holds an invite use for %s", claim_id, username);
	event.xmpp_invites_claim = claim_id;
	if attempt then
		-- mod_register_ibr: the wrapper above settles it either way.
		attempt.claim, attempt.username = claim_id, username;
	else
		pending_claims[username] = { id = claim_id, at = os.time() };
	end
end, -1000);

module:hook("user-registered", function (event)
	-- Accounts the component created itself (create-account) carry no claim of ours.
	if event.source == "mod_xmpp_invites" then return; end
	if event.host and event.host ~= host then return; end
	local username = event.username;
	local attempt = event.session and event.session.xmpp_invites_attempt;
	local claim_id;
	if attempt and attempt.claim and attempt.username == username then
		claim_id = attempt.claim;
		attempt.settled = true;
	elseif pending_claims[username] then
		claim_id = pending_claims[username].id;
	end
	pending_claims[username] = nil;
	if not claim_id then
		module:log("debug", "Account %s was registered without a claim (source %s)", username, event.source or "?");
		return;
	end
	settle(claim_id, "done");
end);

---------------------------------------------------------------------------------------------------
-- XEP-0379: pre-authenticated roster subscription
---------------------------------------------------------------------------------------------------

-- How a subscribe is held while the component decides: presence/bare handlers do not always run in
-- an async runner (s2s and local deliveries, for instance), so the handler cannot wait. It returns
-- true, which stops processing (mod_presence, priority 0, never sees it), and keeps the event. When
-- the component answers (or the request times out), the SAME event is fired again on the host's
-- presence/bare chain with the stanza marked as decided, so this handler lets it pass and
-- mod_presence treats it exactly as it would have: after an approval, the roster says the contact
-- is subscribed and mod_presence answers `subscribed` and sends the user's presence; otherwise it is
-- an ordinary subscription request, stored and delivered once. Duplicates of a subscribe already
-- being checked (same from and to) are held alongside and released with it, unchecked.
local decided = setmetatable({}, { __mode = "k" });
local held = {}; -- "from to" -> list of held events (the first is the one being checked)

local function release(key)
	local events = held[key];
	if not events then return; end
	held[key] = nil;
	for _, held_event in ipairs(events) do
		decided[held_event.stanza] = true;
		module:fire_event("presence/bare", held_event);
	end
end

local function approve(username, contact, stanza)
	if not rostermanager.set_contact_pending_in(username, host, contact, stanza) then
		return false;
	end
	if not rostermanager.subscribed(username, host, contact) then
		return false;
	end
	rostermanager.roster_push(username, host, contact);
	return true;
end

-- Goal is mutual subscription, as in mod_invites_register: the user asks back.
local function subscribe_back(username, contact)
	if rostermanager.is_user_subscribed(username, host, contact)
	or rostermanager.is_contact_pending_out(username, host, contact) then
		return;
	end
	if rostermanager.set_contact_pending_out(username, host, contact) then
		rostermanager.roster_push(username, host, contact);
		module:send(st.presence({ type = "subscribe", from = username .. "@" .. host, to = contact }));
	else
		module:log("warn", "Failed to set contact pending out for %s", username);
	end
end

module:hook("presence/bare", function (event)
	local stanza = event.stanza;
	if stanza.attr.type ~= "subscribe" or decided[stanza] then return; end
	local preauth = stanza:get_child("preauth", NS_PARS);
	local token = preauth and preauth.attr.token;
	if not token or token == "" then return; end

	local to_bare, from_bare = jid_bare(stanza.attr.to), jid_bare(stanza.attr.from);
	local username, to_host = jid_split(to_bare);
	if not username or to_host ~= host or not from_bare or from_bare == to_bare then return; end
	if not usermanager.user_exists(username, host) then return; end
	-- Already subscribed: mod_presence answers `subscribed` by itself; no use to spend.
	if rostermanager.is_contact_subscribed(username, host, from_bare) then return; end

	local key = from_bare .. " " .. to_bare;
	if held[key] then
		table.insert(held[key], event);
		return true;
	end
	held[key] = { event };

	request("set", "subscription", { token = token, from = from_bare, to = to_bare }):next(function ()
		if not held[key] then return; end -- released already (module unloading)
		if approve(username, from_bare, stanza) then
			module:log("debug", "Approved the subscription of %s to %s with an invite", from_bare, username);
			release(key);
			subscribe_back(username, from_bare);
		else
			module:log("warn", "Could not store the approved subscription of %s to %s", from_bare, username);
			release(key);
		end
	end, function (err)
		module:log("debug", "Subscription of %s to %s not pre-approved: %s", from_bare, username, error_condition(err));
		release(key);
	end):catch(function (e)
		module:log("error", "Error while deciding a pre-authenticated subscription: %s", e);
		release(key);
	end);
	return true;
end, 10);

---------------------------------------------------------------------------------------------------
-- Requests from the component
---------------------------------------------------------------------------------------------------

local account_details = module:open_store("account_details");

local function local_user_jid(value)
	local prepped = value and jid_prep(value);
	if not prepped then return nil; end
	local node, jhost, resource = jid_split(prepped);
	if not node or jhost ~= host or resource then return nil; end
	return prepped, node;
end

local function prep_username(value)
	if not value or value == "" then return nil; end
	local prepped = nodeprep(value, true);
	if not prepped or prepped == "" or prepped ~= value then return nil; end
	return prepped;
end

-- Makes user a one-way subscriber of contact (as mod_invites_register does for invites).
local function subscribe(user, contact)
	local user_jid, contact_jid = user .. "@" .. host, contact .. "@" .. host;
	rostermanager.set_contact_pending_out(user, host, contact_jid);
	rostermanager.set_contact_pending_in(contact, host, user_jid);
	rostermanager.subscribed(contact, host, user_jid);
	rostermanager.process_inbound_subscription_approval(user, host, contact_jid);
end

local function subscription_of(user, contact_jid)
	local roster = rostermanager.load_roster(user, host);
	local item = roster and roster[contact_jid];
	return item and item.subscription;
end

local handlers = {};

handlers["set/create-account"] = function (origin, stanza, el)
	local username, password = el.attr.username, el.attr.password;
	if not username or not password then
		origin.send(st.error_reply(stanza, "modify", "bad-request", "username and password are required"));
		return;
	end
	username = prep_username(username);
	if not username then
		origin.send(st.error_reply(stanza, "modify", "not-acceptable", "The username is invalid"));
		return;
	end
	if password == "" then
		origin.send(st.error_reply(stanza, "modify", "not-acceptable", "The password is empty"));
		return;
	end
	if usermanager.user_exists(username, host) then
		origin.send(st.error_reply(stanza, "cancel", "conflict", "The account already exists"));
		return;
	end
	local ok, err = usermanager.create_user(username, password, host);
	if not ok then
		module:log("error", "Could not create the account %s for the component: %s", username, err);
		origin.send(st.error_reply(stanza, "wait", "internal-server-error",
			"Could not create the account: " .. tostring(err or "unknown error")));
		return;
	end
	if not account_details:set(username, { registered = os.time() }) then
		module:log("warn", "Could not store the registration time of %s", username);
	end
	module:log("info", "Account %s@%s created for the invitation service", username, host);
	origin.send(st.reply(stanza));
	-- Let other modules (welcome messages, registration watchers...) see the new account. Our own
	-- user-registered handler skips this source: there is no claim of ours to settle.
	module:fire_event("user-registered", { username = username, host = host, source = "mod_xmpp_invites" });
end

-- A password reset link was used at the component: set the account's new password.
handlers["set/set-password"] = function (origin, stanza, el)
	local username, password = el.attr.username, el.attr.password;
	if not username or not password or password == "" then
		origin.send(st.error_reply(stanza, "modify", "bad-request", "username and password are required"));
		return;
	end
	username = prep_username(username);
	if not username or not usermanager.user_exists(username, host) then
		origin.send(st.error_reply(stanza, "cancel", "item-not-found", "The account does not exist"));
		return;
	end
	local ok, err = usermanager.set_password(username, password, host);
	if not ok then
		module:log("error", "Could not set the password of %s for the component: %s", username, err);
		origin.send(st.error_reply(stanza, "wait", "internal-server-error",
			"Could not set the password: " .. tostring(err or "unknown error")));
		return;
	end
	module:log("info", "Password of %s@%s set with a reset link of the invitation service", username, host);
	origin.send(st.reply(stanza));
end

handlers["get/account-exists"] = function (origin, stanza, el)
	local username = el.attr.username;
	if not username then
		origin.send(st.error_reply(stanza, "modify", "bad-request", "username is required"));
		return;
	end
	username = prep_username(username);
	local exists = username ~= nil and usermanager.user_exists(username, host);
	origin.send(st.reply(stanza):tag("account-exists", { xmlns = NS, version = VERSION,
		exists = exists and "true" or "false" }));
end

handlers["set/link-contacts"] = function (origin, stanza, el)
	if not el.attr.a or not el.attr.b then
		origin.send(st.error_reply(stanza, "modify", "bad-request", "a and b are required"));
		return;
	end
	local a_jid, a = local_user_jid(el.attr.a);
	local b_jid, b = local_user_jid(el.attr.b);
	if not a_jid or not b_jid or a_jid == b_jid then
		origin.send(st.error_reply(stanza, "modify", "bad-request", "a and b must be two local bare JIDs"));
		return;
	end
	if not usermanager.user_exists(a, host) or not usermanager.user_exists(b, host) then
		origin.send(st.error_reply(stanza, "cancel", "item-not-found", "No such account"));
		return;
	end
	subscribe(a, b);
	subscribe(b, a);
	if subscription_of(a, b_jid) ~= "both" or subscription_of(b, a_jid) ~= "both" then
		module:log("error", "Could not link %s and %s as contacts", a_jid, b_jid);
		origin.send(st.error_reply(stanza, "wait", "internal-server-error", "Could not update the rosters"));
		return;
	end
	-- XEP-0401 §3.4: roster pushes to the online resources of both.
	rostermanager.roster_push(a, host, b_jid);
	rostermanager.roster_push(b, host, a_jid);
	-- Online resources learn each other's presence (mod_presence answers the probes).
	module:send(st.presence({ type = "probe", from = a_jid, to = b_jid }));
	module:send(st.presence({ type = "probe", from = b_jid, to = a_jid }));
	module:log("debug", "Linked %s and %s as contacts", a_jid, b_jid);
	origin.send(st.reply(stanza));
end

module:hook("iq/host", function (event)
	local origin, stanza = event.origin, event.stanza;
	local el = stanza.tags[1];
	local iq_type = stanza.attr.type;
	if not el or el.attr.xmlns ~= NS or (iq_type ~= "get" and iq_type ~= "set") then return; end
	if stanza.attr.from ~= component or origin.type ~= "component" then
		origin.send(st.error_reply(stanza, "auth", "forbidden", "Only the invitation service may use this"));
		return true;
	end
	if not el.attr.version then
		origin.send(st.error_reply(stanza, "modify", "bad-request", "The version attribute is missing"));
		return true;
	end
	if el.attr.version ~= VERSION then
		origin.send(st.error_reply(stanza, "cancel", "feature-not-implemented", "Unsupported bridge version"));
		return true;
	end
	local handler = handlers[iq_type .. "/" .. el.name];
	if not handler then
		origin.send(st.error_reply(stanza, "modify", "bad-request", "Unknown bridge request"));
		return true;
	end
	handler(origin, stanza, el);
	-- The component is reachable: a good moment to deliver settles it has not acknowledged.
	retry_settles();
	return true;
end, 10);

-- The component asks for the host's disco#info when it connects: retry pending settles then too.
module:hook("iq-get/host/http://jabber.org/protocol/disco#info:query", function (event)
	if event.stanza.attr.from == component then
		retry_settles();
	end
end, 10);

---------------------------------------------------------------------------------------------------
-- Discovery: the component's commands on the host's commands node
---------------------------------------------------------------------------------------------------

local COMMANDS_TTL, FAILURE_TTL = 60, 10;
local commands_cache = new_cache(1000);
local commands_refreshing = {};

local function parse_commands(result)
	local items = {};
	local commands = result:get_child("commands", NS);
	if commands then
		for item in commands:childtags("item") do
			if item.attr.node then
				table.insert(items, { node = item.attr.node, name = item.attr.name });
			end
		end
	end
	return items;
end

local function fetch_commands(user_jid)
	commands_refreshing[user_jid] = true;
	return request("get", "commands", { ["for"] = user_jid }):next(function (result)
		local items = parse_commands(result);
		commands_cache:set(user_jid, { items = items, expires = os.time() + COMMANDS_TTL });
		return items;
	end, function (err)
		module:log("debug", "The component did not list its commands for %s: %s", user_jid, error_condition(err));
		commands_cache:set(user_jid, { items = {}, expires = os.time() + FAILURE_TTL });
		return {};
	end):finally(function ()
		commands_refreshing[user_jid] = nil;
	end);
end

module:hook("host-disco-items-node", function (event)
	if event.node ~= NS_COMMANDS then return; end
	local requester = jid_bare(event.stanza.attr.from);
	local node, requester_host = jid_split(requester or "");
	if not node or requester_host ~= host then return; end
	event.exists = true;

	local cached = commands_cache:get(requester);
	local items;
	if cached and cached.expires > os.time() then
		items = cached.items;
	elseif async.ready() then
		items = async.wait_for(fetch_commands(requester)) or {};
	else
		-- Cannot wait here: answer from what is known and refresh for the next request.
		items = {};
		if not commands_refreshing[requester] then fetch_commands(requester); end
	end
	for _, item in ipairs(items) do
		event.reply:tag("item", { jid = component, node = item.node, name = item.name }):up();
	end
end);

---------------------------------------------------------------------------------------------------
-- Housekeeping
---------------------------------------------------------------------------------------------------

if prosody.process_type == "prosody" then
	-- Settles left from before a restart are sent soon after start, then every 15 s while any remain.
	module:add_timer(2, function ()
		retry_settles();
		local cutoff = os.time() - 300;
		for username, claim in pairs(pending_claims) do
			if claim.at < cutoff then pending_claims[username] = nil; end
		end
		return 15;
	end);
end

function module.unload()
	-- Nothing may stay held or waiting once our handlers and timers are gone.
	for reject in pairs(outstanding) do
		reject(errors.new({ type = "wait", condition = "service-unavailable", text = "mod_xmpp_invites unloaded" }));
	end
	for key in pairs(held) do
		release(key);
	end
end
