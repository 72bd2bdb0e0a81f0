/**
 * Prosody's own invite store (mod_invites on internal storage), written directly so that the
 * benchmark can start a round with Prosody holding no invites or N of them.
 *
 * mod_invites keeps invites in the map store `invite_token`; internal storage has no map store,
 * so Prosody uses its keyval shim: every `set` loads the whole file, changes one key and writes
 * the whole file again. Invites that may create an account (New Invite with allow_user_invites)
 * go into the host's file (one for the whole server: data/HOST/invite_token.dat); a contact
 * invite also goes into its inviter's file (data/HOST/invite_token/USER.dat). Nothing removes
 * an invite that is never used. These are the files written here, in the format util.serialization
 * produces and util.datamanager loads.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** util.datamanager's file-name encoding: every byte but A-Z a-z 0-9 (and `_` in store names) → %xx. */
function dmEncode(s: string, keep = /[A-Za-z0-9]/): string {
  return [...Buffer.from(s, 'utf8')].map((b) => (keep.test(String.fromCharCode(b)) ? String.fromCharCode(b) : '%' + b.toString(16).padStart(2, '0'))).join('');
}

const lua = (s: string) => JSON.stringify(s);

/**
 * Replaces Prosody's invite store for `host` with `perUser` invites by each of `users` (as New
 * Invite made them, all unexpired), or removes it when `perUser` is 0. Prosody may be running:
 * internal storage reads the file at every access.
 */
export function writeProsodyInvites(dataDir: string, host: string, users: string[], perUser: number): number {
  const hostDir = join(dataDir, dmEncode(host));
  const store = dmEncode('invite_token', /[A-Za-z0-9_]/);
  rmSync(join(hostDir, `${store}.dat`), { force: true });
  rmSync(join(hostDir, store), { recursive: true, force: true });
  if (perUser === 0) return 0;
  mkdirSync(join(hostDir, store), { recursive: true });
  const now = Math.floor(Date.now() / 1000);
  const hostEntries: string[] = [];
  let n = 0;
  for (const user of users) {
    const userEntries: string[] = [];
    for (let i = 0; i < perUser; i++, n++) {
      const token = `seed${n.toString(36).padStart(8, '0')}`; // id.medium() is 8 base64 chars; close enough in size
      const jid = `${user}@${host}`;
      const created = now - 3600 + (n % 3600);
      const expires = created + 7 * 86400;
      hostEntries.push(
        `[${lua(token)}]={["additional_data"]={["source"]=${lua(`${jid}/bench`)}};["allow_registration"]=true;["created_at"]=${created};` +
          `["expires"]=${expires};["jid"]=${lua(jid)};["token"]=${lua(token)};["type"]="roster";["uri"]=${lua(`xmpp:${jid}?roster;preauth=${token};ibr=y`)}};`,
      );
      userEntries.push(`[${lua(token)}]=${expires};`);
    }
    writeFileSync(join(hostDir, store, `${dmEncode(user)}.dat`), `return {${userEntries.join('')}};\n`);
  }
  writeFileSync(join(hostDir, `${store}.dat`), `return {${hostEntries.join('')}};\n`);
  return n;
}
