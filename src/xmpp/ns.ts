/** Every namespace and command node the service speaks, in one place. */

export const NS = {
  discoInfo: 'http://jabber.org/protocol/disco#info',
  discoItems: 'http://jabber.org/protocol/disco#items',
  commands: 'http://jabber.org/protocol/commands',
  dataForms: 'jabber:x:data',
  stanzas: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  ping: 'urn:xmpp:ping',
  version: 'jabber:iq:version',
  register: 'jabber:iq:register',
  pars: 'urn:xmpp:pars:0',
  ibrToken: 'urn:xmpp:ibr-token:0',
  invite: 'urn:xmpp:invite',
  invitation: 'urn:xmpp:invite#invitation',
  project: 'urn:xmpp-invites:0',
  bridge: 'urn:xmpp-invites:bridge:0',
  adminCommands: 'http://jabber.org/protocol/admin',
  mucAdmin: 'http://jabber.org/protocol/muc#admin',
  conference: 'jabber:x:conference',
} as const;

export const NODES = {
  newInvite: 'urn:xmpp:invite#invite',
  createAccount: 'urn:xmpp:invite#create-account',
  send: 'urn:xmpp-invites:0#send',
  mine: 'urn:xmpp-invites:0#mine',
  pending: 'urn:xmpp-invites:0#pending',
  list: 'urn:xmpp-invites:0#list',
  stats: 'urn:xmpp-invites:0#stats',
  reset: 'urn:xmpp-invites:0#reset',
  inviteToRooms: 'urn:xmpp-invites:0#invite-to-rooms',
  respond: 'urn:xmpp-invites:0#respond',
} as const;
