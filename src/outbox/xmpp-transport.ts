/**
 * Messages from the component: `type='chat'` to the bare JID, body plus `<notification/>`s; the
 * acknowledgement of an invite request goes to the sender's full JID with `<invite-request-result/>`.
 */
import type { Element } from '../xmpp/xml';
import { notificationMessage, requestResultMessage } from '../xmpp/builders';
import type { OutboxRow } from '../store/outbox-repo';
import { StanzaRejectedError } from '../xmpp/connection';
import { NotReadyError, PermanentDeliveryError, type Transport } from './worker';
import type { Rendered } from './render';
import { outcomesOf } from './request-result';
import { requestIds, roomsParam } from './render';

export interface XmppTransportDeps {
  /** the component JID the messages come from */
  from: string;
  /** writes a stanza to the server */
  send: (el: Element) => Promise<void>;
  /** whether the component is connected now */
  online: () => boolean;
}

export class XmppTransport implements Transport {
  private readonly from: string;
  private readonly sendStanza: (el: Element) => Promise<void>;
  private readonly online: () => boolean;

  constructor(deps: XmppTransportDeps) {
    this.from = deps.from;
    this.sendStanza = deps.send;
    this.online = deps.online;
  }

  async send(row: OutboxRow, rendered: Rendered): Promise<void> {
    if (!this.online()) throw new NotReadyError('not connected to the XMPP server');
    if (row.kind === 'webhook') throw new PermanentDeliveryError('a webhook event is not an XMPP message');
    const id = row.messageId.split('@')[0];
    if (row.kind === 'request-verify' || row.kind === 'request-rejected' || row.kind === 'request-wait') {
      throw new PermanentDeliveryError(`${row.kind} is an e-mail`);
    }
    const stanza =
      row.kind === 'request-result'
        ? requestResultMessage({
            from: this.from,
            to: row.recipient,
            id,
            body: rendered.text,
            request: typeof row.params.request === 'string' ? row.params.request : undefined,
            invitees: outcomesOf(row.params),
          })
        : notificationMessage({
            from: this.from,
            to: row.recipient,
            id,
            kind: row.kind === 'reminder' ? 'invitation' : (row.kind as Exclude<typeof row.kind, 'reminder' | 'request-result' | 'webhook'>),
            body: rendered.text,
            invites: row.inviteIds,
            requests: row.kind === 'request' ? requestIds(row.params) : [],
            reset: row.kind === 'password-reset' && typeof row.params.reset === 'string' ? row.params.reset : undefined,
            room: row.kind.startsWith('room-') && typeof row.params.room === 'string' ? row.params.room : undefined,
            rooms: row.kind === 'invitation' ? roomsParam(row.params).map(([jid]) => jid) : undefined,
          });
    try {
      await this.sendStanza(stanza);
    } catch (err) {
      // The link dropped between the check and the send: not the message's fault.
      if ((err as Error).name === 'NotConnectedError' || !this.online()) throw new NotReadyError((err as Error).message);
      // Refused before it was written (a character XML forbids, a stanza too large): the same
      // message would be refused again, so it fails at once rather than being marked sent.
      if (err instanceof StanzaRejectedError) throw new PermanentDeliveryError((err as Error).message);
      throw err;
    }
  }
}
