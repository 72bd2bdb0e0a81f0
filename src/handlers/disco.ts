/**
 * Service discovery (XEP-0030) of the component, and XEP-0199 ping. disco#items on the commands
 * node lists only the commands the requester may run (XEP-0050 §2.2); disco#info on a command node
 * describes it (§2.3).
 */
import type { AdhocCommands } from '../xmpp/adhoc';
import type { Requester } from '../xmpp/requester';
import { NS } from '../xmpp/ns';
import type { Router } from '../xmpp/router';
import { StanzaFailure } from '../xmpp/stanza-errors';
import { xml } from '../xmpp/xml';

export interface DiscoDeps {
  /** the commands, listed and described to those who may run them */
  adhoc: AdhocCommands;
  name: string;
  /** the features this requester may use (clients offer what is advertised, e.g. a Register button) */
  features: (req: Requester) => readonly string[];
}

export function registerDisco(router: Router, opts: DiscoDeps): void {
  const { adhoc } = opts;
  router.iq('get', 'query', NS.discoInfo, (ctx, query) => {
    const node = query.attrs.node;
    if (!node) {
      return xml(
        'query',
        { xmlns: NS.discoInfo },
        xml('identity', { category: 'component', type: 'generic', name: opts.name }),
        ...[...new Set(opts.features(ctx.requester))].sort().map((f) => xml('feature', { var: f })),
      );
    }
    if (node === NS.commands) {
      return xml(
        'query',
        { xmlns: NS.discoInfo, node },
        xml('identity', { category: 'automation', type: 'command-list', name: 'Invite commands' }),
      );
    }
    const def = adhoc.get(node);
    if (!def) throw new StanzaFailure('item-not-found');
    const req = ctx.requester;
    if (!req.isLocal || !def.allowed(req)) throw new StanzaFailure('forbidden', `You may not run ${def.name}`);
    return xml(
      'query',
      { xmlns: NS.discoInfo, node },
      xml('identity', { category: 'automation', type: 'command-node', name: def.name }),
      xml('feature', { var: NS.commands }),
      xml('feature', { var: NS.dataForms }),
    );
  });

  router.iq('get', 'query', NS.discoItems, (ctx, query) => {
    const node = query.attrs.node;
    if (!node) return xml('query', { xmlns: NS.discoItems });
    if (node !== NS.commands) throw new StanzaFailure('item-not-found');
    return xml('query', { xmlns: NS.discoItems, node }, ...adhoc.discoItems(ctx.requester));
  });

  router.iq('get', 'ping', NS.ping, () => true);
}
