/**
 * What users are told, and in which words. Messages are built here and handed to a sender: for now
 * the live XMPP connection; the durable outbox takes this place when it lands.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config';
import type { InviteService } from '../domain/invites';
import type { RegistrationEvents } from '../domain/registration';
import { isContactKind } from '../domain/types';
import { notificationMessage, type NotificationKind } from '../xmpp/builders';
import type { Element } from '../xmpp/xml';

export interface Notice {
  kind: NotificationKind;
  to: string;
  body: string;
  invites: readonly string[];
}

export class Notifier {
  constructor(
    private readonly config: Config,
    private readonly send: (el: Element) => Promise<void>,
    private readonly logger: Logger,
  ) {}

  notify(notice: Notice): void {
    const message = notificationMessage({
      ...notice,
      from: this.config.component.domain,
      id: randomBytes(9).toString('base64url'),
    });
    this.send(message).catch((err: unknown) =>
      this.logger.warn({ err: (err as Error).message, kind: notice.kind, to: notice.to }, 'notification not sent'),
    );
  }
}

/** After an account is made: `joined` to the inviter, `welcome` to the new account. */
export function registrationEvents(config: Config, invites: InviteService, notifier: Notifier): RegistrationEvents {
  return {
    joined({ jid, invite, contactsLinked }) {
      const site = config.siteName;
      if (invite?.inviter) {
        notifier.notify({
          kind: 'joined',
          to: invite.inviter,
          body: `${jid} has joined ${site} with your invite.${contactsLinked ? ' You are now contacts.' : ''}`,
          invites: [invite.id],
        });
      }
      const lines = [`Welcome to ${site}, ${jid}!`];
      if (invite?.inviter) {
        lines.push(`${invite.inviter} invited you.`);
        const linkWanted = isContactKind(invite.kind) || invite.rosterSubscription;
        if (linkWanted && !contactsLinked) {
          const { token } = invites.links(invite);
          lines.push(`Add them as a contact: xmpp:${invite.inviter}?roster;preauth=${token}`);
        } else if (contactsLinked) {
          lines.push('They are already in your contacts.');
        }
      }
      notifier.notify({ kind: 'welcome', to: jid, body: lines.join('\n'), invites: invite ? [invite.id] : [] });
    },
  };
}
